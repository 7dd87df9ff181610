"""A real Gregor cluster of local processes for the Python client tests.

Started with `gregor cluster up --detach`, stopped with `gregor cluster down`, both run as
real processes; every node the cluster starts is recorded in DIR/cluster.json and killed
at teardown even when a test fails.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def bin_dir() -> Path:
    d = Path(os.environ.get("GREGOR_BIN_DIR", REPO / "target" / "debug"))
    for exe in ("gregor", "gregor-controller", "gregor-broker"):
        if not (d / exe).exists():
            raise RuntimeError(f"{d / exe} is missing: build the workspace first (cargo build --workspace)")
    return d


class Cluster:
    def __init__(self, workdir: Path, controllers: int = 3, brokers: int = 3):
        self.dir = Path(workdir)
        self.bins = bin_dir()
        self.controllers = controllers
        self.brokers = brokers

    def gregor(self, *args, check=True, timeout=120, input=None):
        cmd = [str(self.bins / "gregor"), *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def up(self):
        self.gregor("cluster", "up", "--dir", str(self.dir), "--detach",
                    "--controllers", str(self.controllers), "--brokers", str(self.brokers),
                    "--bin-dir", str(self.bins), timeout=180)
        return self

    def info(self) -> dict:
        return json.loads((self.dir / "cluster.json").read_text())

    def nodes(self, role=None):
        return [n for n in self.info()["nodes"] if role is None or n["role"] == role]

    @property
    def bootstrap(self) -> str:
        return ",".join(external_address(n) for n in self.nodes("broker"))

    def kill(self, node: str, signal_name: str = "KILL"):
        self.gregor("cluster", "kill", "--dir", str(self.dir), node, "--signal", signal_name)

    def start(self, node: str):
        self.gregor("cluster", "start", "--dir", str(self.dir), node, timeout=60)

    def down(self):
        try:
            self.gregor("cluster", "down", "--dir", str(self.dir), check=False, timeout=60)
        finally:
            # Belt and braces: never leave a process of ours behind.
            if (self.dir / "cluster.json").exists():
                for n in self.nodes():
                    pid = n.get("pid")
                    if pid and _is_ours(pid, n):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass

    def logs(self) -> str:
        out = []
        for n in self.nodes():
            log = self.dir / n["name"] / "log"
            if log.exists():
                out.append(f"==== {n['name']} ====\n" + log.read_text()[-4000:])
        return "\n".join(out)


def external_address(node: dict) -> str:
    addrs = node["addresses"]
    return addrs.get("EXTERNAL") or addrs.get("external") or next(iter(addrs.values()))


def _is_ours(pid: int, node: dict) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False
    return os.path.basename(cmdline).startswith("gregor")


def wait_for(cond, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - the condition may fail while starting up
            last = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last})")
