"""The `elastic-tts` command: explain (a dry run of one decision), simulate (replay a
trace against the alternatives), calibrate (measure a worker for its pool stanza), status
(live TTSServices) and run (the operator).

Every user error ends in one line on stderr naming the flag or field, and exit code 2; a
command that cannot do what was asked (a cluster that does not answer, a TTSService that
does not exist) says why in one line and exits 1. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from elastic_tts.commands.args import (
    EXIT_FAILURE,
    EXIT_USAGE,
    CommandError,
    Parser,
    UsageError,
    examples,
)
from elastic_tts.commands.calibrate import add_calibrate
from elastic_tts.commands.explain import add_explain
from elastic_tts.commands.run import add_run
from elastic_tts.commands.simulate import add_simulate
from elastic_tts.commands.status import add_status
from elastic_tts.policy import SpecError


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from elastic_tts import __version__
    from elastic_tts.reconcile.kinds import TTSSERVICES

    try:
        installed = version("elastic-tts")
    except PackageNotFoundError:  # run from a source tree that was never installed
        installed = __version__
    python = ".".join(str(part) for part in sys.version_info[:3])
    return (f"elastic-tts {installed} ({TTSSERVICES.kind} {TTSSERVICES.api_version}, "
            f"Python {python})")


def build_parser() -> Parser:
    parser = Parser(
        prog="elastic-tts",
        description="Cost-aware autoscaling of TTS workers across GPU, spot and CPU pools.",
        epilog=examples(
            "elastic-tts simulate                       # the built-in day, every policy",
            "elastic-tts explain --spec my-tts.yaml --load 400",
            "elastic-tts calibrate --url http://127.0.0.1:8080",
            "elastic-tts status -n tts my-tts",
            "elastic-tts COMMAND --help                 # a command's flags and examples",
        ),
    )
    parser.add_argument("--version", action="version", version=version_text())
    sub: argparse._SubParsersAction[Any] = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND")
    # Each subcommand adds its own parser and sets `func`.
    for add in (add_explain, add_simulate, add_calibrate, add_status, add_run):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with a usage message on bad flags
    try:
        return int(args.func(args))
    except SpecError as exc:
        for problem in exc.problems:
            print(f"elastic-tts: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"elastic-tts: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CommandError as exc:
        print(f"elastic-tts: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
