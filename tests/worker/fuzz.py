"""A structure-aware fuzzer for the worker's synthesis routes, layer by layer.

Each case is built the way a request is: the app's fields (text, voice, emotion, speed,
format, stream; OpenAI's model, input, voice, ...), then JSON structure and numbers and
strings, then the text encoding, then the headers, then HTTP framing. At every layer one
mutation may be applied, so cases are mostly valid with one thing wrong where it matters,
and sometimes wrong at several layers at once. Seeded: a failure names a case that can be
built again (`case(seed, index)`).

The oracle (see `check` in tests/worker/test_fuzz.py): never a 5xx; a JSON error (or
OpenAI's shape on /v1/) for every 4xx the app answers; gunicorn's own answer only for
request lines and headers it cannot parse; no traceback; a kept-alive connection answers
its next request unless the answer said `Connection: close`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

VOICES = ("mandarin-female", "mandarin-male")
EMOTIONS = ("neutral", "happy", "sad", "angry", "calm")
TEXTS = ("你好。", "今天天气很好，我们去公园散步吧。", "Hello, world.", "第1句：3.5元？",
         "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。")


@dataclass(frozen=True)
class Case:
    label: str  # which mutations made it, for the failure message
    raw: bytes  # the whole request as sent
    path: str
    header_level: bool  # broken before the app runs: gunicorn's own answer is fine
    stalls: bool  # sends less than it announces: the answer is a 408 after a timeout


class _Raw:
    """A JSON fragment written as given (invalid JSON on purpose, where wanted)."""

    def __init__(self, text: str) -> None:
        self.text = text


def dumps(value: Any) -> str:
    """JSON, except that _Raw fragments and duplicate keys (a list of pairs) go through."""
    if isinstance(value, _Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):  # pairs, keys may repeat
        return "{" + ", ".join(f"{json.dumps(k)}: {dumps(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


# --- layer 1: the app's own fields ------------------------------------------------------

def _fields(rng: random.Random, openai: bool) -> dict[str, Any]:
    text = rng.choice(TEXTS)
    if openai:
        body: dict[str, Any] = {"model": "tts-1", "input": text}
        if rng.random() < 0.7:
            body["voice"] = rng.choice(["alloy", "nova", "echo", *VOICES])
        if rng.random() < 0.5:
            body["response_format"] = rng.choice(["wav", "mp3", "pcm"])
        if rng.random() < 0.3:
            body["instructions"] = rng.choice(["happy", "用伤心的语气", "", "x" * 100])
        return body
    body = {"text": text}
    for field, values in (("voice", VOICES), ("emotion", EMOTIONS), ("format", ("wav", "mp3",
                                                                               "pcm"))):
        if rng.random() < 0.4:
            body[field] = rng.choice(values)
    if rng.random() < 0.3:
        body["speed"] = rng.choice([0.5, 1, 1.5, 2.0, 0.75])
    if rng.random() < 0.2:
        body["stream"] = True
    return body


STRINGS = ["", " ", "\u3000", "\u200b", "\ufeff", "\u2028", "\t\n", "\x00", "\x07", "\x7f",
           "\x85", "\ud800", "\udfff", "\ud83d\ude00", "😀" * 3, "\uffff", "\ufffe",
           "\U0010ffff", "a\u0301" * 5, "\u202eabc", "<speak>hi</speak>", "&amp;", "'; --",
           "../../etc/passwd", "%s%n", "字" * 499, "字" * 500, "字" * 501, "😀" * 500,
           "\u0301" * 50, "WAV", "Mandarin-Female", " mandarin-male", "neutral ", "NaN"]
NUMBERS = ["0", "-0", "1", "2", "0.5", "0.4999999999", "2.0000000001", "1e0", "1E+0", "5e-1",
           "1e400", "-1e400", "1e-400", "9" * 64, "9" * 65, "9" * 400, "9" * 5000,
           "0." + "1" * 70, "1" * 30 + ".0", "01", "-", "+1", "0x1", ".5", "1.", "Infinity",
           "-Infinity", "NaN", "1_0", "１"]


def _mutate_fields(body: dict[str, Any], rng: random.Random, openai: bool) -> str:
    fields = (["model", "input", "voice", "instructions", "response_format", "speed",
               "stream_format", "emotion"] if openai
              else ["text", "voice", "emotion", "speed", "format", "stream"])
    field = rng.choice(fields)
    kind = rng.choice(["string", "number", "type", "missing", "unknown", "null"])
    if kind == "string":
        body[field] = rng.choice(STRINGS)
    elif kind == "number":
        body[field] = _Raw(rng.choice(NUMBERS))
    elif kind == "type":
        body[field] = rng.choice([True, False, [], {}, [1], {"a": 1}, 3, -1, 0.0])
    elif kind == "missing":
        body.pop(field, None)
    elif kind == "unknown":
        body[rng.choice(["Text", "txt", "", "\ud800", "stream ", "__proto__", "语音"])] = 1
    else:
        body[field] = None
    return f"{field}:{kind}"


# --- layer 2: JSON structure -----------------------------------------------------------

def _structure(body: dict[str, Any], rng: random.Random) -> tuple[Any, str]:
    kind = rng.choice(["deep", "deep_inside", "duplicate", "top_array", "top_scalar",
                       "trailing_comma", "comment", "truncated", "empty", "many_keys",
                       "big_array", "single_quotes", "unquoted_key", "escapes"])
    if kind == "deep":
        depth = rng.choice([50, 500, 999, 1000, 2000, 20000])
        return _Raw("[" * depth + "]" * depth), f"deep{depth}"
    if kind == "deep_inside":
        depth = rng.choice([100, 900, 990, 3000])
        key = rng.choice(list(body) or ["text"])
        return {**body, key: _Raw("[" * depth + "1" + "]" * depth)}, f"deep_inside{depth}"
    if kind == "duplicate":
        key = rng.choice(list(body) or ["text"])
        return (*body.items(), (key, body.get(key, "x"))), "duplicate"
    if kind == "top_array":
        return [body], kind
    if kind == "top_scalar":
        return _Raw(rng.choice(["1", '"text"', "null", "true", "1e999"])), kind
    text = dumps(body)
    if kind == "trailing_comma":
        return _Raw(text[:-1] + ",}"), kind
    if kind == "comment":
        return _Raw("/* hi */" + text), kind
    if kind == "truncated":
        return _Raw(text[: rng.randint(0, max(0, len(text) - 1))]), kind
    if kind == "empty":
        return _Raw(rng.choice(["", " ", "{}", "\n"])), kind
    if kind == "many_keys":
        return {**body, **{f"k{i}": i for i in range(rng.choice([10, 300]))}}, kind
    if kind == "big_array":
        return {**body, "text": _Raw("[" + ",".join(["1"] * 3000) + "]")}, kind
    if kind == "single_quotes":
        return _Raw(text.replace('"', "'")), kind
    if kind == "unquoted_key":
        return _Raw(text.replace('"text"', "text", 1)), kind
    escape = rng.choice(["\\ud800", "\\udc00\\ud800", "\\u0000", "\\uZZZZ", "\\x41", "\\",
                         "\\ud83d\\ude00", "\\u00e9"])
    return _Raw(text.replace(":", ': "' + escape + '" , "pad":', 1)), f"escape{escape}"


# --- layer 3: encoding -----------------------------------------------------------------

def _encode(text: str, rng: random.Random) -> tuple[bytes, str]:
    kind = rng.choice(["utf8", "utf8", "bom", "utf16", "latin1", "invalid", "overlong",
                       "cesu", "nul", "surrogatepass"])
    if kind == "bom":
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass"), kind
    if kind == "utf16":
        return text.encode("utf-16", "surrogatepass"), kind
    if kind == "latin1":
        return text.encode("latin-1", "replace"), kind
    raw = text.encode("utf-8", "surrogatepass")
    if kind == "invalid":
        at = rng.randint(0, len(raw))
        return raw[:at] + rng.choice([b"\xff", b"\xc3", b"\x80", b"\xf5\x80\x80\x80"]) + raw[at:], \
            kind
    if kind == "overlong":
        return raw.replace(b'"', b"\xc0\xa2", 1), kind
    if kind == "cesu":
        return raw.replace(b"{", b'{"c": "\xed\xa0\x80", ', 1), kind
    if kind == "nul":
        return raw + b"\x00", kind
    return raw, kind


# --- layers 4 and 5: headers and framing -----------------------------------------------

CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
                 "application/json;charset=latin-1", "application/json; charset=utf-16",
                 "text/json", "text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "application/json; q=\"", "", None]


def _headers(rng: random.Random) -> tuple[list[tuple[str, str]], str, bool]:
    headers = [("Host", "worker")]
    ctype = "application/json" if rng.random() < 0.75 else rng.choice(CONTENT_TYPES)
    if ctype is not None:
        headers.append(("Content-Type", ctype))
    label = f"ctype={ctype}"
    header_level = False
    extra = rng.random()
    if extra < 0.15:
        name = rng.choice(["X-Retry-Attempt", "X-Stainless-Retry-Count", "X-Request-Id"])
        value = rng.choice(["1", "0", "-1", "99999999999999999999", "abc", "", " 3 ", "1e3",
                            "x" * 5000, "\u00e9", "a\tb"])
        headers.append((name, value))
        label += f" {name}={value[:10]!r}"
    elif extra < 0.25:
        value = rng.choice(["gzip", "deflate", "br", "identity", "GZIP", "gzip, identity", ""])
        headers.append(("Content-Encoding", value))
        label += f" encoding={value}"
    elif extra < 0.3:
        headers.append(("Expect", "100-continue"))
        label += " expect"
    elif extra < 0.36:
        header_level = True
        bad = rng.choice([("X Bad", "1"), ("X-Bad", "a\x00b"), ("", "1"), ("X-Long", "a" * 9000),
                          ("X-Fold", "a\r\n b")])
        headers.append(bad)
        label += f" badheader={bad[0]!r}"
    return headers, label, header_level


def _frame(method: str, path: str, version: str, headers: list[tuple[str, str]], body: bytes,
           rng: random.Random) -> tuple[bytes, str, bool, bool]:
    kind = rng.choice(["length"] * 6 + ["chunked"] * 3 + [
        "short_length_close", "long_length", "no_length", "two_lengths", "negative_length",
        "plus_length", "huge_length", "chunk_bad_size", "chunk_no_end", "chunk_huge_size",
        "chunk_extension", "chunk_trailer", "te_and_length", "te_gzip", "chunk_bare_lf",
        "chunk_no_terminator", "chunk_bad_trailer", "chunk_bad_extension"])
    # gunicorn refuses chunked framing outside HTTP/1.1 before the app runs (RFC 9112).
    header_level = version != "HTTP/1.1" and ("chunk" in kind or "te_" in kind)
    stalls = False
    lines = [f"{method} {path} {version}".encode("latin-1")]
    lines += [f"{k}: {v}".encode("latin-1", "replace") for k, v in headers]

    def head(*more: str) -> bytes:
        return b"\r\n".join([*lines, *(m.encode() for m in more)]) + b"\r\n\r\n"

    def chunks(data: bytes, size: int = 7) -> bytes:
        parts = [data[i:i + size] for i in range(0, len(data), size)]
        return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts)

    if kind == "length":
        raw = head(f"Content-Length: {len(body)}") + body
    elif kind == "chunked":
        raw = head("Transfer-Encoding: chunked") + chunks(body) + b"0\r\n\r\n"
    elif kind == "short_length_close":
        raw = head(f"Content-Length: {len(body) + 5}", "Connection: close") + body
        stalls = True
    elif kind == "long_length":
        raw = head(f"Content-Length: {max(0, len(body) - 3)}") + body[:max(0, len(body) - 3)]
    elif kind == "no_length":
        raw = head() + b""
    elif kind == "two_lengths":
        raw = head(f"Content-Length: {len(body)}", f"Content-Length: {len(body) + 1}") + body
        header_level = True
    elif kind == "negative_length":
        raw, header_level = head("Content-Length: -1") + body, True
    elif kind == "plus_length":
        raw, header_level = head(f"Content-Length: +{len(body)}") + body, True
    elif kind == "huge_length":
        raw = head("Content-Length: 99999999999999999999") + body
        header_level = True  # gunicorn's parser may refuse it before the app does
    elif kind == "chunk_bad_size":
        raw = head("Transfer-Encoding: chunked") + b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    elif kind == "chunk_no_end":
        raw = head("Transfer-Encoding: chunked") + chunks(body)
        stalls = True
    elif kind == "chunk_huge_size":
        raw = head("Transfer-Encoding: chunked") + b"ffffffffffffffffffff\r\n" + body
    elif kind == "chunk_extension":
        data = f"{len(body):x};name=value\r\n".encode() + body + b"\r\n" if body else b""
        raw = head("Transfer-Encoding: chunked") + data + b"0;last=1\r\n\r\n"
    elif kind == "chunk_trailer":
        raw = head("Transfer-Encoding: chunked") + chunks(body) + b"0\r\nX-Trailer: 1\r\n\r\n"
    elif kind == "chunk_bad_trailer":
        trailer = rng.choice([b"X Bad: 1", b"Content-Length: 5", b"X-Long: " + b"a" * 9000,
                              b"X-Fold: a\r\n b", b"X-Nul: a\x00b", b": empty",
                              b"X-Many: 1\r\n" * 200 + b"X-End: 1", b"NoColon"])
        raw = head("Transfer-Encoding: chunked") + chunks(body) + b"0\r\n" + trailer \
            + b"\r\n\r\n"
    elif kind == "chunk_bad_extension":
        extension = rng.choice([b';a="', b";=1", b'; a="b\x00"', b";" + b"e" * 9000, b";a b"])
        raw = head("Transfer-Encoding: chunked") + f"{len(body):x}".encode() + extension \
            + b"\r\n" + body + b"\r\n0\r\n\r\n"
    elif kind == "te_and_length":
        raw = head("Transfer-Encoding: chunked", f"Content-Length: {len(body)}") \
            + chunks(body) + b"0\r\n\r\n"
        header_level = True
    elif kind == "te_gzip":
        raw, header_level = head("Transfer-Encoding: gzip") + body, True
    elif kind == "chunk_bare_lf":
        raw = head("Transfer-Encoding: chunked") + f"{len(body):x}\n".encode() + body \
            + b"\n0\n\n"
        stalls = True  # a parser that waits for CRLF
    else:  # chunk_no_terminator: the last chunk's CRLF is missing
        raw = head("Transfer-Encoding: chunked") + f"{len(body):x}\r\n".encode() + body \
            + b"0\r\n\r\n"
    return raw, kind, header_level, stalls


def case(seed: int, index: int) -> Case:
    rng = random.Random(f"{seed}:{index}")
    openai = rng.random() < 0.3
    path = "/v1/audio/speech" if openai else "/tts"
    labels = []
    body: Any = _fields(rng, openai)
    if rng.random() < 0.5:
        labels.append(_mutate_fields(body, rng, openai))
    if rng.random() < 0.3:
        body, label = _structure(body, rng)
        labels.append(label)
    encoded, label = _encode(dumps(body), rng) if rng.random() < 0.3 else (
        dumps(body).encode("utf-8", "surrogatepass"), "utf8")
    labels.append(label)
    headers, label, header_level = _headers(rng)
    labels.append(label)
    method, version = "POST", "HTTP/1.1"
    if rng.random() < 0.05:
        method = rng.choice(["GET", "PUT", "post", "POST ", "PO\x00ST"])
        header_level = header_level or method not in ("GET", "PUT")
    if rng.random() < 0.05:
        version = rng.choice(["HTTP/1.0", "HTTP/2.0", "HTTP/1.2", "HTTP/x"])
        header_level = header_level or version not in ("HTTP/1.0",)
    if rng.random() < 0.03:
        path = rng.choice(["/tts?stream=1", "//tts", "/tts/", "/TTS", "/v1/audio/speech/",
                           "/tts%00", "/tts#x"])
    raw, frame, framing_header_level, stalls = _frame(method, path, version, headers, encoded,
                                                      rng)
    labels.append(f"{frame} {method!r} {version} {path}")
    return Case(" | ".join(labels), raw, path, header_level or framing_header_level, stalls)
