"""The operator as a user runs it: `elastic-tts run`, a separate process, its own logs.

`OperatorProcess(kubeconfig, namespaces=[...]).start()` waits until kopf's liveness
endpoint answers; `stop()` sends SIGTERM (kopf finishes its handlers and leaves its
peering), `kill()` SIGKILLs it, as a crash or an evicted pod would. `log()` returns
everything it wrote.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from elastic_tts_dev.cluster import wait_until
from elastic_tts_dev.processes import Child, free_port


def operator_command() -> list[str]:
    """`elastic-tts` from the running interpreter's environment."""
    script = Path(sys.executable).with_name("elastic-tts")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from elastic_tts.cli import main; "
                                  "sys.exit(main())"]


class OperatorProcess:
    def __init__(self, kubeconfig: Path, log: Path, *, namespaces: Sequence[str] = (),
                 standalone: bool = True, peering: str | None = None,
                 extra_args: Sequence[str] = (), env: dict[str, str] | None = None,
                 command: Sequence[str] | None = None) -> None:
        """Watches `namespaces` (all when empty). Without `standalone`, it peers through
        the (Cluster)KopfPeering named `peering`. `command` is the `elastic-tts` to run,
        by default the running interpreter's (`image_env` makes the image's)."""
        self.kubeconfig = kubeconfig
        self.log_path = log
        self.liveness_port = free_port()
        self.metrics_port = free_port()
        scope = [f"--namespace={ns}" for ns in namespaces] or ["--all-namespaces"]
        peer = ["--standalone"] if standalone else [f"--peering={peering or 'elastic-tts'}"]
        self.args = [*(command or operator_command()), "run", *scope, *peer,
                     f"--liveness=http://127.0.0.1:{self.liveness_port}/healthz",
                     f"--metrics-port={self.metrics_port}", *extra_args]
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), **(env or {})}
        self.child: Child | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout: float = 60.0) -> OperatorProcess:
        self.child = Child("operator", self.args, self.log_path, env=self.env)
        child = self.child

        def dead() -> str | None:
            if child.alive():
                return None
            return f"the operator exited with {child.process.returncode}:\n{child.tail()}"

        wait_until("the operator's liveness endpoint", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2).status == 200,
            timeout, every=0.25, alive=dead)
        self.started_at = time.time()
        return self

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()

    def stop(self, grace: float = 20.0) -> int | None:
        return self.child.stop(grace) if self.child else None

    def kill(self) -> None:
        if self.child:
            self.child.kill()

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
