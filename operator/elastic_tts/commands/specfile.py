"""Reading a TTSService spec file for the commands (kept out of the pure policy package,
which parses text)."""

from __future__ import annotations

from pathlib import Path

from elastic_tts.policy.spec import SpecError, TTSServiceSpec, load_spec

# The API server stores an object of at most about 1.5 MiB; a spec file far beyond that
# is a mistake (or a hostile input), and is refused before it is read into memory.
MAX_BYTES = 4 * 1024 * 1024


def load_spec_file(path: str | Path) -> TTSServiceSpec:
    """Parse a TTSService YAML file; a missing, unreadable or huge file is a SpecError
    too. A UTF-8 byte-order mark is accepted."""
    try:
        with Path(path).open(encoding="utf-8-sig") as handle:
            text = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SpecError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise SpecError([f"{path}: is a directory, not a file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{path}: cannot read: {exc}"]) from None
    if len(text) > MAX_BYTES:
        raise SpecError([f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MiB, which no "
                         "TTSService is"])
    return load_spec(text, str(path))
