"""A real two-node Ray cluster on this machine, started with ``ray start``, for the cluster tests.

The head node takes no work (tasks ask for the ``wmworker`` resource, which only worker nodes
have). Each node has its own temp dir (its own session dir), ports and working directory (an empty
folder). Where mount namespaces are available (``unshare -m``), a worker node runs in one where the
driver's folder is hidden behind an empty tmpfs: a path of the driver that reached a worker could
not be read there. Every node runs as ``ray start --block`` in its own session; it is stopped by
killing the PIDs of its process tree (and any process still naming its temp dir), never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wmstudio.sweep.watchdog import _table, alive, descendants

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")
RESOURCE = "wmworker"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_hide_folders() -> bool:
    """Whether this machine lets a process see its own mounts (``unshare -m`` and a tmpfs)."""
    try:
        return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                               "mount -t tmpfs tmpfs /mnt"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Node:
    """One ``ray start --block`` process and the Ray processes under it."""

    def __init__(self, name: str, args: list[str], base: Path, env: dict[str, str], hide: list[Path]) -> None:
        self.name = name
        self.temp_dir = base / name
        self.cwd = base / f"{name}-cwd"  # empty: the working directory of the node's processes
        self.temp_dir.mkdir()
        self.cwd.mkdir()
        self.log = (base / f"{name}.out").open("wb")
        cmd = [str(RAY), "start", "--block", f"--temp-dir={self.temp_dir}", "--node-ip-address=127.0.0.1",
               "--disable-usage-stats", f"--node-manager-port={free_port()}",
               f"--object-manager-port={free_port()}", f"--metrics-export-port={free_port()}",
               f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
               f"--runtime-env-agent-port={free_port()}", "--object-store-memory=200000000", *args]
        if hide:
            mounts = " && ".join(f"mount -t tmpfs tmpfs '{p}'" for p in hide)
            cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", f"{mounts} && exec \"$@\"", "sh", *cmd]
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env={**env, "TMPDIR": str(self.temp_dir)},
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.started = _table()[self.proc.pid][1]

    def pids(self) -> dict[int, int]:
        """PID -> start time of the node's processes: the ``ray start`` tree and anything naming its temp dir."""
        table = _table()
        out = descendants(self.proc.pid, table)
        if alive(self.proc.pid, self.started):
            out[self.proc.pid] = self.started
        for pid, (_, started, state) in table.items():
            if state != "Z" and str(self.temp_dir) in cmdline(pid):
                out[pid] = started
        return out

    def kill(self, sig: int = signal.SIGKILL) -> None:
        for _ in range(3):  # processes a dying raylet starts in between are caught on the next pass
            targets = self.pids()
            if not targets:
                break
            for pid, started in targets.items():
                if alive(pid, started):
                    with contextlib.suppress(OSError):
                        os.kill(pid, sig)
            time.sleep(0.5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self.log.close()

    def output(self) -> str:
        return (self.temp_dir.parent / f"{self.name}.out").read_text(errors="replace")[-3000:]


class Cluster:
    """A head node and worker nodes on this machine; ``stop()`` ends every one of them."""

    def __init__(self, hidden: list[Path]) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="wmr"))  # short: Ray's socket paths live under it
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.hidden = hidden
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled",
                    # a node that stops answering is declared dead within seconds, not half a minute
                    "RAY_health_check_initial_delay_ms": "1000", "RAY_health_check_period_ms": "1000",
                    "RAY_health_check_timeout_ms": "2000", "RAY_health_check_failure_threshold": "4"}
        self.nodes: list[Node] = []
        self.workers = 0

    def start_head(self) -> None:
        self.nodes.append(Node("head", ["--head", f"--port={self.port}", "--num-cpus=1", "--include-dashboard=false"], self.base, self.env, []))

    def add_worker(self, cpus: int = 1) -> Node:
        self.workers += 1
        node = Node(f"worker{self.workers}", [f"--address={self.address}", f"--num-cpus={cpus}",
                                              f"--resources={json.dumps({RESOURCE: cpus})}"],
                    self.base, self.env, self.hidden)
        self.nodes.append(node)
        return node

    def wait_for_workers(self, n: int, timeout: float = 90.0) -> None:
        """Until the cluster has ``n`` worker nodes (their resource, as a short-lived driver sees it)."""
        code = (f"import ray, json; ray.init(address={self.address!r}, log_to_driver=False, "
                "configure_logging=False); print(json.dumps(ray.cluster_resources()))")
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            r = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=60,
                               cwd=self.base)
            last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-500:]
            with contextlib.suppress(ValueError, IndexError):
                if json.loads(last).get(RESOURCE, 0) >= n:
                    return
            time.sleep(1.0)
        raise RuntimeError(f"the cluster did not get {n} worker node(s): {last}\n"
                           + "\n".join(f"--- {nd.name}\n{nd.output()}" for nd in self.nodes))

    def live_workers(self) -> list[Node]:
        return [n for n in self.nodes if n.name != "head" and alive(n.proc.pid, n.started)]

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.kill()
        stray = [pid for pid, (_, _, state) in _table().items() if state != "Z" and str(self.base) in cmdline(pid)]
        for pid in stray:  # e.g. a raylet re-parented after its ``ray start`` died
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
