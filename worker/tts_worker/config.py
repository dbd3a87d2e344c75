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


@dataclass(frozen=True)
class Setting:
    """One row of the settings table: `serve --help`, the docs and the defaults all come
    from it."""

    key: str  # as Flask stores it: the environment variable without its `TTS_` prefix
    default: Any
    doc: str

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}_{self.key}"


SETTINGS: tuple[Setting, ...] = (
    Setting("ENGINE", "espeak", "a registered engine name (espeak, modelscope)"),
    Setting("MODEL", None, "what the engine loads: a local path or an id in MODEL_ROOT"),
    Setting("MODEL_ROOT", "/opt/models", "where images bake models, as <root>/<org>/<name>"),
    Setting("MODEL_DIR", None, "local ModelScope model directory (modelscope engine)"),
    Setting("MODEL_WORKDIR", None, "where a read-only model dir is copied"),
    Setting("DEVICE", "auto", "auto | cpu | cuda"),
    Setting("FP16", "auto", "auto | on | off (CUDA only)"),
    Setting("MAX_BATCH", None, "micro-batch size; unset = 8 on CUDA, 1 on CPU"),
    Setting("BATCH_WINDOW_MS", 5.0, "how long a batch waits for company"),
    Setting("CHUNK_CHARS", 120, "long text is split into chunks of at most this"),
    Setting("EMOTIONS", None, "comma list; unset = the engine's own"),
    Setting("VOICES", None, "comma list limiting the engine's voices"),
    Setting("ENGINE_TIMEOUT", 120.0, "seconds one synthesis may take"),
    Setting("ESPEAK_BIN", "espeak-ng", "the espeak-ng executable"),
    Setting("MAX_CHARS", 500, "longest text accepted (413 beyond)"),
    Setting("MAX_BODY_BYTES", 16384, "largest request body (413 beyond)"),
    Setting("MAX_CONCURRENCY", 4, "synthesis slots per process"),
    Setting("MAX_QUEUE", 32, "admitted requests that may wait for a slot"),
    Setting("THROUGHPUT", 100.0, "chars/s the process serves, until it has measured"),
    Setting("LATENCY_SLO_SECONDS", 5.0, "the SLO per 100 characters"),
    Setting("MAX_WAIT", None, "seconds a request may wait plus take; unset = SLO"),
    Setting("RETRY_AFTER", 1, "seconds, sent with 503 (429s compute theirs)"),
    Setting("RETRY_BASE_MS", 100, "the retry-after-ms hint of a first attempt"),
    Setting("HEADER_TIMEOUT", 5.0, "seconds a client has to send its headers"),
    Setting("BODY_TIMEOUT", 10.0, "seconds a client has to send its body"),
    Setting("CACHE_ENTRIES", 256, "LRU audio cache size per process (0 = off)"),
    Setting("CACHE_BYTES", 64 * 1024 * 1024, "LRU audio cache budget per process"),
    Setting("SERVICE", "tts", "`service` label on every metric"),
    Setting("POOL", "default", "`pool` label on every metric"),
    Setting("NAMESPACE", "default", "`namespace` label on every metric (downward API)"),
    Setting("DRAIN_TIMEOUT", 25.0, "most seconds SIGTERM waits for in-flight work"),
    Setting("DRAIN_LINGER", 1.0, "seconds to keep answering 503 once idle"),
    Setting("BIND", "0.0.0.0:8080", "the API's address"),
    Setting("PROBE_BIND", "0.0.0.0:8081", "/healthz, /readyz and /metrics, on their own listener"),
    Setting("WORKERS", 1, "gunicorn worker processes"),
    Setting("THREADS", None, "threads per worker; unset = slots + queue + 4"),
    Setting("MAX_REQUESTS", 0, "replace a process after about this many (0 = never)"),
    Setting("MAX_REQUESTS_JITTER", None, "up to this many more; unset = 10 %"),
    Setting("MAX_RSS_MB", 0, "replace a process whose RSS passes this (0 = never)"),
    Setting("MAX_VRAM_MB", 0, "the same for CUDA memory reserved (0 = never)"),
    Setting("RECYCLE_TIMEOUT", 300.0, "seconds a replacement has to become ready"),
    Setting("TERMINATION_LOG", "/dev/termination-log",
            "where an engine failure is written for kubelet"),
)
DEFAULTS: dict[str, Any] = {setting.key: setting.default for setting in SETTINGS}

HOUR = 3600.0
DEVICES = ("auto", "cpu", "cuda")
FP16_MODES = ("auto", "on", "off")


class ConfigError(ValueError):
    """A setting has a value the worker cannot run with."""


