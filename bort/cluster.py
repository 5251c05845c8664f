"""The stages' runs on a Dask cluster: bort.workers' pool interface, backed by a `distributed` scheduler.

The two heavy stages are embarrassingly parallel (the extraction's candidates, a task's fine-tuning
runs) and the local pool uses only the cores of the machine `dvc repro` runs on. Dask's scheduler
(`distributed`) is a well-kept, pure-Python engine with the `concurrent.futures` interface the stages
already use, that reruns a task whose worker died and treats GPUs as worker resources; a
SLURM/PBS/SGE/LSF allocation starts its workers through `dask-jobqueue`. So `extract.workers` and
`finetune.workers` take a scheduler's address (`tcp://host:8786`) or its scheduler file
(`cluster/scheduler.json`) instead of a process count, and the stage -- the parent process --
only submits, collects and writes its outputs, as it does with the local pool.

What a run needs on a worker, and how it gets there (README "Running on a cluster"):
- the code: the scheduler and the workers import `bort` from the project folder
  (`PYTHONPATH=<project>`); each call checks that the worker's copy has the stage's bytes (a
  digest of bort/, so a worker never runs other code, whatever path it imports from);
- the inputs and the outputs: a shared filesystem. The stage's working directory (the project
  folder) must be at the same path on every worker, as an HPC cluster's home or scratch is; each
  call runs there, so the stage's relative paths (data/tasks, params.yaml, models/...) mean on a
  worker what they mean here, and what a run writes (run folders, checkpoints) lands in place;
- the pool's shared state (the local pool's `initializer(*initargs)`: the teacher's states for
  the candidates, a task's splits for its runs): the arguments travel once, as a WorkerPlugin that
  the scheduler keeps and hands to every worker, also one that joins or restarts later; the
  initializer runs on a worker's first call of this pool, and again whenever a call of another
  pool ran there in between (one cluster can serve several stages);
- one thread: `dask worker --nthreads 1`, whose nanny starts the worker process with
  OMP/MKL/OPENBLAS_NUM_THREADS=1 (distributed's own default); each call checks both, since every
  run seeds itself and the thread count fixes the floating-point reduction order: that is what
  makes a run's outputs the same wherever it ran (on workers with the same software and CPU
  instruction set as each other; a heterogeneous cluster may differ in the last bits, as another
  machine running the local pool would); the project's bort/dask.yaml (DASK_CONFIG) unsets the
  nanny's MALLOC_TRIM_THRESHOLD_, with which runs took 1.4x as long (a warning says so);
- a GPU: when params.yaml `device` is a GPU setting each run asks for `resources={"GPU": n}`
  (bort.device.gpus_per_run), so it goes only to a worker started with `--resources GPU=n`, one
  run at a time per GPU. Tested on CPU contexts only (the routing); untested on a GPU.

Faults: a worker that dies mid-run (SIGKILL, out of memory, a lost node) loses nothing: the
scheduler gives its run to another worker (or to the one the nanny restarts), and the run
resumes from its last per-epoch checkpoint, written atomically on the shared path (an extraction
candidate, seconds long, trains again); the outputs are byte-identical to an uninterrupted run
(tests/test_cluster.py). A scheduler that cannot be reached, a cluster without a worker that can
take the runs, at the start or for `timeout` seconds in the middle, and a lost scheduler are each
one line naming the address, never a hang.
"""
from __future__ import annotations

import concurrent.futures as cf
import ctypes
import gc
import hashlib
import json
import logging
import os
import pickle
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Optional

from distributed import Client, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from bort.errors import BortError

log = logging.getLogger(__name__)
TIMEOUT_VARIABLE = "BORT_CLUSTER_TIMEOUT"
TIMEOUT_S = 60.0                  # connect, wait for a worker, or do without one mid-stage
_INITARGS: Dict[str, tuple] = {}  # on a worker: each registered pool's initializer arguments
_CURRENT: Dict[str, str] = {}     # on a worker: the pool whose initializer ran last here
_CODE: Dict[str, str] = {}        # the digest of this process's bort/ (computed once)


