"""The web UI: one static page at GET /, its script and styles under /static/."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

bp = Blueprint("ui", __name__)

# Everything the page loads comes from this worker; the policy keeps it that way.
CSP = ("default-src 'self'; media-src 'self' blob:; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


@bp.get("/")
def index() -> Response:
    response = current_app.send_static_file("index.html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-cache"
    return response
