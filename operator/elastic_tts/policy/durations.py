"""Duration strings used in the TTSService spec ("90s", "15m", "8h", "1h30m")."""

from __future__ import annotations

import re

# ASCII digits only, as the CRD's pattern (Python's \d also matches other scripts' digits).
_DURATION = re.compile(r"^(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?$")
# The same grammar for the CRD, where a pattern cannot add up the parts: at least one
# part, and at least one non-zero digit among them.
PATTERN = (r"^\s*(?:[0-9]*[1-9][0-9]*h(?:[0-9]+m)?(?:[0-9]+s)?"
           r"|(?:[0-9]+h)?[0-9]*[1-9][0-9]*m(?:[0-9]+s)?"
           r"|(?:[0-9]+h)?(?:[0-9]+m)?[0-9]*[1-9][0-9]*s)\s*$")
MAX_LENGTH = 32


def parse_duration(value: object) -> float:
    """Seconds in a duration: a whole number of seconds, or a string like ``1h30m``.

    Raises ValueError with a message meant for the user.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '8h' or '90m', got {value!r}")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError(f"must be positive, got {value}")
        return float(value)
    if isinstance(value, str) and len(value) <= MAX_LENGTH:
        match = _DURATION.match(value.strip())
        if match and any(match.groupdict().values()):
            parts = match.groupdict()
            seconds = (
                int(parts["h"] or 0) * 3600 + int(parts["m"] or 0) * 60 + int(parts["s"] or 0)
            )
            if seconds > 0:
                return float(seconds)
            raise ValueError(f"must be positive, got {value!r}")
    shown = repr(value) if not isinstance(value, str) or len(value) <= 40 else "a long string"
    raise ValueError(f"expected a duration like '8h', '90m' or '1h30m', got {shown}")
