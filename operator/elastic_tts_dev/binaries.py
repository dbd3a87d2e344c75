"""The local cluster's upstream binaries, built from pinned sources and cached by version.

`tests/cluster/gobuild/go.mod` names the binaries (its ``tool`` block) and pins them:
kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from k8s.io/kubernetes,
etcd, kwok and helm. `build()` runs ``go build`` on that module through the Go module
proxy, and adds two sets of upstream YAML that ship inside Go modules: kwok's node and pod
stages, and the Gateway API CRDs (``gobuild/gatewayapi``, a module of its own).

Everything lands in one folder keyed by a hash of the files under gobuild/, so a change
of any pinned version builds afresh and an unchanged tree reuses the cache in seconds::

    ${ELASTIC_TTS_CACHE:-${XDG_CACHE_HOME:-~/.cache}/elastic-tts}/cluster/<key>/
        bin/            etcd kube-apiserver kube-controller-manager kube-scheduler
                        kubectl kwok helm
        kwok/stages.yaml        kwok's own stages (node-initialize, lease heartbeat, pod ready)
        crds/gateway-api.yaml   Gateway API, standard channel
        versions.json           module versions, Go version, build time

A build is written to a temporary folder and renamed into place, under a file lock, so
an interrupted build never leaves a cache that looks complete.

Command line: ``python -m elastic_tts_dev.binaries build`` (what ``make cluster-bin``
runs) and ``python -m elastic_tts_dev.binaries path``.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOBUILD = ROOT / "tests" / "cluster" / "gobuild"
GATEWAY_MODULE = GOBUILD / "gatewayapi"

NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl",
         "kwok", "helm")
# `go build -o dir/` names a binary after its package's last path element (before a
# major-version suffix); etcd's main package is go.etcd.io/etcd/server/v3.
RENAMES = {"server": "etcd"}
KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
)  # pod deletion is the launcher's own stage (elastic_tts_dev/kwok-pod-delete.yaml)
GATEWAY_CRDS = ("gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants")
RECIPE = 1  # bump when build() changes what it writes for the same go.mod
REPORTED_MODULES = ("k8s.io/kubernetes", "go.etcd.io/etcd/server/v3", "sigs.k8s.io/kwok",
                    "helm.sh/helm/v3", "sigs.k8s.io/gateway-api")

GO_MISSING = (
    "the Go toolchain is not on PATH, and the real-cluster tier builds kube-apiserver, "
    "etcd, kwok and helm with it: install Go {wanted} or newer (the official Linux "
    "tarball unpacked into /usr/local/go, then `export PATH=$PATH:/usr/local/go/bin`) "
    "and run `make cluster-bin` again"
)


class BuildError(RuntimeError):
    """The binaries are missing or could not be built; the message says what to do."""


@dataclass(frozen=True)
class Binaries:
    """Paths of one complete, cached build."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def __getitem__(self, name: str) -> Path:
        if name not in NAMES:
            raise KeyError(name)
        return self.bin / name

    @property
    def kwok_stages(self) -> Path:
        return self.root / "kwok" / "stages.yaml"

    @property
    def gateway_crds(self) -> Path:
        return self.root / "crds" / "gateway-api.yaml"

    def versions(self) -> dict[str, str]:
        loaded: dict[str, str] = json.loads((self.root / "versions.json").read_text())
        return loaded

    def complete(self) -> bool:
        files = [self[name] for name in NAMES] + [self.kwok_stages, self.gateway_crds,
                                                  self.root / "versions.json"]
        return all(f.is_file() for f in files)


