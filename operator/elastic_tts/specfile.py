"""Reading a TTSService spec from disk (kept out of the pure policy package)."""

from __future__ import annotations

from pathlib import Path

from elastic_tts.policy.spec import SpecError, TTSServiceSpec, load_spec


def load_spec_file(path: str | Path) -> TTSServiceSpec:
    """Parse a TTSService YAML file; a missing or unreadable file is a SpecError too."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise SpecError([f"{path}: is a directory, not a file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{path}: cannot read: {exc}"]) from None
    return load_spec(text, str(path))
