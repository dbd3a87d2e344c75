"""`elastic-tts-worker serve`: run the worker under gunicorn.

Flags become TTS_* environment variables, so the app, the gunicorn config and every worker
process read one set of settings; then the process becomes gunicorn (exec), which keeps
its PID, as PID 1 in a container must.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tts_worker.config import ConfigError, load_settings

GUNICORN_CONFIG = "python:tts_worker.gunicorn_conf"
APP = "tts_worker:create_app()"
# glibc reads these when a process starts, so they are set before gunicorn is. Audio
# buffers are larger than glibc's initial mmap threshold; once one is freed the adaptive
# threshold rises past them, and later ones then come from (and stay in) the thread
# arenas: RSS grew to ~200 MiB on a 64 MiB cache. A fixed threshold (which turns the
# adaptation off) hands them back when freed; two arenas keep 40 threads from spreading
# what remains. Measured in bench/bench_worker_clients.py (RSS).
MALLOC_DEFAULTS = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elastic-tts-worker",
                                     description="The elastic-tts text-to-speech worker.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API and web UI under gunicorn")
    serve.add_argument("--host", default=None, help="address to bind (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8080)")
    serve.add_argument("--probe-port", type=int, default=None,
                       help="port of /healthz, /readyz and /metrics (TTS_PROBE_BIND; default "
                            "8081, or --port + 1 when only --port is given)")
    serve.add_argument("--engine", default=None, help="espeak or modelscope (TTS_ENGINE)")
    serve.add_argument("--model", default=None,
                       help="what the engine loads: a local model directory, or an id baked "
                            "into the image under TTS_MODEL_ROOT (TTS_MODEL)")
    serve.add_argument("--model-dir", default=None,
                       help="local ModelScope model directory (TTS_MODEL_DIR)")
    serve.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                       help="TTS_DEVICE (default auto)")
    serve.add_argument("--workers", type=int, default=None,
                       help="gunicorn worker processes (TTS_WORKERS, default 1)")
    return parser


def flag_environment(args: argparse.Namespace) -> dict[str, str]:
    """The TTS_* variables the flags set; flags win over the environment."""
    env: dict[str, str] = {}
    if args.host is not None or args.port is not None:
        host, _, port = os.environ.get("TTS_BIND", "0.0.0.0:8080").rpartition(":")
        env["TTS_BIND"] = f"{args.host or host or '0.0.0.0'}:{args.port or port or 8080}"
    if args.host is not None or args.port is not None or args.probe_port is not None:
        # The probes follow the API's host; without a port of their own, the next one.
        host, _, probe = os.environ.get("TTS_PROBE_BIND", "0.0.0.0:8081").rpartition(":")
        if args.probe_port is not None:
            probe = str(args.probe_port)
        elif args.port is not None and "TTS_PROBE_BIND" not in os.environ:
            probe = str(args.port + 1)
        env["TTS_PROBE_BIND"] = f"{args.host or host or '0.0.0.0'}:{probe}"
    if args.engine is not None:
        env["TTS_ENGINE"] = args.engine
    if args.model is not None:
        env["TTS_MODEL"] = (os.path.abspath(args.model) if os.path.isdir(args.model)
                            else args.model)
    if args.model_dir is not None:
        env["TTS_MODEL_DIR"] = os.path.abspath(args.model_dir)
    if args.device is not None:
        env["TTS_DEVICE"] = args.device
    if args.workers is not None:
        env["TTS_WORKERS"] = str(args.workers)
    return env


def check_settings() -> None:
    """Reject bad settings here, in one line, rather than in a worker that fails to boot.

    An engine that cannot start (no model, a voice it lacks) is not a bad setting: the
    worker starts anyway and says why on /readyz, where Kubernetes and the operator look.
    """
    from tts_worker.engines import engine_names

    settings = load_settings()
    if settings.engine not in engine_names():
        raise ConfigError(f"TTS_ENGINE = {settings.engine!r}, must be one of "
                          f"{', '.join(engine_names())}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.update(flag_environment(args))
    try:
        check_settings()
    except ConfigError as exc:
        print(f"elastic-tts-worker: {exc}", file=sys.stderr)
        return 2
    os.environ.update({k: v for k, v in MALLOC_DEFAULTS.items() if k not in os.environ})
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONFIG, APP])
    return 0  # not reached: the process is gunicorn now


if __name__ == "__main__":
    sys.exit(main())