def cache_base() -> Path:
    """~/.cache/elastic-tts, or $ELASTIC_TTS_CACHE (which the Makefile exports, for the
    cluster binaries and the tools `make tools` builds alike)."""
    explicit = os.environ.get("ELASTIC_TTS_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "elastic-tts"


def cache_key(gobuild: Path = GOBUILD) -> str:
    """A hash of every file under gobuild/ (go.mod and go.sum pin every version) and of
    the recipe below that turns them into the cache."""
    digest = hashlib.sha256(repr((NAMES, RENAMES, KWOK_STAGES, GATEWAY_CRDS,
                                  version_ldflags({}), RECIPE)).encode())
    for path in sorted(p for p in gobuild.rglob("*") if p.is_file()):
        digest.update(path.relative_to(gobuild).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cached() -> Binaries:
    return Binaries(cache_base() / "cluster" / cache_key())


def find() -> Binaries:
    """The cached build for this tree's go.mod, or BuildError naming `make cluster-bin`."""
    binaries = cached()
    if not binaries.complete():
        raise BuildError(
            f"the cluster binaries for tests/cluster/gobuild (key {binaries.root.name}) are "
            f"not built in {binaries.root.parent}: run `make cluster-bin` (a cold build "
            "takes about 20-40 minutes on two cores; later runs reuse the cache)")
    return binaries


def tool_packages(go_mod: str) -> list[str]:
    """The package paths in go.mod's ``tool`` directives (block or single-line form)."""
    block = re.search(r"^tool\s*\((.*?)^\)", go_mod, re.M | re.S)
    lines = block.group(1).splitlines() if block else []
    lines += re.findall(r"^tool\s+([^\s(]\S*)\s*$", go_mod, re.M)
    return [line.split("//")[0].strip() for line in lines if line.split("//")[0].strip()]


def required_go(go_mod: str) -> str:
    found = re.search(r"^go\s+(\S+)", go_mod, re.M)
    return found.group(1) if found else "1.26"


def module_versions(*go_mods: str) -> dict[str, str]:
    versions: dict[str, str] = {}
    for text in go_mods:
        for module in REPORTED_MODULES:
            found = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.M)
            if found:
                versions[module] = found.group(1)
    return versions


def version_ldflags(versions: dict[str, str]) -> str:
    """-X flags that stamp the release versions, as the upstream release builds do: a
    plain `go build` reports v0.0.0-master, and then helm refuses any chart with a
    `kubeVersion` constraint (ours says >=1.29)."""
    flags = ["-s", "-w"]
    kube = versions.get("k8s.io/kubernetes", "")
    parts = kube.lstrip("v").split(".")
    if len(parts) >= 2:
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [f"-X {package}.gitVersion={kube}", f"-X {package}.gitMajor={parts[0]}",
                      f"-X {package}.gitMinor={parts[1]}", f"-X {package}.gitTreeState=clean"]
        for package in ("helm.sh/helm/v3/pkg/chartutil", "helm.sh/helm/v3/pkg/lint/rules"):
            flags += [f"-X {package}.k8sVersionMajor={parts[0]}",
                      f"-X {package}.k8sVersionMinor={parts[1]}"]
    if "helm.sh/helm/v3" in versions:
        flags.append(f"-X helm.sh/helm/v3/internal/version.version={versions['helm.sh/helm/v3']}")
    return " ".join(flags)


GO_ELSEWHERE = (Path("/usr/local/go/bin/go"),)  # where the official tarball puts it


def go_binary(wanted: str) -> str:
    found = shutil.which("go") or next((str(p) for p in GO_ELSEWHERE if p.is_file()), None)
    if found is None:
        raise BuildError(GO_MISSING.format(wanted=wanted))
    return found


def _run(cmd: list[str], cwd: Path, capture: bool = False) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, check=True, text=True,
                              stdout=subprocess.PIPE if capture else None)
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"`{' '.join(cmd[:3])} ...` in {cwd} failed with exit "
                         f"{exc.returncode} (its output is above)") from None
    return done.stdout or ""


def _module_dir(go: str, module: str, cwd: Path) -> Path:
    """Where `go mod download` put a module's files (checked against go.sum)."""
    info = json.loads(_run([go, "mod", "download", "-json", module], cwd, capture=True))
    if info.get("Error"):
        raise BuildError(f"go mod download {module}: {info['Error']}")
    return Path(info["Dir"])


def _concatenate(paths: list[Path], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    texts = [p.read_text(encoding="utf-8").strip() for p in paths]
    target.write_text("\n---\n".join(texts) + "\n", encoding="utf-8")


def build(force: bool = False, log: bool = True) -> Binaries:
    """Build into the cache unless a complete build for this go.mod is there already."""
    target = cached()
    if target.complete() and not force:
        return target
    go_mod = (GOBUILD / "go.mod").read_text()
    go = go_binary(required_go(go_mod))
    base = target.root.parent
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f"{target.root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second build waits, then finds the cache
        if target.complete() and not force:
            return target
        staging = base / f"{target.root.name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        started = time.monotonic()
        packages = tool_packages(go_mod)
        if log:
            print(f"building {len(packages)} binaries from {GOBUILD} into {target.root}",
                  file=sys.stderr, flush=True)
        versions = module_versions(go_mod, (GATEWAY_MODULE / "go.mod").read_text())
        _run([go, "build", "-trimpath", f"-ldflags={version_ldflags(versions)}",
              "-o", f"{staging / 'bin'}/", *packages], GOBUILD)
        for old, new in RENAMES.items():
            if (staging / "bin" / old).exists():
                (staging / "bin" / old).rename(staging / "bin" / new)
        kwok = _module_dir(go, "sigs.k8s.io/kwok", GOBUILD)
        _concatenate([kwok / p for p in KWOK_STAGES], staging / "kwok" / "stages.yaml")
        gateway = _module_dir(go, "sigs.k8s.io/gateway-api", GATEWAY_MODULE)
        _concatenate([gateway / "config/crd/standard" / f"gateway.networking.k8s.io_{n}.yaml"
                      for n in GATEWAY_CRDS], staging / "crds" / "gateway-api.yaml")
        versions["go"] = _run([go, "env", "GOVERSION"], GOBUILD, capture=True).strip()
        versions["build_seconds"] = f"{time.monotonic() - started:.0f}"
        (staging / "versions.json").write_text(json.dumps(versions, indent=2) + "\n")
        built = Binaries(staging)
        missing = [n for n in NAMES if not built[n].is_file()]
        if missing:
            raise BuildError(f"go build produced no {', '.join(missing)}; the tool block of "
                             f"{GOBUILD / 'go.mod'} must name each of {', '.join(NAMES)}")
        shutil.rmtree(target.root, ignore_errors=True)
        staging.rename(target.root)
    return target


def size_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m elastic_tts_dev.binaries",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build_cmd = sub.add_parser("build", help="build into the cache unless already there")
    build_cmd.add_argument("--force", action="store_true", help="rebuild even if cached")
    sub.add_parser("path", help="print the cached bin/ folder, or fail if not built")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            started = time.monotonic()
            binaries = build(force=args.force)
            print(f"cluster binaries: {binaries.bin} "
                  f"({size_bytes(binaries.root) / 2**20:.0f} MiB; "
                  f"{time.monotonic() - started:.1f} s)")
        else:
            print(find().bin)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
