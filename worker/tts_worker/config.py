"""Settings: defaults, then `TTS_*` environment variables, then explicit overrides.

Both the Flask factory and the gunicorn config read settings through `load_settings`, so a
value means the same thing to the app and to the server that runs it. Every bad value is
rejected with a message that names the variable and the value.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Config

ENV_PREFIX = "TTS"

# Keys as Flask stores them (the environment variable without its `TTS_` prefix).
DEFAULTS: dict[str, Any] = {
    "ENGINE": "espeak",
    "MODEL": None,
    "MODEL_ROOT": "/opt/models",
    "MODEL_DIR": None,
    "MODEL_WORKDIR": None,
    "DEVICE": "auto",
    "FP16": "auto",
    "MAX_BATCH": None,
    "BATCH_WINDOW_MS": 5.0,
    "CHUNK_CHARS": 120,
    "EMOTIONS": None,
    "VOICES": None,
    "ENGINE_TIMEOUT": 120.0,
    "ESPEAK_BIN": "espeak-ng",
    "MAX_CHARS": 500,
    "MAX_BODY_BYTES": 16384,
    "MAX_CONCURRENCY": 4,
    "MAX_QUEUE": 32,
    "THROUGHPUT": 100.0,
    "LATENCY_SLO_SECONDS": 5.0,
    "MAX_WAIT": None,
    "RETRY_AFTER": 1,
    "HEADER_TIMEOUT": 5.0,
    "BODY_TIMEOUT": 10.0,
    "CACHE_ENTRIES": 256,
    "CACHE_BYTES": 64 * 1024 * 1024,
    "SERVICE": "tts",
    "POOL": "default",
    "NAMESPACE": "default",
    "DRAIN_TIMEOUT": 25.0,
    "DRAIN_LINGER": 1.0,
    "BIND": "0.0.0.0:8080",
    "PROBE_BIND": "0.0.0.0:8081",
    "WORKERS": 1,
    "THREADS": None,
    "MAX_REQUESTS": 0,
    "MAX_REQUESTS_JITTER": None,
    "MAX_RSS_MB": 0,
    "MAX_VRAM_MB": 0,
    "RECYCLE_TIMEOUT": 300.0,
    "TERMINATION_LOG": "/dev/termination-log",
}

DEVICES = ("auto", "cpu", "cuda")
FP16_MODES = ("auto", "on", "off")


class ConfigError(ValueError):
    """A setting has a value the worker cannot run with."""


@dataclass(frozen=True)
class Settings:
    """Everything the worker is configured with. Field docs name the environment variable."""

    engine: str  # TTS_ENGINE: a registered engine name (espeak, modelscope)
    model: str | None  # TTS_MODEL: what the engine loads: a local path or an id in MODEL_ROOT
    model_root: str  # TTS_MODEL_ROOT: where images bake models, as <root>/<org>/<name>
    model_dir: str | None  # TTS_MODEL_DIR: local ModelScope model directory (modelscope engine)
    model_workdir: str | None  # TTS_MODEL_WORKDIR: where a read-only model dir is copied
    device: str  # TTS_DEVICE: auto | cpu | cuda
    fp16: str  # TTS_FP16: auto | on | off (CUDA only)
    max_batch: int | None  # TTS_MAX_BATCH: micro-batch size; unset = 8 on CUDA, 1 on CPU
    batch_window_ms: float  # TTS_BATCH_WINDOW_MS: how long a batch waits for company
    chunk_chars: int  # TTS_CHUNK_CHARS: long text is split into chunks of at most this
    emotions: tuple[str, ...] | None  # TTS_EMOTIONS: comma list; unset = the engine's own
    voices: tuple[str, ...] | None  # TTS_VOICES: comma list limiting the engine's voices
    engine_timeout: float  # TTS_ENGINE_TIMEOUT: seconds one synthesis may take
    espeak_bin: str  # TTS_ESPEAK_BIN: the espeak-ng executable
    max_chars: int  # TTS_MAX_CHARS: longest text accepted (413 beyond)
    max_body_bytes: int  # TTS_MAX_BODY_BYTES: largest request body (413 beyond)
    max_concurrency: int  # TTS_MAX_CONCURRENCY: synthesis slots per process
    max_queue: int  # TTS_MAX_QUEUE: admitted requests that may wait for a slot
    throughput: float  # TTS_THROUGHPUT: chars/s the process serves, until it has measured
    latency_slo_seconds: float  # TTS_LATENCY_SLO_SECONDS: the SLO per 100 characters
    max_wait: float | None  # TTS_MAX_WAIT: seconds a request may wait plus take; unset = SLO
    retry_after: int  # TTS_RETRY_AFTER: seconds, sent with 503 (429s compute theirs)
    header_timeout: float  # TTS_HEADER_TIMEOUT: seconds a client has to send its headers
    body_timeout: float  # TTS_BODY_TIMEOUT: seconds a client has to send its body
    cache_entries: int  # TTS_CACHE_ENTRIES: LRU audio cache size per process (0 = off)
    cache_bytes: int  # TTS_CACHE_BYTES: LRU audio cache budget per process
    service: str  # TTS_SERVICE: `service` label on every metric
    pool: str  # TTS_POOL: `pool` label on every metric
    namespace: str  # TTS_NAMESPACE: `namespace` label on every metric (downward API)
    drain_timeout: float  # TTS_DRAIN_TIMEOUT: most seconds SIGTERM waits for in-flight work
    drain_linger: float  # TTS_DRAIN_LINGER: seconds to keep answering 503 once idle
    bind: str  # TTS_BIND: the API's address
    probe_bind: str  # TTS_PROBE_BIND: /healthz, /readyz and /metrics, on their own listener
    workers: int  # TTS_WORKERS: gunicorn worker processes
    threads: int | None  # TTS_THREADS: threads per worker; unset = slots + queue + 4
    max_requests: int  # TTS_MAX_REQUESTS: replace a process after about this many (0 = never)
    max_requests_jitter: int | None  # TTS_MAX_REQUESTS_JITTER: up to this many more; unset = 10 %
    max_rss_mb: int  # TTS_MAX_RSS_MB: replace a process whose RSS passes this (0 = never)
    max_vram_mb: int  # TTS_MAX_VRAM_MB: the same for CUDA memory reserved (0 = never)
    recycle_timeout: float  # TTS_RECYCLE_TIMEOUT: seconds a replacement has to become ready
    termination_log: str  # TTS_TERMINATION_LOG: where an engine failure is written for kubelet

    @property
    def server_threads(self) -> int:
        # Every slot and queue place holds a thread while its request waits; the rest answer
        # 429s and the cheap routes while the engine is busy.
        if self.threads is not None:
            return self.threads
        return self.max_concurrency + self.max_queue + 4

    @property
    def recycle_jitter(self) -> int:
        if self.max_requests_jitter is not None:
            return self.max_requests_jitter
        return self.max_requests // 10

    @property
    def graceful_timeout(self) -> int:
        # gunicorn's hard stop comes after the drain and the connections it leaves open.
        return math.ceil(self.drain_timeout + self.drain_linger) + 5


def load_settings(overrides: Mapping[str, Any] | None = None,
                  into: Config | None = None) -> Settings:
    """Defaults, then `TTS_*` environment variables, then `overrides` (keys as in DEFAULTS).

    Environment values are parsed as JSON where they parse, as Flask's `from_prefixed_env`
    does, so `TTS_MAX_CHARS=300` is a number. `into` is the Config to fill (an app's);
    without one, a scratch Config is used.
    """
    config = into if into is not None else Config(root_path=".")
    config.from_mapping(DEFAULTS)
    config.from_prefixed_env(ENV_PREFIX)
    if overrides:
        config.update(overrides)
    return settings_from_mapping(config)


def settings_from_mapping(values: Mapping[str, Any]) -> Settings:
    settings = _settings(values)
    if settings.bind.rpartition(":")[2] == settings.probe_bind.rpartition(":")[2]:
        raise ConfigError(f"TTS_PROBE_BIND = {settings.probe_bind!r} uses the port of "
                          f"TTS_BIND = {settings.bind!r}; probes need a port of their own")
    return settings


def _settings(values: Mapping[str, Any]) -> Settings:
    return Settings(
        engine=_choice_str(values, "ENGINE"),
        model=_optional_str(values, "MODEL"),
        model_root=_choice_str(values, "MODEL_ROOT"),
        model_dir=_optional_str(values, "MODEL_DIR"),
        model_workdir=_optional_str(values, "MODEL_WORKDIR"),
        device=_enum(values, "DEVICE", DEVICES),
        fp16=_enum(values, "FP16", FP16_MODES),
        max_batch=_optional_int(values, "MAX_BATCH", minimum=1),
        batch_window_ms=_number(values, "BATCH_WINDOW_MS", minimum=0.0),
        chunk_chars=_int(values, "CHUNK_CHARS", minimum=8),
        emotions=_optional_list(values, "EMOTIONS"),
        voices=_optional_list(values, "VOICES"),
        engine_timeout=_number(values, "ENGINE_TIMEOUT", minimum=0.1),
        espeak_bin=_choice_str(values, "ESPEAK_BIN"),
        max_chars=_int(values, "MAX_CHARS", minimum=1),
        max_body_bytes=_int(values, "MAX_BODY_BYTES", minimum=1024),
        max_concurrency=_int(values, "MAX_CONCURRENCY", minimum=1),
        max_queue=_int(values, "MAX_QUEUE", minimum=0),
        throughput=_positive(values, "THROUGHPUT"),
        latency_slo_seconds=_positive(values, "LATENCY_SLO_SECONDS"),
        max_wait=None if values.get("MAX_WAIT") in (None, "")
        else _positive(values, "MAX_WAIT"),
        retry_after=_int(values, "RETRY_AFTER", minimum=1),
        header_timeout=_positive(values, "HEADER_TIMEOUT"),
        body_timeout=_positive(values, "BODY_TIMEOUT"),
        cache_entries=_int(values, "CACHE_ENTRIES", minimum=0),
        cache_bytes=_int(values, "CACHE_BYTES", minimum=0),
        service=_label(values, "SERVICE"),
        pool=_label(values, "POOL"),
        namespace=_label(values, "NAMESPACE"),
        drain_timeout=_number(values, "DRAIN_TIMEOUT", minimum=0.0),
        drain_linger=_number(values, "DRAIN_LINGER", minimum=0.0),
        bind=_address(values, "BIND"),
        probe_bind=_address(values, "PROBE_BIND"),
        workers=_int(values, "WORKERS", minimum=1),
        threads=_optional_int(values, "THREADS", minimum=1),
        max_requests=_int(values, "MAX_REQUESTS", minimum=0),
        max_requests_jitter=_optional_int(values, "MAX_REQUESTS_JITTER", minimum=0),
        max_rss_mb=_int(values, "MAX_RSS_MB", minimum=0),
        max_vram_mb=_int(values, "MAX_VRAM_MB", minimum=0),
        recycle_timeout=_positive(values, "RECYCLE_TIMEOUT"),
        termination_log=_choice_str(values, "TERMINATION_LOG"),
    )


def _name(key: str) -> str:
    return f"{ENV_PREFIX}_{key}"


def _int(values: Mapping[str, Any], key: str, *, minimum: int) -> int:
    value = values.get(key)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{_name(key)} = {value!r}, must be an integer")
    if value < minimum:
        raise ConfigError(f"{_name(key)} = {value}, must be at least {minimum}")
    return value


def _optional_int(values: Mapping[str, Any], key: str, *, minimum: int) -> int | None:
    if values.get(key) in (None, ""):
        return None
    return _int(values, key, minimum=minimum)


def _number(values: Mapping[str, Any], key: str, *, minimum: float) -> float:
    value = values.get(key)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(number):
        raise ConfigError(f"{_name(key)} = {_short(value)}, must be a number")
    if number < minimum:
        raise ConfigError(f"{_name(key)} = {value}, must be at least {minimum}")
    return number


def _positive(values: Mapping[str, Any], key: str) -> float:
    number = _number(values, key, minimum=0.0)
    if number <= 0:
        raise ConfigError(f"{_name(key)} = {values.get(key)}, must be greater than 0")
    return number


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _address(values: Mapping[str, Any], key: str) -> str:
    text = _choice_str(values, key)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{_name(key)} = {text!r}, must be HOST:PORT")
    return text


def _choice_str(values: Mapping[str, Any], key: str) -> str:
    value = values.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{_name(key)} = {value!r}, must be a non-empty string")
    return value.strip()


def _optional_str(values: Mapping[str, Any], key: str) -> str | None:
    value = values.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{_name(key)} = {value!r}, must be a string")
    return value


def _enum(values: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = values.get(key)
    if value not in allowed:
        raise ConfigError(f"{_name(key)} = {value!r}, must be one of {', '.join(allowed)}")
    return str(value)


def _label(values: Mapping[str, Any], key: str) -> str:
    # A JSON-looking value such as TTS_POOL=123 arrives as a number; a label is text.
    value = values.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{_name(key)} = {value!r}, must be a string")
    text = str(value).strip()
    if not text:
        raise ConfigError(f"{_name(key)} is empty; every metric carries it as a label")
    return text


def _optional_list(values: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    value = values.get(key)
    if value in (None, ""):
        return None
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
    elif isinstance(value, list):
        items = [str(item).strip() for item in value]
    else:
        raise ConfigError(f"{_name(key)} = {value!r}, must be a comma-separated list")
    if not all(items):
        raise ConfigError(f"{_name(key)} = {value!r} has an empty entry")
    return tuple(items)
