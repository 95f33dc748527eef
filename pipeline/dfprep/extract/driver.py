"""One extract run: plan the jobs, keep what is complete, run the rest (inline or on Dask), and
summarise from the stats on disk, whatever happened (a failed job, Ctrl-C), with the dataset card
and wids index other clients read (`dfprep.shards.card`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from dfprep.config import ExtractConfig, Params, replace
from dfprep.core.errors import DetectorError, InputError, one_line
from dfprep.core.lock import output_lock
from dfprep.core.outputs import output_dir
from dfprep.core.signals import Terminated, interrupt_watch
from dfprep.detectors.client import DetectorProcesses
from dfprep.distribute import check_memory_limit, local_sink, make_client, remote_address
from dfprep.extract.dask_run import DaskRun
from dfprep.extract.gpu import plan_detection, stop_detection
from dfprep.extract.job import run_shard_job
from dfprep.extract.plan import ShardJob, plan_jobs, prepare_out, resolve_threads
from dfprep.extract.summary import ExtractSummary, summarize
from dfprep.shards import migrate_layout, write_card

__all__ = ["run_extract"]


def run_extract(
    manifests: list[str | Path],
    out: str | Path,
    params: Params | None = None,
    *,
    client=None,
    overwrite: bool = False,
    on_event: Callable[[dict], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    detectors: DetectorProcesses | None = None,
) -> ExtractSummary:
    """Run (or resume) an extraction. `client`: a dask Client, "inline" (no Dask), or None (make
    one from params.run). `on_plan(total_videos, already_done_videos)` and `on_event(event)`
    drive a progress display. `detectors`: detector processes the caller planned (and stops,
    see `dfprep.extract.gpu`); else `params.run.detect_device` decides, for this run."""
    params = params or Params()
    if not manifests:
        raise InputError("no manifest given")
    check_memory_limit(params.run)
    out = output_dir(out)
    if client is None and remote_address(params.run):
        # connect first: an unreachable scheduler is one error line, before any file is written
        with make_client(params.run) as c:
            return run_extract(
                manifests,
                out,
                params,
                client=c,
                overwrite=overwrite,
                on_event=on_event,
                on_plan=on_plan,
                detectors=detectors,
            )
    sink = on_event or (lambda e: None)
    ours = detectors is None
    if ours:
        detectors, notice = plan_detection(params, None if client in (None, "inline") else client)
        if notice:
            sink({"detector": notice})
    try:
        return _extract(manifests, out, params, client, overwrite, sink, on_plan, detectors)
    finally:
        if ours:
            stop_detection(detectors, client)


def _extract(manifests, out, params, client, overwrite, sink, on_plan, detectors) -> ExtractSummary:
    jobs = plan_jobs([Path(m) for m in manifests], out, params.extract)
    with output_lock(out, "dfprep extract"), interrupt_watch() as interrupted:
        moved = migrate_layout(out)  # a first-layout output: its tables to meta/, then resumed
        pending, kept, retried = prepare_out(jobs, out, overwrite)
        summary = ExtractSummary(
            out=str(out), jobs=len(jobs), skipped=kept, retried=retried, migrated=moved
        )
        summary.detector = detectors.device if detectors is not None else "workers"
        if on_plan:
            on_plan(
                sum(len(j.videos) for j in jobs),
                sum(len(j.videos) for j in jobs if j not in pending),
            )
        if retried:
            sink({"retrying": retried})
        t0 = time.time()
        try:
            _run(pending, params, client, summary, sink, interrupted, detectors)
        except KeyboardInterrupt as e:
            summary.interrupted = True
            summary.signal = interrupted.signal or (
                "SIGTERM" if isinstance(e, Terminated) else "SIGINT"
            )
        except Exception:
            if not interrupted():
                raise
            summary.interrupted = True  # Ctrl-C surfaced as another error (see dfprep.core.signals)
            summary.signal = interrupted.signal
        finally:
            summary.seconds = round(time.time() - t0, 3)
            summarize(jobs, out, summary)
            write_card(out)  # for the other clients: a dataset card, a wids index
    return summary


def _run(
    pending: list[ShardJob], params: Params, client, summary, sink, interrupted, detectors=None
) -> None:
    """The pending jobs, inline (one video at a time) or on a Dask client (given or made)."""
    cfg = params.extract
    if not pending:
        return
    if client == "inline" or params.run.scheduler == "inline":
        cfg = resolve_threads(cfg, replace(params.run, scheduler="inline"))  # one video at a time
        with local_sink(sink):
            _run_inline(pending, cfg, params.run.video_timeout, summary, interrupted, detectors)
    elif client is not None:
        DaskRun(client, pending, cfg, params, summary, sink, interrupted, detectors).run()
    else:
        with make_client(params.run) as c:
            DaskRun(c, pending, cfg, params, summary, sink, interrupted, detectors).run()


def _run_inline(
    pending: list[ShardJob], cfg: ExtractConfig, timeout: float, summary, interrupted, detectors
) -> None:
    """One job after the other in this process; a job that raises is lost, the others go on."""
    for j in pending:
        try:
            run_shard_job(j, cfg, timeout, detectors)
            summary.done += 1
            summary.videos_run += len(j.videos)
        except Exception as e:
            if interrupted():  # Ctrl-C inside an import or a C callback
                raise KeyboardInterrupt from e
            if isinstance(e, DetectorError):  # every later job would fail alike: stop the run
                raise
            summary.failed_jobs.append((j.name, one_line(e)))
