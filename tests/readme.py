"""The README's walk-through blocks, as a user copies them.

A block is the first fenced code block after an anchor ``<!-- walkthrough: NAME ... -->``.
Each command is one line of it (a trailing backslash joins the next), split as the shell
splits it (`shlex`, comments dropped). The tests that run these blocks fail on a command
they do not recognise, so the README cannot change under them unnoticed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Command:
    line: int  # where it starts in README.md, 1-based
    text: str  # as written, the continuation lines joined, the comment kept
    argv: tuple[str, ...]  # as the shell splits it

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.text}"


def _blocks_after(name: str, text: str) -> list[tuple[int, str, list[str]]]:
    """(first line number, language, lines) of each fenced block after the anchor."""
    lines = text.splitlines()
    anchor = re.compile(rf"<!--\s*walkthrough:\s*{re.escape(name)}(\s[^>]*)?-->")
    starts = [i for i, line in enumerate(lines) if anchor.search(line)]
    if len(starts) != 1:
        raise LookupError(f"README.md has {len(starts)} anchors <!-- walkthrough: {name} -->, "
                          "not one")
    blocks: list[tuple[int, str, list[str]]] = []
    index = starts[0] + 1
    while index < len(lines):
        opened = FENCE.match(lines[index])
        if opened:
            body: list[str] = []
            index += 1
            while index < len(lines) and not lines[index].startswith("```"):
                body.append(lines[index])
                index += 1
            blocks.append((index - len(body) + 1, opened.group(1), body))
        elif lines[index].startswith("#"):  # the next heading ends the walk-through
            break
        index += 1
    return blocks


def commands(name: str, text: str | None = None) -> list[Command]:
    """The commands of the walk-through's first (shell) block, in order."""
    blocks = _blocks_after(name, README.read_text(encoding="utf-8") if text is None else text)
    if not blocks or blocks[0][1] not in ("sh", "bash", "shell"):
        raise LookupError(f"no ```sh block follows <!-- walkthrough: {name} --> in README.md")
    first, _, body = blocks[0]
    found: list[Command] = []
    pending: list[str] = []
    for offset, line in enumerate(body):
        if not pending and not line.strip():
            continue
        pending.append(line)
        if line.rstrip().endswith("\\"):
            continue
        joined = " ".join(part.rstrip().removesuffix("\\").strip() for part in pending)
        start = first + offset - len(pending) + 1
        found.append(Command(start, joined, tuple(shlex.split(joined, comments=True))))
        pending = []
    if pending:
        raise LookupError(f"README.md:{first}: the block ends inside a continued line")
    return found


def console(name: str, text: str | None = None) -> list[str]:
    """The lines of the ```console block that follows the walk-through's commands."""
    blocks = _blocks_after(name, README.read_text(encoding="utf-8") if text is None else text)
    shown = [body for _, language, body in blocks if language == "console"]
    if not shown:
        raise LookupError(f"no ```console block follows <!-- walkthrough: {name} -->")
    return shown[0]


class Drift(AssertionError):
    """The README's walk-through is not what the test that runs it knows."""


class Walk:
    """A walk-through's commands, taken in order, each checked for the shape expected;
    `test` is the file to teach when the README changes."""

    def __init__(self, commands: list[Command], test: str) -> None:
        self.left = list(commands)
        self.test = Path(test).resolve().relative_to(README.parent)

    def take(self, *prefix: str) -> Command:
        if not self.left:
            raise Drift(f"the walk-through ends before `{' '.join(prefix)} ...`, which "
                        f"{self.test} runs next")
        command = self.left.pop(0)
        if command.argv[:len(prefix)] != prefix:
            raise Drift(f"{command}\n  {self.test} expects `{' '.join(prefix)} ...` here: "
                        "the README changed; teach the test the new step")
        return command

    def done(self) -> None:
        if self.left:
            raise Drift(f"commands {self.test} does not know (teach it):\n"
                        + "\n".join(str(c) for c in self.left))
