"""A local Kubernetes cluster on loopback, from the upstream binaries in the cache.

Started as child processes, in this order, each waited for:
- etcd, with a data directory in the cluster's work folder;
- kube-apiserver on a free loopback port: ``--authorization-mode=Node,RBAC``, a CA, a
  serving certificate and a service-account key pair generated at start (`pki`),
  client certificates for each component, and an audit log of every request made by
  anyone but the control plane itself, the admin and kwok (`audit_events`);
- kube-controller-manager with the controllers a workload needs (deployment,
  replicaset, garbage collector, disruption, service account and its tokens, node
  lifecycle, taint eviction, pod GC, namespace, root CA publisher, EndpointSlices),
  each under its own service account (``--use-service-account-credentials``), as
  kubeadm runs it;
- kube-scheduler;
- kwok, with its upstream node and pod stages: it keeps every node annotated
  ``kwok.x-k8s.io/node: fake`` Ready (status and leases) and plays the kubelet for the
  pods bound there: Running and Ready at once, and gone `TERMINATION_SECONDS` after
  their deletion starts (`kwok-pod-delete.yaml`), so Terminating pods are seen.
Then the node pools (`nodes.DEFAULT_POOLS` unless told otherwise) and, unless
``gateway_api=False``, the Gateway API CRDs.

There is no container runtime: a pod "runs" because kwok says so. Pods that no node
fits stay Pending, as the scheduler leaves them.

API (tests/, bench/ and the playground use only this)::

    with LocalCluster() as cluster:          # or cluster = LocalCluster().start(); .stop()
        cluster.kubeconfig                   # admin kubeconfig (system:masters), a Path
        cluster.server                       # https://127.0.0.1:<port>
        cluster.kubectl("get", "nodes")      # the built kubectl as admin; CompletedProcess
        cluster.helm("install", ...)         # the built helm, KUBECONFIG set
        cluster.api                          # kubernetes.client.ApiClient, admin
        cluster.create_namespace("demo")     # and wait for its default ServiceAccount
        cluster.add_nodes(pool, 2)           # more kwok nodes; returns their names
        cluster.delete_nodes(names)
        cluster.interrupt_node(name)         # a spot reclaim: taint, cordon, drain, delete
        cluster.token_kubeconfig("ns", "sa", path)   # TokenRequest -> kubeconfig
        cluster.audit_events(user="system:serviceaccount:ns:sa")
        cluster.binaries["helm"]             # paths of the built binaries

`python -m elastic_tts_dev.cluster` starts one in the foreground, writes the admin
kubeconfig where ``--kubeconfig`` says, and stops everything on SIGINT or SIGTERM.
Every child dies with its parent, even a SIGKILLed one (`processes.Child`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import yaml

from elastic_tts_dev import binaries as binaries_module
from elastic_tts_dev import nodes as node_pools
from elastic_tts_dev.nodes import NodePool
from elastic_tts_dev.pki import Authority, Pair, service_account_keys
from elastic_tts_dev.processes import Child, free_port

T = TypeVar("T")

CONTROLLERS = (
    "deployment-controller", "replicaset-controller", "garbage-collector-controller",
    "disruption-controller", "serviceaccount-controller", "serviceaccount-token-controller",
    "node-lifecycle-controller", "taint-eviction-controller",
    "pod-garbage-collector-controller", "namespace-controller",
    "root-ca-certificate-publisher-controller",
    # A Service's Ready endpoints, as kube-proxy reads them (the e2e tier's clients too).
    "endpointslice-controller",
)
SERVICE_RANGE = "10.96.0.0/12"  # kubeadm's default: room for every Service
POD_DELETE_STAGE = Path(__file__).with_name("kwok-pod-delete.yaml")
TERMINATION_SECONDS = 3.0  # what POD_DELETE_STAGE says
ADMIN_USER = "elastic-tts-admin"
# The audit log keeps what tests assert on (the operator's calls) and leaves out the
# control plane's own chatter, the tests' admin identity and kwok.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "userGroups": ["system:masters", "system:nodes",
                                         "system:serviceaccounts:kube-system"]},
        {"level": "None", "users": ["system:kube-controller-manager",
                                    "system:kube-scheduler", "system:apiserver"]},
        {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*"]},
        {"level": "Metadata"},
    ],
}


PORT_ATTEMPTS = 3  # starts on fresh ports when another process took one of ours first


class ClusterError(RuntimeError):
    """The cluster could not start or do what was asked; the message says why."""


def wait_until(what: str, probe: Callable[[], T | None], timeout: float,
               every: float = 0.25, alive: Callable[[], str | None] | None = None) -> T:
    """Poll `probe` until it returns something truthy (bounded in time and count);
    `alive` names a process that died, which ends the wait at once."""
    deadline = time.monotonic() + timeout
    last: Any = None
    for _ in range(int(timeout / every) + 2):
        try:
            last = probe()
        except Exception as exc:  # a component still starting refuses connections
            last = exc
        if last and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        dead = alive() if alive else None
        if dead:
            raise ClusterError(dead)
        if time.monotonic() > deadline:
            break
        time.sleep(every)
    raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


def kubeconfig_text(server: str, ca: Path, user: str, *, cert: Pair | None = None,
                    token: str | None = None, namespace: str | None = None) -> str:
    """A kubeconfig with everything inline, so it can be copied anywhere."""
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    credentials: dict[str, str] = {}
    if cert is not None:
        credentials = {"client-certificate-data": b64(cert.cert),
                       "client-key-data": b64(cert.key)}
    if token is not None:
        credentials = {"token": token}
    context: dict[str, str] = {"cluster": "local", "user": user}
    if namespace:
        context["namespace"] = namespace
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "local",
        "clusters": [{"name": "local", "cluster": {
            "server": server, "certificate-authority-data": b64(ca)}}],
        "contexts": [{"name": "local", "context": context}],
        "users": [{"name": user, "user": credentials}],
    }, sort_keys=False)


class LocalCluster:
    """See the module docstring. Not thread-safe; one instance per process is plenty."""

    def __init__(self, pools: Sequence[NodePool] = node_pools.DEFAULT_POOLS,
                 workdir: Path | None = None, *, gateway_api: bool = True,
                 kwok_stages: Sequence[Path] = (), audit: bool = True,
                 controller_qps: int = 50, start_timeout: float = 120.0,
                 binaries: binaries_module.Binaries | None = None) -> None:
        """`kwok_stages` are extra kwok stage files, added to kwok's upstream ones;
        `workdir` (default: a new temporary folder, removed by `stop`) holds etcd's data,
        the PKI, kubeconfigs and every component's log under logs/."""
        self.binaries = binaries or binaries_module.find()
        self.pools = tuple(pools)
        self.gateway_api = gateway_api
        self.extra_stages = tuple(kwok_stages)
        self.audit = audit
        self.controller_qps = controller_qps
        self.start_timeout = start_timeout
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="elastic-tts-cluster-"))
        self.logs = self.workdir / "logs"
        self.audit_log = self.workdir / "audit.log"
        self.children: list[Child] = []
        self.port = 0
        self.server = ""
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.ca: Path = self.workdir / "pki" / "ca.crt"
        self._api: Any = None

    # -- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalCluster:
        started = time.monotonic()
        try:
            self._start_control_plane_on_free_ports()
            self.add_pools(self.pools)
            if self.gateway_api:
                self.kubectl("apply", "--server-side", "-f", str(self.binaries.gateway_crds))
                self.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                             "crd/httproutes.gateway.networking.k8s.io")
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Stop every component, last started first, and remove an own work folder (of
        a given one, etcd's data: over 100 MB of write-ahead log that nothing reads)."""
        while self.children:
            self.children.pop().stop(grace=10)
        if self._api is not None:
            self._api.close()
            self._api = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            shutil.rmtree(self.workdir / "etcd", ignore_errors=True)

    def _dead(self) -> str | None:
        for child in self.children:
            if not child.alive():
                return (f"{child.name} exited with {child.process.returncode}; the end of "
                        f"{child.log}:\n{child.tail()}")
        return None

    def _spawn(self, name: str, args: list[str]) -> Child:
        child = Child(name, args, self.logs / f"{name}.log")
        self.children.append(child)
        return child

    def _start_control_plane_on_free_ports(self) -> None:
        """The components take the ports free_port found a moment before they bind them;
        another process on the machine (a test's worker, a second cluster) can take one in
        between. That is a lost race, not a broken cluster: start again on fresh ports."""
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._start_control_plane()
                return
            except ClusterError as exc:
                if "address already in use" not in str(exc) or attempt == PORT_ATTEMPTS - 1:
                    raise
            while self.children:
                self.children.pop().stop(grace=10)
            if self._api is not None:  # it spoke to the old port
                self._api.close()
                self._api = None
            shutil.rmtree(self.workdir / "etcd", ignore_errors=True)

    def _start_control_plane(self) -> None:
        pki = self.workdir / "pki"
        authority = Authority(pki)
        self.ca = authority.cert
        sa = service_account_keys(pki)
        serving = authority.serving("apiserver")
        components = authority.serving("components")
        self.port = free_port()
        self.server = f"https://127.0.0.1:{self.port}"

        def kubeconfig(name: str, user: str, groups: tuple[str, ...] = ()) -> Path:
            path = self.workdir / f"{name}.kubeconfig"
            path.write_text(kubeconfig_text(self.server, self.ca, user,
                                            cert=authority.client(name, user, groups)))
            path.chmod(0o600)
            return path

        kubeconfig("admin", ADMIN_USER, ("system:masters",))
        kcm = kubeconfig("kube-controller-manager", "system:kube-controller-manager")
        scheduler = kubeconfig("kube-scheduler", "system:kube-scheduler")
        kwok = kubeconfig("kwok", "kwok", ("system:masters",))

        client, peer = free_port(), free_port()
        etcd = self._spawn("etcd", [
            str(self.binaries["etcd"]), "--name=local", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=local=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync", "--log-level=warn",
        ])
        wait_until("etcd", lambda: b'"health":"true"' in urllib.request.urlopen(
            f"http://127.0.0.1:{client}/health", timeout=2).read(), 30, alive=self._dead)
        del etcd

        args = [
            str(self.binaries["kube-apiserver"]),
            f"--etcd-servers=http://127.0.0.1:{client}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={pki}", f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}", f"--client-ca-file={self.ca}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--service-account-issuer={self.server}",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--allow-privileged=true", "--profiling=false",
        ]
        if self.audit:
            policy = self.workdir / "audit-policy.yaml"
            policy.write_text(yaml.safe_dump(AUDIT_POLICY))
            args += [f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}",
                     "--audit-log-format=json", "--audit-log-maxbackup=0"]
        self._spawn("kube-apiserver", args)
        context = ssl.create_default_context(cafile=str(self.ca))
        admin = authority.client("readiness", ADMIN_USER, ("system:masters",))
        context.load_cert_chain(str(admin.cert), str(admin.key))
        wait_until("kube-apiserver /readyz", lambda: urllib.request.urlopen(
            f"{self.server}/readyz", context=context, timeout=5).read() == b"ok",
            self.start_timeout, every=0.5, alive=self._dead)

        common = [f"--tls-cert-file={components.cert}",
                  f"--tls-private-key-file={components.key}",
                  "--bind-address=127.0.0.1", "--leader-elect=false"]
        kcm_port, scheduler_port = free_port(), free_port()
        self._spawn("kube-controller-manager", [
            str(self.binaries["kube-controller-manager"]), *common,
            f"--secure-port={kcm_port}", f"--kubeconfig={kcm}",
            f"--authentication-kubeconfig={kcm}", f"--authorization-kubeconfig={kcm}",
            f"--controllers={','.join(CONTROLLERS)}",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={sa.key}", f"--root-ca-file={self.ca}",
            f"--kube-api-qps={self.controller_qps}",
            f"--kube-api-burst={self.controller_qps * 2}",
        ])
        self._spawn("kube-scheduler", [
            str(self.binaries["kube-scheduler"]), *common,
            f"--secure-port={scheduler_port}", f"--kubeconfig={scheduler}",
            f"--authentication-kubeconfig={scheduler}",
            f"--authorization-kubeconfig={scheduler}",
            f"--kube-api-qps={self.controller_qps}",
            f"--kube-api-burst={self.controller_qps * 2}",
        ])
        kwok_port = free_port()
        self._spawn("kwok", [
            str(self.binaries["kwok"]), f"--kubeconfig={kwok}",
            f"--config={self.binaries.kwok_stages}", f"--config={POD_DELETE_STAGE}",
            *(f"--config={p}" for p in self.extra_stages),
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector="
            f"{node_pools.KWOK_ANNOTATION[0]}={node_pools.KWOK_ANNOTATION[1]}",
            f"--server-address=127.0.0.1:{kwok_port}",
            "--node-lease-duration-seconds=40", "--cidr=10.244.0.0/16",
        ])
        def healthy(url: str) -> bool:
            with urllib.request.urlopen(url, context=context, timeout=5) as answer:
                return bool(answer.read() == b"ok")

        for name, port in (("kube-controller-manager", kcm_port),
                           ("kube-scheduler", scheduler_port)):
            url = f"https://127.0.0.1:{port}/healthz"
            wait_until(f"{name} /healthz", partial(healthy, url), 60, every=0.5,
                       alive=self._dead)
        wait_until("kwok /healthz", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{kwok_port}/healthz", timeout=5).status == 200,
            60, every=0.5, alive=self._dead)
        # Pods need their namespace's ServiceAccount, which a controller creates.
        wait_until("the default ServiceAccount", lambda: self._core()
                   .read_namespaced_service_account("default", "default"), 60, alive=self._dead)

    # -- clients ----------------------------------------------------------------------

    @property
    def api(self) -> Any:
        """A `kubernetes.client.ApiClient` with the admin identity."""
        if self._api is None:
            from kubernetes import config
            self._api = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(self.kubeconfig))
        return self._api

    def _core(self) -> Any:
        from kubernetes import client
        return client.CoreV1Api(self.api)

    def env(self, kubeconfig: Path | None = None) -> dict[str, str]:
        """The environment for a client program: KUBECONFIG, and the built binaries first
        on PATH (so `helm` finds the same kubectl-compatible config)."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(kubeconfig or self.kubeconfig)
        env["PATH"] = f"{self.binaries.bin}{os.pathsep}{env.get('PATH', '')}"
        return env

    def _tool(self, name: str, args: Iterable[str], *, check: bool, input: str | None,
              kubeconfig: Path | None, timeout: float) -> subprocess.CompletedProcess[str]:
        command = [str(self.binaries[name]), *args]
        done = subprocess.run(command, env=self.env(kubeconfig), input=input, text=True,
                              capture_output=True, timeout=timeout)
        if check and done.returncode != 0:
            raise ClusterError(f"`{name} {' '.join(command[1:])}` exited with "
                               f"{done.returncode}:\n{done.stderr.strip() or done.stdout}")
        return done

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                kubeconfig: Path | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self._tool("kubectl", args, check=check, input=input, kubeconfig=kubeconfig,
                          timeout=timeout)

    def helm(self, *args: str, check: bool = True, input: str | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self._tool("helm", args, check=check, input=input, kubeconfig=None,
                          timeout=timeout)

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> str:
        """Create a namespace and wait until pods can be created in it."""
        core = self._core()
        core.create_namespace({"metadata": {"name": name, "labels": labels or {}}})
        wait_until(f"the default ServiceAccount of {name}",
                   lambda: core.read_namespaced_service_account("default", name), 30)
        return name

    def delete_namespace(self, name: str, wait: bool = False) -> None:
        from kubernetes.client.exceptions import ApiException
        core = self._core()
        try:
            core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
        if wait:
            def gone() -> bool:
                try:
                    core.read_namespace(name)
                except ApiException as exc:
                    return bool(exc.status == 404)
                return False
            wait_until(f"namespace {name} deleted", gone, 120, every=0.5)

    def token(self, namespace: str, service_account: str, seconds: int = 6 * 3600) -> str:
        """A token for a ServiceAccount through the TokenRequest API (bound to the API
        server's own audience), as the kubelet gets one for a pod."""
        request = self._core().create_namespaced_service_account_token(
            service_account, namespace,
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
             "spec": {"expirationSeconds": seconds}})
        return str(request.status.token)

    def token_kubeconfig(self, namespace: str, service_account: str, path: Path,
                         seconds: int = 6 * 3600) -> Path:
        """A kubeconfig that authenticates as the ServiceAccount, so the API server
        applies exactly that account's RBAC to whoever uses it."""
        user = f"system:serviceaccount:{namespace}:{service_account}"
        path.write_text(kubeconfig_text(self.server, self.ca, user,
                                        token=self.token(namespace, service_account, seconds),
                                        namespace=namespace))
        path.chmod(0o600)
        return path

    # -- nodes ------------------------------------------------------------------------

    def add_pools(self, pools: Iterable[NodePool]) -> list[str]:
        names: list[str] = []
        for pool in pools:
            names += self.add_nodes(pool, pool.count, unique=False)
        return names

    def add_nodes(self, pool: NodePool, count: int, unique: bool = True) -> list[str]:
        """`count` more nodes of `pool`, waited for until Ready (kwok marks them). Nodes
        of a ``runtime="process"`` pool are only created: kwok leaves them alone, and
        whoever plays their kubelet reports them Ready."""
        core = self._core()
        names = pool.node_names(count, unique=unique)
        for index, name in enumerate(names):
            core.create_node(pool.node(name, index))
        if pool.runtime == "process":
            return names
        for name in names:
            wait_until(f"node {name} Ready", partial(_node_ready, core, name), 60,
                       alive=self._dead)
        return names

    def delete_nodes(self, names: Iterable[str]) -> None:
        from kubernetes.client.exceptions import ApiException
        core = self._core()
        for name in names:
            try:
                core.delete_node(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    def pods_on(self, node: str) -> list[Any]:
        return list(self._core().list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={node}").items)

    def interrupt_node(self, name: str, notice: float = 10.0, delete: bool = True) -> None:
        """A spot reclaim, as Karpenter's interruption handling does it: taint the node
        ``karpenter.sh/disrupted:NoSchedule``, cordon it, evict its pods through the
        Eviction API (which honours PodDisruptionBudgets; a refused eviction is retried)
        and wait for them to terminate, then delete the Node. `notice` bounds the
        eviction and the wait, as the cloud's warning does: after it the Node goes
        anyway, and pods still bound to it are left to the pod garbage collector, as
        when an instance vanishes."""
        from kubernetes.client.exceptions import ApiException
        core = self._core()
        node = core.read_node(name)
        taints = [t.to_dict() for t in (node.spec.taints or [])]
        if not any(t["key"] == node_pools.DISRUPTED_TAINT["key"] for t in taints):
            taints.append(dict(node_pools.DISRUPTED_TAINT))
        core.patch_node(name, {"spec": {"unschedulable": True,
                                        "taints": [{k: v for k, v in t.items() if v}
                                                   for t in taints]}})
        deadline = time.monotonic() + notice
        pending = {(p.metadata.namespace, p.metadata.name) for p in self.pods_on(name)}
        while pending and time.monotonic() < deadline:
            for namespace, pod in sorted(pending):
                try:
                    core.create_namespaced_pod_eviction(pod, namespace, {
                        "apiVersion": "policy/v1", "kind": "Eviction",
                        "metadata": {"name": pod, "namespace": namespace}})
                    pending.discard((namespace, pod))
                except ApiException as exc:
                    if exc.status == 404:
                        pending.discard((namespace, pod))
                    elif exc.status != 429:  # 429: the PDB says not now
                        raise
            if pending:
                time.sleep(0.5)
        while self.pods_on(name) and time.monotonic() < deadline:
            time.sleep(0.5)
        if delete:
            self.delete_nodes([name])

    # -- observing --------------------------------------------------------------------

    def audit_events(self, user: str | None = None) -> list[dict[str, Any]]:
        """The audit log's answered requests (the Metadata level: who, verb, resource,
        response code), optionally only those of one user: each request once, when it
        completed, and a watch already when its stream started (it may never end)."""
        if not self.audit_log.exists():
            return []
        events: dict[str, dict[str, Any]] = {}  # by auditID: the first answer
        with open(self.audit_log, encoding="utf-8") as log:
            for line in log:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line being written right now
                if event.get("stage") not in ("ResponseStarted", "ResponseComplete"):
                    continue
                if user is not None and event.get("user", {}).get("username") != user:
                    continue
                events.setdefault(event.get("auditID", ""), event)
        return list(events.values())


def _node_ready(core: Any, name: str) -> bool:
    node = core.read_node(name)
    return any(c.type == "Ready" and c.status == "True"
               for c in (node.status.conditions or []))


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt, so `finally` blocks stop the children.

    SIGINT is handled even when the process inherited it ignored, as a shell's background
    job (`make playground &`) or nohup does: a foreground-until-interrupted command that
    promises to stop on SIGINT must not silently ignore it."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, handler)
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m elastic_tts_dev.cluster",
        description="Run a local Kubernetes cluster (etcd, kube-apiserver, "
                    "kube-controller-manager, kube-scheduler, kwok) until interrupted.")
    parser.add_argument("--kubeconfig", type=Path, default=Path("out/cluster/kubeconfig"),
                        help="where to write the admin kubeconfig (default %(default)s)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep etcd data, PKI and logs here (default: a temp folder)")
    args = parser.parse_args(argv)
    with signals_raise():
        try:
            cluster = LocalCluster(workdir=args.workdir).start()
        except (binaries_module.BuildError, ClusterError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        try:
            args.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cluster.kubeconfig, args.kubeconfig)
            print(f"cluster up in {cluster.started_in:.1f} s at {cluster.server}\n"
                  f"  export KUBECONFIG={args.kubeconfig.resolve()}\n"
                  f"  export PATH={cluster.binaries.bin}:$PATH\n"
                  f"  kubectl get nodes -L {node_pools.POOL_LABEL},"
                  f"{node_pools.CAPACITY_TYPE_LABEL}\n"
                  "Ctrl-C stops it.", flush=True)
            while True:
                dead = cluster._dead()
                if dead:
                    print(f"error: {dead}", file=sys.stderr)
                    return 1
                time.sleep(1)
        except KeyboardInterrupt:
            return 0
        finally:
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
