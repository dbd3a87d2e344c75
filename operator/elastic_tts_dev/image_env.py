"""The operator's Python environment as its image has it, for measurements of the operator.

The dev venv holds every test and simulator package too, and some change what the
operator is: kopf imports the official `kubernetes` client whenever it is installed (for
its own login), which the image does not ship (operator/image-requirements.txt), and that
alone is about 14 MB more RSS. `image_environment()` makes a venv from the image's pinned
requirements, the way operator/Dockerfile does, and installs this checkout into it
without dependencies, so a benchmark runs the code under test with the image's packages.
The venv is kept while the requirements are unchanged; the project is reinstalled on
every call, since the code under test changes between calls.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from elastic_tts_dev.servers import REPO

REQUIREMENTS = REPO / "operator" / "image-requirements.txt"
VENV = REPO / "out" / "operator-image-venv"


def _pip(venv: Path, *args: str) -> None:
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", "--no-compile", *args],
                   check=True, cwd=REPO, timeout=900)


def image_environment(venv: Path = VENV) -> list[str]:
    """The `elastic-tts` command of a venv with the image's packages and this checkout."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = venv / "requirements.sha256"
    if not stamp.exists() or stamp.read_text().strip() != digest:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True,
                       timeout=300)
        _pip(venv, "-r", str(REQUIREMENTS))
        stamp.write_text(digest + "\n")
    _pip(venv, "--no-deps", "--force-reinstall", str(REPO))
    return [str(venv / "bin" / "elastic-tts")]
