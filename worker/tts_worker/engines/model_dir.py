"""The local ModelScope model directory: found offline, and made writable.

`pipeline(model=...)` treats anything that is not an existing directory with a
configuration.json as a hub id and goes to the network, so the directory is resolved to an
absolute path and checked first; the worker never downloads a model. Sambert extracts its
resource.zip into the model directory on every start, so a read-only directory (baked into
an image, a read-only volume) is copied to a writable place once.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from tts_worker.engines.base import EngineError

log = logging.getLogger(__name__)

CONFIGURATION = "configuration.json"
_MARKER = ".tts-worker-source"


def resolve_model_dir(value: str | None) -> Path:
    if not value:
        raise EngineError("TTS_MODEL_DIR is not set; the modelscope engine needs a local "
                          "model directory (the worker never downloads models)")
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise EngineError(f"TTS_MODEL_DIR = {value!r}: no such directory "
                          "(the worker never downloads models)")
    if not (path / CONFIGURATION).is_file():
        raise EngineError(f"TTS_MODEL_DIR = {value!r} has no {CONFIGURATION}; "
                          "it is not a ModelScope model directory")
    return path


def read_voices(model_dir: Path) -> tuple[str, ...]:
    """Voice names from voices/voices.json, the layout Sambert models use; () if absent."""
    path = model_dir / "voices" / "voices.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ()
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot read {path}: {exc}") from exc
    voices = data.get("voices") if isinstance(data, dict) else None
    if not isinstance(voices, list) or not all(isinstance(v, str) and v for v in voices):
        raise EngineError(f"{path}: 'voices' must be a list of names")
    return tuple(voices)


def is_writable(path: Path) -> bool:
    # os.access() answers for the permission bits; only a real write answers for read-only
    # mounts and for root on a read-only filesystem.
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".tts-probe-"):
            return True
    except OSError:
        return False


def writable_model_dir(source: Path, workdir: str | None,
                       writable: Callable[[Path], bool] | None = None) -> Path:
    """`source` itself when it is writable, else a copy under `workdir` (reused if current)."""
    if (writable or is_writable)(source):
        return source
    root = Path(workdir) if workdir else Path(tempfile.gettempdir()) / "tts-model"
    dest = (root / source.name).resolve()
    signature = _signature(source)
    marker = dest / _MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == signature:
        log.info("reusing the writable copy of %s at %s", source, dest)
        return dest
    log.info("%s is read-only; copying it to %s", source, dest)
    try:
        if dest.exists():
            shutil.rmtree(dest)
        root.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, dest, copy_function=shutil.copyfile)
        _make_user_writable(dest)
        marker.write_text(signature, encoding="utf-8")
    except OSError as exc:
        raise EngineError(f"cannot copy the read-only model directory {source} to {dest}: "
                          f"{exc}; set TTS_MODEL_WORKDIR to a writable directory") from exc
    return dest


def _signature(source: Path) -> str:
    lines = [str(source)]
    for path in sorted(source.rglob("*")):
        if path.is_file():
            info = path.stat()
            lines.append(f"{path.relative_to(source)}\t{info.st_size}\t{info.st_mtime_ns}")
    return "\n".join(lines)


def _make_user_writable(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in (dirpath, *(os.path.join(dirpath, f) for f in filenames)):
            mode = os.stat(name).st_mode
            os.chmod(name, mode | stat.S_IWUSR | stat.S_IRUSR)
