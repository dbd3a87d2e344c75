"""elastic-tts worker: a Flask text-to-speech service, served by gunicorn.

`gunicorn -c python:tts_worker.gunicorn_conf 'tts_worker:create_app()'`, or
`elastic-tts-worker serve`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__version__ = "0.1.0"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The app factory, tts_worker.app.create_app.

    Imported on call: the gunicorn master imports this package for its config and must not
    load prometheus_client before PROMETHEUS_MULTIPROC_DIR is set.
    """
    from tts_worker.app import create_app as factory

    return factory(config)


__all__ = ["__version__", "create_app"]
