"""Machine-readable output: JSON that every parser accepts, and YAML.

Python's json writes `Infinity` and `NaN`, which are not JSON. A figure that has no
finite value (a ratio to a zero bound, the latency of requests never served) is written
as null, and the key stays, so a reader sees it is missing rather than huge.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import yaml


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
