"""What the README and docs/ name, and what the code really has.

Five kinds of fact are pulled out of the Markdown: command-line flags (`--x`), metric
names (`elastic_tts_*`, `tts_*`), status fields (`status.x.y`), worker settings (`TTS_*`)
and make targets (`make x`). Each is looked up where the code defines it: the argparse
parsers of `elastic-tts` and `elastic-tts-worker`, the operator's and the worker's
Prometheus registries, the status schema, the worker's settings table and the Makefile.
The extractors are plain functions of text, so a test can feed them a page with a bogus
name and see it caught.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def doc_pages() -> list[Path]:
    """The README and every page under docs/ (the generated reference included)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@dataclass(frozen=True)
class Mention:
    """One name a page mentions, and where."""

    kind: str  # flag, metric, status, setting, make
    name: str
    page: str
    line: int
    command: str | None = None  # for a flag: the command line it was given to, if known

    def where(self) -> str:
        return f"{self.page}:{self.line}: {self.kind} {self.name}"


# ---------------------------------------------------------------------------------------
# The code's side


def _flags_of(parser: argparse.ArgumentParser) -> set[str]:
    return {o for action in parser._actions for o in action.option_strings if o.startswith("--")}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


@cache
def cli_flags() -> dict[str, set[str]]:
    """'elastic-tts simulate' -> its flags (with the top level's), for our CLIs."""
    from elastic_tts.cli import build_parser as operator_parser
    from elastic_tts_dev.playground import build_parser as playground_parser
    from tts_worker.cli import build_parser as worker_parser

    commands: dict[str, set[str]] = {}
    for prog, parser in (("elastic-tts", operator_parser()),
                         ("elastic-tts-worker", worker_parser()),
                         ("python -m elastic_tts_dev.playground", playground_parser())):
        top = _flags_of(parser)
        commands[prog] = top
        for name, sub in _subparsers(parser).items():
            commands[f"{prog} {name}"] = top | _flags_of(sub)
    return commands


def all_cli_flags() -> set[str]:
    return set().union(*cli_flags().values())


# Flags of other tools the pages show (helm, kubectl, kind, k3d, docker, kopf, gunicorn,
# curl, pytest, az). A flag the pages give to none of our commands must be one of these;
# a test keeps the list to what the pages really use, so it cannot become a loophole.
OTHER_TOOLS_FLAGS = {
    "--namespace", "--create-namespace", "--set", "--set-string", "--install",
    "--server-side", "--field-selector", "--all-namespaces", "--as",
    "--image", "--rm", "--previous", "--name", "--cluster", "--build-arg", "--labels",
    "--node-taints", "--workers", "--all", "--eviction-policy",
    "--strict-markers", "--timeout",
}


@cache
def metric_names() -> set[str]:
    """Every series name the operator and the worker export, with the suffixes Prometheus
    gives each kind (`_total` for counters, `_bucket`/`_sum`/`_count` for histograms)."""
    from prometheus_client import REGISTRY

    import elastic_tts.handlers.metrics  # noqa: F401  registers the operator's metrics
    from tts_worker.metrics import WorkerMetrics

    worker = WorkerMetrics(namespace="docs", service="docs", pool="docs")
    families = [*REGISTRY.collect(), *worker._registry.collect()]
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",), "info": ("_info",),
                "histogram": ("", "_bucket", "_sum", "_count", "_created"),
                "summary": ("", "_sum", "_count", "_created")}
    names: set[str] = set()
    for family in families:
        if family.name.startswith(("elastic_tts_", "tts_")):
            names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


@cache
def status_schema() -> dict[str, Any]:
    path = ROOT / "operator" / "elastic_tts_dev" / "status-schema.yaml"
    loaded: dict[str, Any] = yaml.safe_load(path.read_text("utf-8"))
    return loaded


