"""`elastic-tts-worker serve --help` lists every setting the worker reads, with its TTS_*
name, from the settings table: a setting added to Settings without a row fails here. A
bad setting, a number beyond its bounds included, ends in one line before gunicorn starts."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import pytest

from tts_worker.config import SETTINGS, Settings


def serve_help() -> str:
    done = subprocess.run([sys.executable, "-m", "tts_worker.cli", "serve", "--help"],
                          capture_output=True, text=True, timeout=60, check=True)
    return " ".join(done.stdout.split())  # unwrapped, as the reader sees one sentence


def test_the_table_has_one_row_per_setting() -> None:
    assert [s.key.lower() for s in SETTINGS] == [f.name for f in dataclasses.fields(Settings)]


def test_serve_help_names_every_setting_with_its_variable_doc_and_default() -> None:
    text = serve_help()
    for setting in SETTINGS:
        assert f"{setting.env} {setting.doc}" in text, setting.env
        if setting.default is not None:
            assert f"{setting.env} {setting.doc} (default {setting.default})" in text
    listed = re.findall(r"\b(TTS_[A-Z0-9_]+) ", text.split("settings (", 1)[1])
    assert sorted(set(listed)) == sorted(s.env for s in SETTINGS)


def test_serve_help_ends_with_examples_that_parse() -> None:
    from tts_worker.cli import build_parser

    text = subprocess.run([sys.executable, "-m", "tts_worker.cli", "serve", "--help"],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    examples = text.split("examples:\n", 1)[1].strip().splitlines()
    assert len(examples) >= 3
    for example in examples:
        words = example.split()
        argv = words[words.index("elastic-tts-worker") + 1:]
        build_parser().parse_args(argv)  # exits 2 on a flag that does not exist


@pytest.mark.parametrize(("argv", "env", "message"), [
    (["--workers", "100000"], {}, "TTS_WORKERS = 100000, must be at most 256"),
    (["--port", "99999"], {}, "TTS_BIND = '0.0.0.0:99999', must be HOST:PORT"),
    ([], {"TTS_MAX_QUEUE": "1000000000"}, "TTS_MAX_QUEUE = 1000000000, must be at most 4096"),
    ([], {"TTS_THROUGHPUT": "1e308"}, "TTS_THROUGHPUT = 1e+308, must be at most 1e+06"),
    ([], {"TTS_LATENCY_SLO_SECONDS": "NaN"}, "TTS_LATENCY_SLO_SECONDS = nan, must be a number"),
    ([], {"TTS_ENGINE_TIMEOUT": "Infinity"}, "TTS_ENGINE_TIMEOUT = inf, must be a number"),
    ([], {"TTS_CACHE_BYTES": "9" * 300}, "TTS_CACHE_BYTES = "),
])
def test_bad_settings_end_in_one_line_before_gunicorn_starts(
        argv: list[str], env: dict[str, str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "tts_worker.cli", "serve", *argv],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, **env})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"elastic-tts-worker: {message}"), done.stderr
    assert len(done.stderr.splitlines()) == 1
