"""Dask at the edges: a LocalCluster on this machine or an existing cluster, and progress events.

Workers report per-video progress with `emit()` (a Dask event topic when running inside a worker,
a local callback otherwise), so the driver's progress bar moves per video, not per shard.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator

import dask
from distributed import Client, LocalCluster, get_worker

from dfprep.config import RunConfig
from dfprep.errors import ConfigError

PROGRESS_TOPIC = "dfprep-progress"
_local_sink: Callable[[dict], None] | None = None


def emit(event: dict) -> None:
    """Send a small progress event to the driver (never raises)."""
    try:
        worker = get_worker()
    except ValueError:  # not inside a Dask worker: in-process run
        if _local_sink is not None:
            _local_sink(event)
        return
    with contextlib.suppress(Exception):
        worker.log_event(PROGRESS_TOPIC, event)


@contextlib.contextmanager
def local_sink(fn: Callable[[dict], None]) -> Iterator[None]:
    global _local_sink
    prev, _local_sink = _local_sink, fn
    try:
        yield
    finally:
        _local_sink = prev


def dask_setup(worker) -> None:
    """Preload of LocalCluster workers: ignore Ctrl-C, which the terminal sends to the whole
    process group. The driver alone handles it (it cancels the jobs and closes the cluster);
    workers that also got it would die mid-job and print tracebacks over the summary."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# One process extracting a 1080p video peaks at about 320 MB (measured: detector, decoder, frames;
# more for larger frames, see README "Memory per worker"); below this floor Dask's nanny would kill
# and restart the worker in a loop instead of failing clearly.
MIN_WORKER_MEMORY = 512 * 2**20


def check_memory_limit(run: RunConfig) -> None:
    """`run.memory_limit`: auto, 0 (no limit), or a size (e.g. 4GB) a worker can run in."""
    from dask.utils import parse_bytes

    v = str(run.memory_limit).strip()
    if v.lower() in ("auto", "0", "none", ""):
        return
    try:
        n = parse_bytes(v)
    except (ValueError, TypeError):
        raise ConfigError(f"run.memory_limit: {v!r} is not a size (e.g. 4GB), auto or 0") from None
    if n < MIN_WORKER_MEMORY:
        raise ConfigError(f"run.memory_limit: {v} is too small for a worker to run "
                          f"(at least {MIN_WORKER_MEMORY // 2**20} MiB; auto or 0 = no limit)")


def default_workers(run: RunConfig) -> int:
    return run.workers if run.workers > 0 else max(1, os.cpu_count() or 1)


def threads_per_worker(run: RunConfig, requested: int) -> int:
    """Decoder/detector threads per worker process: an explicit value, else cores / workers."""
    if requested > 0:
        return requested
    if run.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS"):
        return 1
    return max(1, (os.cpu_count() or 1) // default_workers(run))


@contextlib.contextmanager
def make_client(run: RunConfig) -> Iterator[Client]:
    """A client on `run.scheduler` / DASK_SCHEDULER_ADDRESS, else on a fresh LocalCluster.

    The LocalCluster has one single-threaded worker process per core (the work is CPU-bound
    native code, so threads would only fight), binds scheduler and dashboard to localhost, and
    gives up on a task after its worker died `retries + 1` times.
    """
    check_memory_limit(run)
    address = run.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS", "")
    # Dask's nanny exports MALLOC_TRIM_THRESHOLD_, which also pins glibc's mmap threshold at
    # 128 KiB: every frame buffer then becomes an mmap/munmap pair, and decode + detect ran 17%
    # slower (measured). Worker memory stays flat without it (tests/test_reliability_extract.py).
    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
               if k != "MALLOC_TRIM_THRESHOLD_"}
    # The workers' statistical profiler samples every thread's stack every 10 ms under the GIL;
    # off, each CPU-bound shard job runs faster when both cores are busy (dfprep bench).
    with dask.config.set({"distributed.scheduler.allowed-failures": run.retries,
                          "distributed.nanny.pre-spawn-environ": environ,
                          "distributed.worker.profile.enabled": False}):
        if address:
            with Client(address, timeout="30s") as client:
                yield client
            return
        cluster = LocalCluster(
            n_workers=default_workers(run),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=run.dashboard or None,
            memory_limit=run.memory_limit,
            silence_logs=logging.ERROR,
            preload=[__name__],  # dask_setup above
        )
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
