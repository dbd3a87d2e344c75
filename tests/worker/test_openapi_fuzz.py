"""Schemathesis against /openapi.json: generated requests, valid and invalid, never get a
5xx or a traceback, and every response matches the document."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from elastic_tts_dev import fake_engines as fakes
from tests.required import require
from tests.worker.conftest import state_of

require("espeak-ng")
pytestmark = [
    # Schemathesis' WSGI transport never closes file responses (the page, /static/*).
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, negative_data_rejection]


# The real espeak engine: generated text goes all the way through espeak-ng. Built at import
# because the schema is (schemathesis' fixture-based loader does not run under pytest 9).
APP = fakes.create_app({"ENGINE": "espeak", "MAX_CHARS": 40, "CACHE_ENTRIES": 0})
# Text beyond maxLength is 413 by design (the limits table), and invalid data must get a 4xx.
CONFIG = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {
    "expected-statuses": ["400", "404", "405", "413"]}}})
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP, config=CONFIG)


@pytest.fixture(autouse=True)
def _engine_loaded() -> None:
    assert state_of(APP).wait_loaded(30) and state_of(APP).status == "ready"


def check(case: schemathesis.Case) -> None:
    response = case.call_and_validate(checks=CHECKS)
    if not response.headers.get("content-type", [""])[0].startswith("audio/"):
        assert b"Traceback" not in response.content
        assert b'File "' not in response.content


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests(case: schemathesis.Case) -> None:
    check(case)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_at_length(case: schemathesis.Case) -> None:
    check(case)
