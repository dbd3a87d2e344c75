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
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from tts_worker.engines.base import EngineError

log = logging.getLogger(__name__)

CONFIGURATION = "configuration.json"
_MARKER = ".tts-worker-source"


# A ModelScope id: <organisation>/<name>. ModelScope moved the `damo` models to `iic`;
# either spelling finds a model baked under the other.
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ORG_ALIASES = {"damo": "iic", "iic": "damo"}


def resolve_model(model_dir: str | None, model: str | None, model_root: str) -> Path:
    """The local model directory: TTS_MODEL_DIR if set, else TTS_MODEL, which is a path (it
    starts with `/`, `.` or `~`) or an id baked into the image at <TTS_MODEL_ROOT>/<id>."""
    if model_dir:
        return _model_directory(model_dir, "TTS_MODEL_DIR")
    if not model:
        raise EngineError("TTS_MODEL is not set: name a model baked into the image "
                          f"({_baked_list(model_root)}) or a local directory "
                          "(the worker never downloads models)")
    if model.startswith(("/", ".", "~")):
        return _model_directory(model, "TTS_MODEL")
    if not _MODEL_ID.match(model):
        raise EngineError(f"TTS_MODEL = {model!r} is neither a path nor a model id "
                          "like iic/speech_sambert-hifigan_tts_zh-cn_16k")
    org, name = model.split("/")
    for candidate in (model, f"{_ORG_ALIASES.get(org.lower(), org)}/{name}"):
        path = Path(model_root) / candidate
        if (path / CONFIGURATION).is_file():
            return path.resolve()
    raise EngineError(f"TTS_MODEL = {model!r} is not in this image (looked in "
                      f"{Path(model_root) / model}; it has {_baked_list(model_root)}); the "
                      "worker never downloads models: bake it in, or mount it and set a path")


def baked_models(model_root: str) -> list[str]:
    """The ids under `model_root` that hold a model (<root>/<org>/<name>/configuration.json)."""
    root = Path(model_root)
    if not root.is_dir():
        return []
    return sorted(f"{c.parent.parent.name}/{c.parent.name}"
                  for c in root.glob(f"*/*/{CONFIGURATION}"))


def _baked_list(model_root: str) -> str:
    found = baked_models(model_root)
    return ", ".join(found) if found else f"no model under {model_root}"


def _model_directory(value: str, variable: str) -> Path:
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise EngineError(f"{variable} = {value!r}: no such directory "
                          "(the worker never downloads models)")
    if not (path / CONFIGURATION).is_file():
        raise EngineError(f"{variable} = {value!r} has no {CONFIGURATION}; "
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