def timeout() -> float:
    """Seconds before an unreachable scheduler or a workerless cluster is an error
    (BORT_CLUSTER_TIMEOUT, default 60: long enough for a SLURM worker to start, short of a hang)."""
    text = os.environ.get(TIMEOUT_VARIABLE, "")
    try:
        return float(text) if text else TIMEOUT_S
    except ValueError:
        raise BortError(f"{TIMEOUT_VARIABLE}={text!r}: expected seconds, e.g. 60") from None


def address_of(setting: str) -> str:
    """The scheduler's address: the setting itself, or what its scheduler file says (the file
    `dask scheduler --scheduler-file` writes, a relative path read from the project folder)."""
    if "://" in setting:
        return setting
    path = Path(setting)
    if not path.is_file():
        raise BortError(f"{setting}: no Dask scheduler file there; start one with "
                        f"`dask scheduler --scheduler-file {setting}` (or give its tcp:// address)")
    try:
        return json.loads(path.read_text())["address"]
    except (ValueError, KeyError, TypeError):
        raise BortError(f"{setting}: expected a Dask scheduler file (JSON with an `address`)") from None


class _Initargs(WorkerPlugin):
    """A pool's initializer arguments, kept by the scheduler and given to every worker; when the
    pool closes, `release` drops what its initializer built on a worker (a long-lived worker
    serves stage after stage: the extraction's teacher states, BERT-large's 1.3 GB, would
    otherwise stay in every worker's memory until another pool's initializer replaced them)."""

    def __init__(self, key: str, initargs: tuple, release=None):
        self.key, self.initargs, self.release = key, initargs, release

    def setup(self, worker) -> None:
        _INITARGS[self.key] = self.initargs

    def teardown(self, worker) -> None:
        _INITARGS.pop(self.key, None)
        if _CURRENT.get("key") == self.key:
            _CURRENT.clear()
            if self.release is not None:
                self.release()
        gc.collect()
        _give_back_memory()


def _give_back_memory() -> None:
    """glibc's malloc_trim(0): freed heap goes back to the system (best effort; other libcs: no-op)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _call(setup: tuple, fn, *args):
    """A call of `fn(*args)` on a worker, with its pool's state set up and the project folder as
    the working directory (see the module docstring); runs in the worker's one task thread."""
    key, root, code, initializer = setup
    _check_worker(root, code)
    previous = os.getcwd()
    os.chdir(root)
    try:
        if _CURRENT.get("key") != key:
            _CURRENT.clear()
            if initializer is not None:
                if key not in _INITARGS:
                    raise BortError(f"worker {get_worker().address}: this pool's set-up never arrived "
                                    "(the stage closed, or the worker missed the plugin)")
                initializer(*_INITARGS[key])
            _CURRENT["key"] = key
        return fn(*args)
    finally:
        os.chdir(previous)


def code_digest() -> str:
    """SHA-256 of this process's bort package (every .py file's path and bytes)."""
    if "digest" not in _CODE:
        import bort
        package = Path(bort.__file__).resolve().parent
        digest = hashlib.sha256()
        for path in sorted(package.rglob("*.py")):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
        _CODE.update(digest=digest.hexdigest()[:16], where=str(package.parent))
    return _CODE["digest"]


def _check_worker(root: str, code: str) -> None:
    """The worker runs the stage's code, sees the project folder, and has one thread."""
    from bort.workers import THREAD_VARIABLES
    worker = get_worker()
    if code_digest() != code:
        raise BortError(f"worker {worker.address} imports other bort code ({_CODE['where']}) than the stage: start "
                        "workers with PYTHONPATH=<the project folder> (on a shared path) after any code change")
    if not Path(root).is_dir():
        raise BortError(f"worker {worker.address} does not see the project folder {root}: it must be on a "
                        "filesystem every worker shares, at the same path")
    threads = {v: os.environ.get(v) for v in THREAD_VARIABLES if os.environ.get(v) != "1"}
    if worker.state.nthreads != 1 or threads:
        raise BortError(f"worker {worker.address} has {worker.state.nthreads} thread(s) and {threads or 'one-thread'}"
                        " libraries; start workers with `dask worker ADDRESS --nthreads 1` (its nanny sets "
                        "OMP/MKL/OPENBLAS_NUM_THREADS=1), so runs give the same results on every worker")


