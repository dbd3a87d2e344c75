"""Request bodies read safely: bounded in size and time, framing errors answered, JSON parsed
strictly. Every way a body can be wrong gets its own 4xx and error code, never a 500.

What is checked, layer by layer:
- framing: a Content-Length over the limit is refused before reading (413); a chunked body
  is read up to the limit and refused beyond it (413), never cut; a malformed chunk, a
  body shorter than its Content-Length, or a client that stops sending before
  TTS_BODY_TIMEOUT are answered (400, 400, 408). After any of these, and after any answer
  given without reading the body (close_if_body_unread), the connection closes, saying
  so, because where the next request would start is unknown;
- `Content-Encoding` other than identity is refused (415): bodies are not decompressed;
- encoding: strict UTF-8 (a BOM is invalid JSON);
- JSON: an object at the top, no duplicate keys, no NaN or Infinity, no number literal
  longer than MAX_NUMBER_CHARS, no nesting deeper than Python's parser can take (400).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from flask import Request, g

from tts_worker.errors import ApiError
from tts_worker.server_hints import close_connection

MAX_NUMBER_CHARS = 64
_READ_SIZE = 65536


def _closing(status: int, code: str, message: str, **details: Any) -> ApiError:
    close_connection()
    return ApiError(status, code, message, close=True, **details)


def read_body(request: Request, max_bytes: int, timeout: float) -> bytes:
    """The whole body, at most `max_bytes`, within `timeout` seconds of starting to read."""
    environ = request.environ
    encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise _closing(415, "unsupported_content_encoding",
                       f"Content-Encoding {describe(encoding)} is not accepted; send the "
                       "body as it is (identity)")
    length = request.content_length
    if length is not None and length > max_bytes:
        raise _closing(413, "body_too_large", f"the body is larger than {max_bytes} bytes",
                       max_body_bytes=max_bytes)
    stream = environ["wsgi.input"]
    chunked = "chunked" in (environ.get("HTTP_TRANSFER_ENCODING") or "").lower()
    if length is None and not chunked:
        return b""
    sock = environ.get("gunicorn.socket")
    deadline = time.monotonic() + timeout
    want = length if length is not None else max_bytes + 1
    parts: list[bytes] = []
    got = 0
    try:
        while got < want:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if sock is not None:
                sock.settimeout(remaining)
            data = stream.read(min(_READ_SIZE, want - got))
            if not data:
                break
            parts.append(data)
            got += len(data)
    except ApiError:
        raise
    except TimeoutError:
        raise _closing(408, "body_timeout", f"the body did not arrive within {timeout:g} s "
                       f"({got} bytes came)") from None
    except Exception as exc:  # the server's framing errors: bad chunk size, terminator, ...
        raise _closing(400, "invalid_body_framing",
                       f"the body's framing is broken: {type(exc).__name__}: "
                       f"{describe(str(exc))}") from None
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(None)
    if got > max_bytes:
        raise _closing(413, "body_too_large", f"the body is larger than {max_bytes} bytes",
                       max_body_bytes=max_bytes)
    if length is not None and got < length:
        raise _closing(400, "incomplete_body",
                       f"the body ended after {got} of the {length} bytes its "
                       "Content-Length announced")
    g.tts_body_read = True
    return b"".join(parts)


def has_body(request: Request) -> bool:
    if "chunked" in (request.environ.get("HTTP_TRANSFER_ENCODING") or "").lower():
        return True
    return bool(request.content_length)


def close_if_body_unread(request: Request) -> None:
    """An answer given without reading the body to its end (a wrong content type, a 404, a
    405) closes the connection: the server would otherwise skip the rest of the body to
    find the next request, and a body that is malformed, or larger than the server skips,
    would lose that request."""
    if has_body(request) and not g.get("tts_body_read"):
        close_connection()


class _NumberTooLarge(ValueError):
    """A JSON number with more digits than the parser converts."""


def _number(kind: type[int] | type[float]) -> Any:
    def parse(literal: str) -> int | float:
        if len(literal) > MAX_NUMBER_CHARS:
            raise _NumberTooLarge(f"a number of {len(literal)} characters")
        return kind(literal)

    return parse


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


class _DuplicateKey(ValueError):
    """A JSON object that names one key twice."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_utf8",
                       f"the body is not valid UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(text, parse_constant=_reject_constant, parse_int=_number(int),
                          parse_float=_number(float), object_pairs_hook=_unique)
    except _DuplicateKey as exc:
        raise ApiError(400, "duplicate_field",
                       f"the field {describe(exc.args[0])} appears more than once") from None
    except _NumberTooLarge as exc:
        raise ApiError(400, "number_too_large",
                       f"the body has {exc}; the limit is {MAX_NUMBER_CHARS}") from None
    except RecursionError:
        raise ApiError(400, "json_too_deep", "the body is nested too deeply") from None
    except ValueError as exc:
        raise ApiError(400, "invalid_json",
                       f"the body is not valid JSON: {describe(str(exc))}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return body


def describe(value: Any, limit: int = 60) -> str:
    """A short, safe rendering of a client's value for an error message.

    Containers are named, not printed: a deeply nested list would overflow repr().
    """
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
