"""Credentials for the commands a user runs (`elastic-tts status`), found as kubectl finds
them: --kubeconfig, else every file in $KUBECONFIG merged, else ~/.kube/config, else the
in-cluster service account; --context, else the current context.

$KUBECONFIG merges as kubectl merges it: files that do not exist are skipped; for each
cluster, user and context name the first file that defines it wins; current-context comes
from the first file that sets one. Paths in a file (certificates, keys) are relative to
that file, so they are made absolute before the files are merged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pykube
import yaml

from elastic_tts.adapters.kube import PykubeCluster

MAX_BYTES = 4 * 1024 * 1024  # a kubeconfig past this is not one
_SECTIONS = {"clusters": "cluster", "users": "user", "contexts": "context"}
_PATH_FIELDS = {"cluster": ("certificate-authority",),
                "user": ("client-certificate", "client-key", "tokenFile")}


class KubeconfigError(Exception):
    """No usable credentials; the message says which file or context, in one line."""


def connect(kubeconfig: str | None, context: str | None, timeout: float = 10.0
            ) -> tuple[PykubeCluster, str]:
    """A client for the chosen context, and that context's namespace (kubectl's default)."""
    config = load(kubeconfig, context)
    try:
        namespace = config.namespace
        api = pykube.HTTPClient(config, timeout=timeout)
    except (KeyError, OSError, ValueError, pykube.PyKubeError) as exc:
        raise KubeconfigError(f"cannot use context {config.current_context!r}: "
                              f"{_short(exc)}") from None
    return PykubeCluster(api), namespace


def load(kubeconfig: str | None, context: str | None) -> pykube.KubeConfig:
    if kubeconfig is not None:
        files = [Path(kubeconfig).expanduser()]
        if not files[0].is_file():
            raise KubeconfigError(f"--kubeconfig {kubeconfig}: no such file")
    elif os.environ.get("KUBECONFIG"):
        files = [Path(p).expanduser() for p in os.environ["KUBECONFIG"].split(os.pathsep) if p]
        files = [f for f in files if f.is_file()]
        if not files:
            raise KubeconfigError(f"none of the files in $KUBECONFIG exists "
                                  f"({os.environ['KUBECONFIG']})")
    else:
        home = Path("~/.kube/config").expanduser()
        if not home.is_file():
            return _in_cluster(context)
        files = [home]
    config = pykube.KubeConfig(_merged([_read(f) for f in files]))
    if len(files) == 1:
        config.filepath = files[0]  # pykube resolves embedded relative paths against it
    return _with_context(config, context)


def _in_cluster(context: str | None) -> pykube.KubeConfig:
    try:
        config = pykube.KubeConfig.from_service_account()
    except (OSError, KeyError, pykube.PyKubeError):
        raise KubeconfigError("no kubeconfig: pass --kubeconfig, set $KUBECONFIG or write "
                              "~/.kube/config") from None
    return _with_context(config, context)


def _with_context(config: pykube.KubeConfig, context: str | None) -> pykube.KubeConfig:
    names = sorted(config.contexts)
    if context is not None:
        if context not in config.contexts:
            raise KubeconfigError(f"--context {context}: no such context (the kubeconfig has "
                                  f"{', '.join(names) or 'none'})")
        config.set_current_context(context)
    elif config.doc.get("current-context") not in config.contexts:
        raise KubeconfigError("the kubeconfig has no current context: pass --context "
                              f"({', '.join(names) or 'it defines none'})")
    return config


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8-sig") as handle:
            text = handle.read(MAX_BYTES + 1)
        doc = yaml.safe_load(text) if len(text) <= MAX_BYTES else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise KubeconfigError(f"kubeconfig {path}: cannot read: {_short(exc)}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict) or not all(
            isinstance(doc.get(section) or [], list) for section in _SECTIONS):
        raise KubeconfigError(f"kubeconfig {path}: not a kubeconfig (clusters, users and "
                              "contexts must be lists)")
    return _absolute(doc, path.parent.resolve())


def _absolute(doc: dict[str, Any], base: Path) -> dict[str, Any]:
    for section, inner in _SECTIONS.items():
        for entry in doc.get(section) or []:
            body = entry.get(inner) if isinstance(entry, Mapping) else None
            if not isinstance(body, dict):
                raise KubeconfigError(f"kubeconfig {base}: every entry of {section} needs a "
                                      f"name and a {inner}")
            for key in _PATH_FIELDS.get(inner, ()):
                if isinstance(body.get(key), str) and not os.path.isabs(body[key]):
                    body[key] = str(base / body[key])
    return doc


def _merged(docs: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {section: [] for section in _SECTIONS}
    for section in _SECTIONS:
        seen: set[str] = set()
        for doc in docs:
            for entry in doc.get(section) or []:
                if entry.get("name") not in seen:
                    seen.add(entry.get("name"))
                    merged[section].append(entry)
    merged["current-context"] = next(
        (doc["current-context"] for doc in docs if doc.get("current-context")), None)
    return merged


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0][:200]
