"""Dask at the edges: a LocalCluster on this machine or an existing cluster, how many threads a
task gets, and progress events.

A Dask extract run reports progress from the driver, as each video's result comes back; a shard
job run in one process reports with `emit()` (a local callback, or a Dask event topic when it
runs inside a worker), so the progress bar moves per video, not per shard.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator

import dask
from distributed import Client, LocalCluster, get_worker

from dfprep.config import RunConfig, check_scheduler
from dfprep.core.errors import ConfigError, first_line
from dfprep.core.system import available_cores
from dfprep.core.system import default_workers as _share

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
# more for larger frames, see docs/reliability.md, "Memory per worker"); below this floor Dask's nanny would kill
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
        raise ConfigError(
            f"run.memory_limit: {v} is too small for a worker to run "
            f"(at least {MIN_WORKER_MEMORY // 2**20} MiB; auto or 0 = no limit)"
        )


def default_workers(run: RunConfig) -> int:
    """LocalCluster worker processes: run.workers, or one per core this process may use."""
    return run.workers if run.workers > 0 else _share()


def remote_address(run: RunConfig) -> str:
    """The address of the existing cluster to run on ("" = a LocalCluster or inline)."""
    address = run.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS", "")
    return "" if address == "inline" else address


def threads_per_worker(run: RunConfig, requested: int) -> int:
    """Decoder/detector threads of a process that runs one video at a time: an explicit value,
    else its share of the cores (inline: all of them; a LocalCluster worker: cores / workers)."""
    if requested > 0:
        return requested
    if run.scheduler == "inline":
        return available_cores()
    if run.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS"):
        return 1
    return max(1, available_cores() // default_workers(run))


def threads_per_task(client, requested: int, tasks: int) -> int:
    """Decoder/detector threads of one video task on the cluster behind `client`.

    An explicit value wins. Otherwise each host's cores divided by the tasks it runs at once: its
    workers' threads, or fewer when the run has fewer videos (`tasks`) than that; the smallest
    share over the hosts, so that no host is oversubscribed. The output never depends on it.
    """
    if requested > 0:
        return requested
    try:
        workers = _workers(client)
        cores = client.run(available_cores)  # per worker address
    except Exception:  # a worker gone meanwhile: the safe share
        return 1
    hosts: dict[str, list[int]] = {}
    for address, w in workers.items():
        slots, most = hosts.setdefault(w.get("host", address), [0, 1])
        hosts[w.get("host", address)] = [
            slots + int(w.get("nthreads", 1)),
            max(most, cores.get(address, 1)),
        ]
    if not hosts:
        return 1
    return min(max(1, c // max(1, min(slots, tasks))) for slots, c in hosts.values())


def _workers(client) -> dict:
    try:
        return client.scheduler_info(n_workers=-1)["workers"]  # newer Dask lists 5 by default
    except TypeError:
        return client.scheduler_info()["workers"]


def task_slots(client) -> int:
    """Tasks the cluster runs at once (its workers' threads); at least 1."""
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:
        return 1


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
    # slower (measured). Worker memory stays flat without it (tests/prep/test_reliability_extract.py).
    environ = {
        k: v
        for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
        if k != "MALLOC_TRIM_THRESHOLD_"
    }
    # The workers' statistical profiler samples every thread's stack every 10 ms under the GIL;
    # off, each CPU-bound shard job runs faster when both cores are busy (dfprep bench). The
    # event-loop tick check (every 20 ms in every process) and the system monitor cost an idle
    # 2-worker LocalCluster 10% of a core in all; at 1 s and 2 s, 4% (measured).
    with dask.config.set(
        {
            "distributed.scheduler.allowed-failures": run.retries,
            "distributed.nanny.pre-spawn-environ": environ,
            "distributed.worker.profile.enabled": False,
            "distributed.admin.tick.interval": "1s",
            "distributed.admin.system-monitor.interval": "2s",
        }
    ):
        if address:
            with connect(address, run.connect_timeout) as client:
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


def connect(address: str, timeout: float) -> Client:
    """A client on an existing scheduler; an address that is malformed, that nothing answers on,
    or where something else than a Dask scheduler listens is a ConfigError naming it within about
    `timeout` seconds (one line, not asyncio's traceback)."""
    why = check_scheduler(address) if address != "inline" else "'inline' is not a Dask address"
    if why:
        raise ConfigError(f"run.scheduler: {why}")
    probe_scheduler(address, timeout)
    try:
        return Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address}: {first_line(e) or type(e).__name__}"
        ) from None


class _Unreachable(Exception):
    """Nothing accepted the connection (the handshake never started)."""


async def _identity(address: str, timeout: float) -> dict:
    from distributed.comm import connect as comm_connect
    from distributed.comm.addressing import parse_address, parse_host_port

    scheme, loc = parse_address(address)
    if scheme in ("tcp", "tls"):  # does anything listen? (Dask's connect retries until timeout)
        host, port = parse_host_port(loc)
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError) as e:
            why = first_line(e) or f"no connection within {timeout:g} s"
            raise _Unreachable(why) from None
        writer.close()
    comm = await comm_connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def probe_scheduler(address: str, timeout: float) -> None:
    """Ask ADDRESS who it is, the whole exchange bounded by `timeout`, before a Client trusts it.

    A Client's own handshake has no overall bound: on a port that speaks another protocol it
    waits forever (an HTTP server waits for a request line that never comes), or reads the first
    bytes of a banner as a frame length and tries to allocate exabytes. The probe runs in its own
    short-lived thread and event loop, so it also works where a loop is already running."""

    async def bounded() -> dict:
        return await asyncio.wait_for(_identity(address, timeout), timeout)

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dfprep-probe") as ex:
        try:
            reply = ex.submit(asyncio.run, bounded()).result()
        except _Unreachable as e:
            raise ConfigError(f"cannot reach the Dask scheduler at {address}: {e}") from None
        except (TimeoutError, OSError):
            raise ConfigError(
                f"no Dask scheduler answered at {address} within {timeout:g} s "
                "(a port that is not a Dask scheduler's?)"
            ) from None
        except Exception as e:  # a reply that is not Dask's protocol (MemoryError included)
            raise ConfigError(
                f"{address} is not a Dask scheduler (it does not speak Dask's protocol: "
                f"{type(e).__name__})"
            ) from None
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        kind = reply.get("type") if isinstance(reply, dict) else type(reply).__name__
        raise ConfigError(f"{address} is not a Dask scheduler (it says it is a {kind})")