def status_path_exists(path: list[str], schema: dict[str, Any] | None = None) -> bool:
    """Whether `status.<path>` is in the schema; `<x>` stands for a map key, `[...]` for a
    list item."""
    node = status_schema() if schema is None else schema
    for part in path:
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return True  # the engine's memory: free-form below this point
        if part.startswith("["):
            if "items" not in node:
                return False
            node = node["items"]
        elif part.startswith("<"):
            if not isinstance(node.get("additionalProperties"), dict):
                return False
            node = node["additionalProperties"]
        elif part in node.get("properties", {}):
            node = node["properties"][part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]  # a real key of a map, e.g. a pool's name
        else:
            return False
    return True


@cache
def worker_settings() -> set[str]:
    """The worker's settings table, as environment variables, plus the TTS_* variables the
    worker's processes read directly from the environment."""
    from tts_worker.config import DEFAULTS, ENV_PREFIX

    names = {f"{ENV_PREFIX}_{key}" for key in DEFAULTS}
    for source in (ROOT / "worker" / "tts_worker").rglob("*.py"):
        names.update(re.findall(r"environ(?:\.get\(|\[)\"(TTS_[A-Z0-9_]+)\"",
                                source.read_text("utf-8")))
    return names


@cache
def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text("utf-8")
    targets: set[str] = set()
    for match in re.finditer(r"^([A-Za-z0-9][\w.-]*(?:[ \t]+[A-Za-z0-9][\w.-]*)*)[ \t]*:(?![=:])",
                             text, re.M):
        targets.update(match.group(1).split())
    return targets


# ---------------------------------------------------------------------------------------
# The pages' side

_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_INLINE = re.compile(r"`((?:[^`\n]|\n(?!\s*\n))+)`")  # a span may wrap, not a paragraph