class ClusterPool:
    """The part of concurrent.futures.Executor the stages use (`submit`, whose futures work with
    `as_completed` and `wait`), sending each call to the cluster; see `pool`."""

    def __init__(self, client: Client, address: str, setup: tuple, resources: Optional[dict], timeout_s: float):
        self.client, self.address, self.setup, self.resources = client, address, setup, resources
        self.timeout_s, self.closing, self.lock = timeout_s, False, threading.Lock()
        self.pending: Dict[cf.Future, object] = {}         # our future -> the Dask future behind it
        self.stop = threading.Event()
        self.watchdog = threading.Thread(target=self._watch, daemon=True, name="bort-cluster-watchdog")
        self.watchdog.start()

    def submit(self, fn, *args) -> cf.Future:
        mine: cf.Future = cf.Future()
        theirs = self.client.submit(_call, self.setup, fn, *args, pure=False, resources=self.resources,
                                    key=f"{fn.__name__}{repr(args)[:120]}-{os.urandom(8).hex()}")   # readable
        with self.lock:
            self.pending[mine] = theirs
        theirs.add_done_callback(lambda f: self._settle(mine, f))
        return mine

    def _settle(self, mine: cf.Future, theirs) -> None:
        """Pass a finished Dask future's outcome on (runs in a callback thread)."""
        status = theirs.status
        try:
            if status == "finished":
                outcome, failed = theirs.result(), False
            elif status == "cancelled":
                outcome, failed = (None if self.closing else BortError(
                    f"lost the Dask scheduler at {self.address}; what finished is on disk: run the stage again "
                    "to resume")), True
            else:
                outcome, failed = self._error(theirs.exception()), True
        except Exception as err:                            # the result could not be fetched
            outcome, failed = self._error(err), True
        self._finish(mine, outcome, failed)

    def _error(self, err: BaseException) -> BaseException:
        if isinstance(err, RuntimeError) and "deserialization of the task graph" in str(err):
            return BortError(f"the Dask scheduler at {self.address} cannot load bort: start it (and the workers) "
                             f"with PYTHONPATH={_CODE['where']} (the project folder, on a shared path)")
        if type(err).__name__ == "KilledWorker":
            return BortError(f"a run was lost with every worker of {self.address} that tried it (each died while "
                             "running it: out of memory? see the workers' logs): "
                             f"{str(err).splitlines()[0] if str(err) else err!r}")
        return err

    def _finish(self, mine: cf.Future, outcome, failed: bool) -> None:
        with self.lock:
            if self.pending.pop(mine, None) is None or mine.done():
                return
            if not failed:
                mine.set_result(outcome)
            elif outcome is None:
                mine.cancel()
                mine.set_running_or_notify_cancel()          # wakes wait() and as_completed()
            else:
                mine.set_exception(outcome)

    def _able(self) -> int:
        """Workers that could take a run now (running, and with the GPUs asked for)."""
        need = (self.resources or {}).get("GPU", 0)
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {}).values()
        return sum(1 for w in workers if w.get("status", "running") == "running"
                   and (w.get("resources") or {}).get("GPU", 0) >= need)

    def _watch(self) -> None:
        """Fail the pending runs once no worker could take them for `timeout_s` seconds (every
        worker gone, none back), instead of waiting forever."""
        without = None
        while not self.stop.wait(1.0):
            try:
                able = self._able()
            except Exception:                              # the scheduler is unreachable: counts as none
                able = 0
            if able or not self.pending:
                without = None
                continue
            without = without or time.monotonic()
            if time.monotonic() - without > self.timeout_s:
                self.fail(BortError(f"the Dask cluster at {self.address} has had no worker that can take these runs "
                                    f"{_needs(self.resources)}for {self.timeout_s:g} s; what finished is on disk: "
                                    "start workers (or run the stage again) to resume"))
                return

    def fail(self, error: Optional[BaseException]) -> None:
        """Cancel every pending run; its future gets `error` (None: cancelled)."""
        with self.lock:
            self.closing = self.closing or error is None
            theirs = list(self.pending.values())
            mine = list(self.pending)
        self.client.cancel(theirs)
        for future in mine:
            self._finish(future, error, True)

    def close(self) -> None:
        self.stop.set()
        self.watchdog.join()


