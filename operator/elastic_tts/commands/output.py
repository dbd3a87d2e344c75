"""Machine-readable output: JSON that every parser accepts, and YAML.

Python's json writes `Infinity` and `NaN`, which are not JSON. A figure that has no
finite value (a ratio to a zero bound, the latency of requests never served) is written
as null, and the key stays, so a reader sees it is missing rather than huge.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from elastic_tts.commands.args import UsageError


def finite(value: Any) -> Any:
    """A copy of a JSON-like value with every non-finite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def json_text(value: Any) -> str:
    return json.dumps(finite(value), ensure_ascii=False, allow_nan=False)


def yaml_text(value: Any) -> str:
    return yaml.safe_dump(finite(value), allow_unicode=True, sort_keys=False,
                          default_flow_style=False)


def check_writable(path: Path, flag: str) -> None:
    """Make sure `path` can be written, before the work whose result goes there starts:
    its folder is created, and the file opened for appending (so nothing is truncated)
    and removed again if it did not exist. The UsageError names the flag."""
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory, not a file")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.open("ab").close()  # append mode: an existing file is not truncated
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write: {exc.strerror or exc}") from None
    if not existed:
        path.unlink(missing_ok=True)