def code_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, code) for every line of a fenced block and every inline code span."""
    fenced = [(m.start(), m.end()) for m in _FENCE.finditer(text)]
    for start, end in fenced:
        first = text.count("\n", 0, start) + 1
        for offset, line in enumerate(text[start:end].splitlines()[1:-1], start=1):
            yield first + offset, line
    prose = list(text)
    for start, end in fenced:  # blank the fences so their backticks are not inline spans
        prose[start:end] = [c if c == "\n" else " " for c in text[start:end]]
    blanked = "".join(prose)
    for match in _INLINE.finditer(blanked):
        yield blanked.count("\n", 0, match.start()) + 1, match.group(1).replace("\n", " ")


def _commands(code: str) -> Iterator[list[str]]:
    """The shell commands on one line of code, as words; a comment ends the line."""
    code = re.sub(r"^\s*\$\s+", "", code)
    try:
        words = shlex.split(code, comments=True)
    except ValueError:  # an unbalanced quote in a snippet: split on blanks instead
        words = code.split("#")[0].split()
    command: list[str] = []
    for word in words:
        if word in ("|", "||", "&&", ";", "\\"):
            if command:
                yield command
            command = []
        else:
            command.append(word)
    if command:
        yield command


def _flag(word: str) -> str | None:
    match = re.fullmatch(r"(--[a-z][a-z0-9-]*)(?:=.*)?", word)
    return match.group(1) if match else None


def flag_mentions(text: str, page: str) -> Iterator[Mention]:
    for line, code in code_lines(text):
        for words in _commands(code):
            command = None
            # The program is the first word after any VAR=value (`helm install elastic-tts
            # ...` names a release, not our command).
            start = next((i for i, w in enumerate(words) if not re.match(r"[A-Z_]+=", w)), 0)
            prog = words[start].rsplit("/", 1)[-1] if start < len(words) else ""
            if prog in ("elastic-tts", "elastic-tts-worker"):
                sub = words[start + 1] if start + 1 < len(words) else ""
                command = f"{prog} {sub}" if f"{prog} {sub}" in cli_flags() else prog
            for word in words:
                flag = _flag(word)
                if flag:
                    yield Mention("flag", flag, page, line, command)


_METRIC = re.compile(r"(?<![\w./-])((?:elastic_)?tts_[a-z0-9_]*[a-z0-9])(?![\w/-]|\.py)")
# Python packages and modules whose names look like metrics.
NOT_METRICS = {"tts_worker", "elastic_tts_dev"}


def metric_mentions(text: str, page: str) -> Iterator[Mention]:
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _METRIC.finditer(line):
            name = match.group(1)
            if name in NOT_METRICS or line[match.end():].startswith("."):
                continue  # a package, or a module path such as tts_worker.gunicorn_conf
            yield Mention("metric", name, page, number)


_SEGMENT = r"(?:[A-Za-z][A-Za-z0-9]*|<[^>\s]+>|\{[A-Za-z0-9, ]+\}|\[[^\]\s]+\])"
_STATUS = re.compile(rf"(?<![\w.])\.?status((?:\.{_SEGMENT}|\[[^\]\s]+\])+)")


def _expand(path: str) -> list[list[str]]:
    """`.pools.<p>.{ready,pending}` -> [[pools, <p>, ready], [pools, <p>, pending]]."""
    parts = re.findall(r"\{[^}]+\}|\[[^\]]+\]|<[^>]+>|[A-Za-z][A-Za-z0-9]*", path)
    paths: list[list[str]] = [[]]
    for part in parts:
        if part.startswith("{"):
            options = [o.strip() for o in part[1:-1].split(",") if o.strip()]
            paths = [[*p, o] for p in paths for o in options]
        else:
            paths = [[*p, part] for p in paths]
    return paths


def status_mentions(text: str, page: str) -> Iterator[Mention]:
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _STATUS.finditer(line):
            for path in _expand(match.group(1)):
                yield Mention("status", "status." + ".".join(path), page, number)


_SETTING = re.compile(r"\bTTS_[A-Z0-9_]*[A-Z0-9]\b")


def setting_mentions(text: str, page: str) -> Iterator[Mention]:
    for number, line in enumerate(text.splitlines(), start=1):
        for name in _SETTING.findall(line):
            yield Mention("setting", name, page, number)


def make_mentions(text: str, page: str) -> Iterator[Mention]:
    for line, code in code_lines(text):
        for words in _commands(code):
            for i, word in enumerate(words):
                if word != "make":
                    continue
                for arg in words[i + 1:]:
                    if "=" in arg or arg.startswith("-"):
                        continue  # a variable (PYTEST_ARGS=...) or an option
                    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", arg):
                        break
                    yield Mention("make", arg, page, line)
                break


def mentions(text: str, page: str) -> list[Mention]:
    found: list[Mention] = []
    for extract in (flag_mentions, metric_mentions, status_mentions, setting_mentions,
                    make_mentions):
        found.extend(extract(text, page))
    return found


# ---------------------------------------------------------------------------------------
# The check


def problem(m: Mention) -> str | None:
    """Why the code has no such thing, or None when it does."""
    if m.kind == "flag":
        if m.command is not None:
            if m.name not in cli_flags()[m.command]:
                return f"`{m.command}` has no {m.name}"
            return None
        if m.name not in all_cli_flags() | OTHER_TOOLS_FLAGS:
            return f"no command has {m.name}"
        return None
    if m.kind == "metric":
        return None if m.name in metric_names() else f"no exporter has {m.name}"
    if m.kind == "status":
        path = m.name.split(".")[1:]
        return None if status_path_exists(path) else f"the status schema has no {m.name}"
    if m.kind == "setting":
        return None if m.name in worker_settings() else f"the worker has no setting {m.name}"
    if m.kind == "make":
        return None if m.name in make_targets() else f"the Makefile has no target {m.name}"
    raise ValueError(m.kind)


def problems(found: Iterable[Mention]) -> list[str]:
    return [f"{m.where()}: {why}" for m in found if (why := problem(m)) is not None]


# ---------------------------------------------------------------------------------------
# Links between the pages

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text("utf-8"))
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def broken_links(page: Path) -> list[str]:
    """Relative links of a page whose file or heading does not exist."""
    broken = []
    text = _FENCE.sub("", page.read_text("utf-8"))
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no such heading")
    return broken
