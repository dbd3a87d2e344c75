"""The `elastic-tts` command: explain (a dry run of one decision), simulate (replay a
trace against the alternatives) and run (the operator).

Every user error ends in one line on stderr naming the flag or field, and exit code 2.
No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from elastic_tts.commands.args import EXIT_USAGE, UsageError
from elastic_tts.commands.explain import add_explain
from elastic_tts.commands.run import add_run
from elastic_tts.commands.simulate import add_simulate
from elastic_tts.policy import SpecError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="elastic-tts",
        description="Cost-aware autoscaling of TTS workers across GPU, spot and CPU pools.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Each subcommand adds its own parser and sets `func`.
    for add in (add_explain, add_simulate, add_run):
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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
