"""One-thread worker processes: how the stages spread independent runs over the CPU's cores.

On a few cores, small networks use threads poorly (oneDNN and OpenMP split small GEMMs into
pieces too small to pay for their synchronisation): on the 2-core machine of the embedded
default, two processes of one thread each fine-tune 1.35x faster than one process of two
threads, and the extraction's candidates train about 2x faster. Every run seeds itself, and a
worker always has exactly one thread whatever the pool's size, so the results do not depend on
how many workers there are or which worker ran what (floating-point reduction order is fixed by
the thread count).

Workers are spawned, not forked: MXNet's engine and OpenMP's thread pool do not survive a fork.

Beyond one machine, the same pool runs on a Dask cluster (bort.cluster): params.yaml
`extract.workers` / `finetune.workers` is then the scheduler's address or scheduler file instead
of a process count (checked by bort.params.workers), and the stages do not change: they submit,
collect and write.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Union

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
Workers = Union[int, str]         # params.yaml `*.workers`: a process count, or a Dask cluster


def is_cluster(value: Workers) -> bool:
    """Whether a `workers` setting names a Dask cluster (else it is a local process count)."""
    return isinstance(value, str)


def describe(value: Workers) -> str:
    """How logs name where the runs go."""
    return f"the Dask cluster at {value}" if is_cluster(value) else f"{value} one-thread CPU processes"


@contextmanager
def one_thread_children():
    """Processes started inside inherit one-thread OpenMP/BLAS settings; this process's own
    (already initialised) libraries are unaffected, and its environment is restored on exit."""
    saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    os.environ.update({k: "1" for k in THREAD_VARIABLES})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def pool(workers: Workers, initializer=None, initargs=(), gpus: int = 0, release=None):
    """A pool of `workers` spawned one-thread processes, or of a Dask cluster's workers when
    `workers` names one (bort.cluster; each call then asks for `gpus` GPUs, and `release`, a
    module-level function undoing `initializer`, frees a worker's state when the pool closes:
    cluster workers outlive the stage, local processes exit with it); leaving it by an exception
    cancels the jobs not yet started (what finished has been handed back already)."""
    if is_cluster(workers):
        from bort import cluster
        return cluster.pool(workers, initializer, initargs, gpus, release)
    return _local(workers, initializer, initargs)


@contextmanager
def _local(workers: int, initializer=None, initargs=()):
    with one_thread_children(), ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"),
                                                    initializer, initargs) as executor:
        try:
            yield executor
        except BaseException:
            executor.shutdown(cancel_futures=True)
            raise