def _needs(resources: Optional[dict]) -> str:
    return f"(GPU={resources['GPU']}) " if resources else ""


def _key(initializer, initargs: tuple, root: str) -> str:
    """A name for a pool's state that is the same for the same initializer, arguments and project
    folder (a stage run again replaces the plugin a killed run left) and differs between stages
    that may share the cluster (other tasks; the same task in another experiment's folder, whose
    relative paths and params.yaml are its own)."""
    name = f"{initializer.__module__}.{initializer.__qualname__}" if initializer else "none"
    return f"bort-{name}-{hashlib.sha256(pickle.dumps((root, initargs))).hexdigest()[:16]}"


@contextmanager
def pool(setting: str, initializer=None, initargs=(), gpus: int = 0, release=None):
    """A ClusterPool on the scheduler `setting` names (an address or a scheduler file); leaving it
    by an exception cancels the runs not yet finished (the finished ones were handed back).
    `release` (a module-level function) runs on each worker whose state `initializer` built, when
    the pool closes."""
    address, timeout_s = address_of(setting), timeout()
    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise BortError(f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s "
                        f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    resources = {"GPU": gpus} if gpus else None
    root = str(Path.cwd().resolve())
    key = _key(initializer, tuple(initargs), root)
    setup = (key, root, code_digest(), initializer)
    executor = None
    try:
        _wait_for_workers(client, address, resources, timeout_s)
        try:
            client.register_plugin(_Initargs(key, tuple(initargs), release), name=key)
        except (ImportError, AttributeError) as err:
            raise BortError(f"a worker of {address} cannot load bort ({err}): start workers with "
                            f"PYTHONPATH={_CODE['where']} (the project folder, on a shared path)") from None
        executor = ClusterPool(client, address, setup, resources, timeout_s)
        log.info("runs go to the Dask cluster at %s (%s)", address, _describe(client))
        _warn_if_slow(client, address)
        try:
            yield executor
        except BaseException:
            executor.fail(None)
            raise
    finally:
        if executor is not None:
            executor.close()
            try:
                client.unregister_worker_plugin(key)
            except Exception:                              # the scheduler is gone: nothing to undo
                pass
        client.close()


def _wait_for_workers(client: Client, address: str, resources: Optional[dict], timeout_s: float) -> None:
    """Return once a worker that can take the runs is there; else a one-line error after `timeout_s`."""
    need = (resources or {}).get("GPU", 0)
    deadline = time.monotonic() + timeout_s
    while True:
        workers = client.scheduler_info(n_workers=-1).get("workers", {}).values()
        if any((w.get("resources") or {}).get("GPU", 0) >= need for w in workers):
            return
        if time.monotonic() > deadline:
            what = f"with GPU={need} (start GPU workers with `--resources GPU={need}`)" if need else \
                f"(start workers with `dask worker {address} --nthreads 1`)"
            raise BortError(f"no worker joined the Dask cluster at {address} within {timeout_s:g} s {what}")
        time.sleep(0.25)


def _malloc_trim() -> Optional[str]:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def _warn_if_slow(client: Client, address: str) -> None:
    """Say so when workers run with Dask's nanny default MALLOC_TRIM_THRESHOLD_ (bort/dask.yaml)."""
    try:
        trimmed = [a for a, v in client.run(_malloc_trim).items() if v is not None]
    except Exception:                                       # a worker left meanwhile: nothing to say
        return
    if trimmed:
        log.warning("%d worker(s) of %s run with MALLOC_TRIM_THRESHOLD_ set (Dask's nanny default), which made "
                    "runs about 1.4x slower here: start them with DASK_CONFIG=<project folder>/bort/dask.yaml",
                    len(trimmed), address)


def _describe(client: Client) -> str:
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    gpus = sum((w.get("resources") or {}).get("GPU", 0) for w in workers.values())
    return f"{len(workers)} worker(s)" + (f", {gpus:g} GPU(s)" if gpus else "")
