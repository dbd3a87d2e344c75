"""Real components the tests start: `make test` installs every one of them (Debian
packages via `make system-deps`, Python tools via the dev extra), so a missing one is a
broken setup to report as a failure, never a reason to skip."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

HOW = {
    "espeak-ng": "`make system-deps` installs the Debian package espeak-ng",
    "/usr/bin/chromium": "`make system-deps` installs the Debian package chromium",
    "promtool": "`make system-deps` installs the Debian package prometheus",
}


def require(*tools: str) -> None:
    """Fail (at collection, when called at module level) if a tool is missing."""
    for tool in tools:
        found = Path(tool).exists() if tool.startswith("/") else shutil.which(tool)
        if not found:
            pytest.fail(f"{tool} missing: {HOW.get(tool, 'make test installs it')}")


def tool(name: str) -> str:
    """The path of a required command, or a failure naming how to install it."""
    require(name)
    path = shutil.which(name)
    assert path is not None
    return path
