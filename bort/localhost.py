"""A localhost Dask cluster: a scheduler and one-thread workers on 127.0.0.1, started with Dask's
own CLI as README "Running on a cluster" starts them -- what bort.rehearsal runs its stages
against and what tests/test_cluster.py checks bort.cluster on (real processes, not mocks)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from distributed import Client

from bort.errors import BortError


class LocalCluster:
    """A Dask scheduler and one-thread workers on 127.0.0.1, started with Dask's own CLI as README
    "Running on a cluster" starts them (each with its nanny), logging into `folder`: the cluster
    of bort.rehearsal and tests/test_cluster.py. `pythonpath` defaults to the project folder."""

    def __init__(self, folder: Path, project: Path, pythonpath=None):
        self.folder, self.file, self.procs = folder, folder / "scheduler.json", {}
        self.dask = str(Path(sys.executable).parent / "dask")
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in (pythonpath or [project])),
                        DASK_CONFIG=str(project / "bort" / "dask.yaml"))
        self.file.unlink(missing_ok=True)
        self.start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                   "--scheduler-file", str(self.file))
        wait_for(self.file.exists, 60, "the scheduler file")
        self.address = json.loads(self.file.read_text())["address"]

    def start(self, name: str, *args: str) -> None:
        with open(self.folder / f"{name}.log", "ab") as log:          # the child keeps its own handle
            self.procs[name] = subprocess.Popen([self.dask, *args], env=self.env, stdout=log, cwd=self.folder,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def add_worker(self, name: str, *extra: str) -> None:
        """One one-thread worker (`extra`: e.g. --resources GPU=1), waited for until it has joined."""
        before = self.count()
        self.start(name, "worker", "--scheduler-file", str(self.file), "--nthreads", "1", "--no-dashboard",
                   "--name", name, *extra)
        wait_for(lambda: self.count() > before, 60, f"worker {name}")

    def count(self) -> int:
        with Client(self.address, timeout=10, set_as_default=False) as client:
            return len(client.scheduler_info(n_workers=-1)["workers"])

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(condition, seconds: float, what: str) -> None:
    """Poll `condition` every 0.2 s; a one-line error after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise BortError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.2)