@dataclass(frozen=True)
class Settings:
    """Everything the worker is configured with: one field per row of SETTINGS, named as
    its key in lower case."""

    engine: str
    model: str | None
    model_root: str
    model_dir: str | None
    model_workdir: str | None
    device: str
    fp16: str
    max_batch: int | None
    batch_window_ms: float
    chunk_chars: int
    emotions: tuple[str, ...] | None
    voices: tuple[str, ...] | None
    engine_timeout: float
    espeak_bin: str
    max_chars: int
    max_body_bytes: int
    max_concurrency: int
    max_queue: int
    throughput: float
    latency_slo_seconds: float
    max_wait: float | None
    retry_after: int
    retry_base_ms: int
    header_timeout: float
    body_timeout: float
    cache_entries: int
    cache_bytes: int
    service: str
    pool: str
    namespace: str
    drain_timeout: float
    drain_linger: float
    bind: str
    probe_bind: str
    workers: int
    threads: int | None
    max_requests: int
    max_requests_jitter: int | None
    max_rss_mb: int
    max_vram_mb: int
    recycle_timeout: float
    termination_log: str

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
        max_batch=_optional_int(values, "MAX_BATCH", minimum=1, maximum=256),
        batch_window_ms=_number(values, "BATCH_WINDOW_MS", minimum=0.0, maximum=1000.0),
        chunk_chars=_int(values, "CHUNK_CHARS", minimum=8, maximum=10_000),
        emotions=_optional_list(values, "EMOTIONS"),
        voices=_optional_list(values, "VOICES"),
        engine_timeout=_number(values, "ENGINE_TIMEOUT", minimum=0.1, maximum=HOUR),
        espeak_bin=_choice_str(values, "ESPEAK_BIN"),
        max_chars=_int(values, "MAX_CHARS", minimum=1, maximum=100_000),
        max_body_bytes=_int(values, "MAX_BODY_BYTES", minimum=1024, maximum=16 * 1024 * 1024),
        max_concurrency=_int(values, "MAX_CONCURRENCY", minimum=1, maximum=1024),
        max_queue=_int(values, "MAX_QUEUE", minimum=0, maximum=4096),
        throughput=_positive(values, "THROUGHPUT", maximum=1e6),
        latency_slo_seconds=_positive(values, "LATENCY_SLO_SECONDS", maximum=HOUR),
        max_wait=None if values.get("MAX_WAIT") in (None, "")
        else _positive(values, "MAX_WAIT", maximum=HOUR),
        retry_after=_int(values, "RETRY_AFTER", minimum=1, maximum=3600),
        retry_base_ms=_int(values, "RETRY_BASE_MS", minimum=1, maximum=60_000),
        header_timeout=_positive(values, "HEADER_TIMEOUT", maximum=HOUR),
        body_timeout=_positive(values, "BODY_TIMEOUT", maximum=HOUR),
        cache_entries=_int(values, "CACHE_ENTRIES", minimum=0, maximum=1_000_000),
        cache_bytes=_int(values, "CACHE_BYTES", minimum=0, maximum=64 * 1024**3),
        service=_label(values, "SERVICE"),
        pool=_label(values, "POOL"),
        namespace=_label(values, "NAMESPACE"),
        drain_timeout=_number(values, "DRAIN_TIMEOUT", minimum=0.0, maximum=HOUR),
        drain_linger=_number(values, "DRAIN_LINGER", minimum=0.0, maximum=600.0),
        bind=_address(values, "BIND"),
        probe_bind=_address(values, "PROBE_BIND"),
        workers=_int(values, "WORKERS", minimum=1, maximum=256),
        threads=_optional_int(values, "THREADS", minimum=1, maximum=10_000),
        max_requests=_int(values, "MAX_REQUESTS", minimum=0, maximum=10**9),
        max_requests_jitter=_optional_int(values, "MAX_REQUESTS_JITTER", minimum=0, maximum=10**9),
        max_rss_mb=_int(values, "MAX_RSS_MB", minimum=0, maximum=1024**2),
        max_vram_mb=_int(values, "MAX_VRAM_MB", minimum=0, maximum=1024**2),
        recycle_timeout=_positive(values, "RECYCLE_TIMEOUT", maximum=24 * HOUR),
        termination_log=_choice_str(values, "TERMINATION_LOG"),
    )


def _name(key: str) -> str:
    return f"{ENV_PREFIX}_{key}"


def _int(values: Mapping[str, Any], key: str, *, minimum: int, maximum: int) -> int:
    value = values.get(key)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 40:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{_name(key)} = {_short(value)}, must be an integer")
    if value < minimum:
        raise ConfigError(f"{_name(key)} = {_short(value)}, must be at least {minimum}")
    if value > maximum:
        raise ConfigError(f"{_name(key)} = {_short(value)}, must be at most {maximum}")
    return value


def _optional_int(values: Mapping[str, Any], key: str, *, minimum: int,
                  maximum: int) -> int | None:
    if values.get(key) in (None, ""):
        return None
    return _int(values, key, minimum=minimum, maximum=maximum)


def _number(values: Mapping[str, Any], key: str, *, minimum: float, maximum: float) -> float:
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
        raise ConfigError(f"{_name(key)} = {_short(value)}, must be at least {minimum}")
    if number > maximum:
        raise ConfigError(f"{_name(key)} = {_short(value)}, must be at most {maximum:g}")
    return number


def _positive(values: Mapping[str, Any], key: str, *, maximum: float) -> float:
    number = _number(values, key, minimum=0.0, maximum=maximum)
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
