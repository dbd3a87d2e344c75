"""The API client reads the environment's proxy once, at start, and nothing else of it."""

from __future__ import annotations

import pytest
import requests

from elastic_tts.adapters.kube import freeze_environment

SERVER = "https://10.96.0.1:443"


def test_proxy_from_the_environment_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = requests.Session()
    freeze_environment(session, SERVER)
    assert session.trust_env is False
    assert session.proxies["https"] == "http://127.0.0.1:3128"


def test_no_proxy_for_the_server_means_a_direct_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "10.96.0.1")
    session = requests.Session()
    freeze_environment(session, SERVER)
    assert "https" not in session.proxies


def test_later_changes_to_the_environment_are_not_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the session sends is settled at start: a CA bundle variable set afterwards
    (requests would otherwise re-read it, with ~/.netrc, on every call) changes nothing."""
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    session = requests.Session()
    freeze_environment(session, SERVER)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    settings = session.merge_environment_settings(SERVER, {}, None, True, None)
    assert settings["verify"] is True
    assert not settings["proxies"].get("https")
