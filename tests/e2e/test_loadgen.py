"""The load generator waits as the admission contract's client does (ADMISSION.md):
``retry-after-ms`` when 0 < it <= 60 s, else ``Retry-After`` (at least 1 s)."""

from __future__ import annotations

import pytest
from requests.structures import CaseInsensitiveDict

from tests.e2e.loadgen import retry_wait


@pytest.mark.parametrize(("headers", "wait"), [
    ({"retry-after-ms": "250", "Retry-After": "1"}, 0.25),  # the hint wins
    ({"Retry-After-Ms": "60000", "Retry-After": "1"}, 60.0),  # 60 s is still honoured
    ({"retry-after-ms": "60001", "Retry-After": "2"}, 2.0),  # above 60 s: Retry-After
    ({"retry-after-ms": "0", "Retry-After": "3"}, 3.0),  # not > 0: Retry-After
    ({"retry-after-ms": "-5", "Retry-After": "1"}, 1.0),
    ({"retry-after-ms": "soon", "Retry-After": "2"}, 2.0),  # unreadable: Retry-After
    ({"retry-after-ms": "nan", "Retry-After": "2"}, 2.0),
    ({"Retry-After": "0"}, 1.0),  # at least a second
    ({"Retry-After": "later"}, 1.0),
    ({}, 1.0),
])
def test_retry_wait(headers: dict[str, str], wait: float) -> None:
    assert retry_wait(CaseInsensitiveDict(headers)) == pytest.approx(wait)
