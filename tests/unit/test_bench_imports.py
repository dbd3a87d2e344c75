"""bench/ shares support code with the tests only through elastic_tts_dev (issue 14): no
benchmark imports `tests`, or names a `tests.` module for a subprocess to import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) >= 4


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_a_benchmark_imports_nothing_from_tests(script: Path) -> None:
    tree = ast.parse(script.read_text("utf-8"))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)]
    # A gunicorn target or `python -m` argument is a module path in a string.
    named = [node.value for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    assert [m for m in imported if m == "tests" or m.startswith("tests.")] == []
    assert [s for s in named if s.startswith("tests.")] == []
