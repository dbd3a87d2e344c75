"""Errors as JSON: `{"error": <code>, "message": <text>, ...}`, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than success. `close` records that the connection cannot be reused
    (the body was not read to its end; the server was told, see server_hints); `param`
    names the request field at fault, if one is."""

    def __init__(self, status: int, code: str, message: str, *,
                 retry_after: int | None = None, close: bool = False,
                 param: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.close = close
        self.param = param
        self.details = details


def error_response(status: int, code: str, message: str, *, retry_after: int | None = None,
                   **details: Any) -> Response:
    response = jsonify({"error": code, "message": message, **details})
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


# OpenAI's error shape, for the routes that speak its API: its clients read
# error.message and error.code.
OPENAI_PREFIX = "/v1/"


def _openai_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def openai_error_response(exc: ApiError) -> Response:
    response = jsonify({"error": {"message": exc.message, "type": _openai_type(exc.status),
                                  "param": exc.param, "code": exc.code, **exc.details}})
    response.status_code = exc.status
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _api_error(exc: ApiError) -> Response:
    if request.path.startswith(OPENAI_PREFIX):
        return openai_error_response(exc)
    return error_response(exc.status, exc.code, exc.message, retry_after=exc.retry_after,
                          **exc.details)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = _HTTP_CODES.get(status, (exc.name or "error").lower().replace(" ", "_"))
    if request.path.startswith(OPENAI_PREFIX):
        return openai_error_response(ApiError(status, code, exc.description or code))
    response = error_response(status, code, exc.description or exc.name or "error")
    if status == 405 and exc.response is None:
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
    return response


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return error_response(500, "internal_error", "internal error; see the worker's log")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
