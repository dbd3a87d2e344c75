"""What the app tells the server about the connection it answers on.

gunicorn ignores a `Connection` header an application sets (it is hop-by-hop), and decides
keep-alive from its request object. Its `pre_request` hook (tts_worker.gunicorn_conf) binds
that object to the thread serving it; `close_connection()` then makes gunicorn answer with
`Connection: close` and close afterwards. Outside gunicorn (the Flask test client) it does
nothing. (PEP 3333 forbids applications hop-by-hop headers, so the app never sets one.)
"""

from __future__ import annotations

import threading
from typing import Any

_current = threading.local()


def bind(server_request: Any) -> None:
    _current.request = server_request


def unbind() -> None:
    _current.request = None


def close_connection() -> None:
    server_request = getattr(_current, "request", None)
    if server_request is not None:
        server_request.must_close = True
