"""A Dask extract run: every video its own task, each shard written by the driver in manifest order.

Videos are submitted in manifest order, at most a couple per worker thread ahead of the workers,
so all cores stay busy to the last video whatever the number of jobs. An original's reference
stays on the cluster and goes to its fakes' tasks (`dfprep.pairing.RunPairs`); its crops come back
like any other video's.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable

from distributed import as_completed

from dfprep.config import ExtractConfig, Params, replace
from dfprep.core.errors import DetectorError, one_line
from dfprep.distribute import task_slots, threads_per_task
from dfprep.extract.job import Held, OrderedJob
from dfprep.extract.plan import ShardJob
from dfprep.extract.summary import ExtractSummary
from dfprep.extract.video import VideoResult, reference_part, result_part, run_video
from dfprep.pairing import RunPairs

__all__ = ["MAX_WAITING_BYTES", "DaskRun", "task_config"]

# Results the driver may hold while they wait for an earlier video of their shard (a slow video
# holds up only its own shard's writing, not the workers); past it, no new video is submitted.
MAX_WAITING_BYTES = 512 << 20
SLOTS_EVERY = 5.0  # seconds: workers come and go (adaptive clusters, deaths)


def task_config(cfg: ExtractConfig, client, videos: int) -> ExtractConfig:
    """cfg with the threads of one video task on this cluster (see `threads_per_task`)."""
    share = threads_per_task(client, 0, videos)  # asked once: it asks every worker
    return replace(
        cfg,
        decode=replace(cfg.decode, threads=cfg.decode.threads or share),
        detect=replace(cfg.detect, threads=cfg.detect.threads or share),
    )


class DaskRun:
    """The pending jobs of one run on CLIENT; `run` returns when every job is written or lost
    (SUMMARY counts both), SINK gets the progress events."""

    def __init__(
        self,
        client,
        pending: list[ShardJob],
        cfg: ExtractConfig,
        params: Params,
        summary: ExtractSummary,
        sink: Callable[[dict], None],
        interrupted: Callable[[], bool] = lambda: False,
        detectors=None,
    ):
        self.client, self.run_cfg = client, params.run
        self.detectors = detectors  # GPU mode: the run's detector processes (dfprep.extract.gpu)
        self.summary, self.sink, self.interrupted = summary, sink, interrupted
        self.slots, self.slots_at = task_slots(client), time.monotonic()
        sink({"dashboard": client.dashboard_link, "workers": len(client.nthreads())})
        self.cfg = task_config(cfg, client, sum(len(j.videos) for j in pending))
        self.held = Held()
        self.pairs = RunPairs(cfg.pair.select)
        self.jobs = [OrderedJob(j, self.held) for j in pending]  # those not committed yet
        for oj in self.jobs:
            self.pairs.add_job(oj.job.name, oj.job.videos)
        self.queue = deque((oj, i) for oj in self.jobs for i in range(len(oj.job.videos)))
        self.run_id = uuid.uuid4().hex[:8]
        self.futures: dict = {}  # future -> (OrderedJob, video position)
        self.done = as_completed()

    def run(self) -> None:
        try:
            self.submit_more()
            for fut in self.done:
                back = self.collect(fut)
                del fut  # the result is ours now: the cluster may forget it
                if back is not None:
                    self.write(*back)
                self.submit_more()
        except BaseException:
            if self.futures:
                self.client.cancel(list(self.futures))
            raise
        finally:
            for oj in self.jobs:  # not committed: drop its temporary tar
                oj.abort()

    def submit_more(self) -> None:
        if time.monotonic() - self.slots_at > SLOTS_EVERY:
            self.slots, self.slots_at = task_slots(self.client), time.monotonic()
        # a fake waiting for its original's task does not count: the workers would sit idle
        while (
            self.queue
            and len(self.futures) - self.pairs.blocked < 2 * self.slots
            and (self.held.bytes < MAX_WAITING_BYTES or not self.futures)
        ):
            oj, i = self.queue.popleft()
            if not oj.failed:
                self.submit(oj, i)

    def submit(self, oj: OrderedJob, i: int) -> None:
        """Video I of OJ as a task; an original's result is split: its crops come back, its
        reference stays on the cluster for its fakes."""
        name, retries = oj.job.name, self.run_cfg.retries
        key = f"{name}-{i:06d}-{self.run_id}"
        args = self.pairs.jobs[name].task_args(i)
        fut = self.client.submit(
            run_video,
            oj.job.videos[i],
            self.cfg,
            self.run_cfg.video_timeout,
            **args,
            **({"detectors": self.detectors} if self.detectors else {}),  # GPU mode only
            key=f"dfprep-video-{key}",
            retries=retries,
            pure=False,
        )
        ref = None
        if args.get("want_reference"):
            ref = self.client.submit(
                reference_part, fut, key=f"dfprep-reference-{key}", retries=retries
            )
            fut = self.client.submit(result_part, fut, key=f"dfprep-result-{key}", retries=retries)
        self.pairs.submitted(name, i, fut, ref)
        self.futures[fut] = (oj, i)
        self.done.add(fut)

    def collect(self, fut) -> tuple[OrderedJob, int, VideoResult] | None:
        """A finished task: (its job, position, result), or None (a failed job's)."""
        oj, i = self.futures.pop(fut, (None, 0))
        self.pairs.finished(fut)
        if oj is None or oj.failed:  # a cancelled video of a failed job
            return None
        try:
            result = fut.result()
        except Exception as e:  # its worker died retries + 1 times, or the task raised
            if self.interrupted():  # Ctrl-C inside an import or a C callback
                raise KeyboardInterrupt from e
            if isinstance(e, DetectorError):  # every later video would fail alike: stop the run
                raise
            self.fail(oj, e)
            return None
        self.pairs.back(oj.job.name, i)
        return oj, i, result

    def write(self, oj: OrderedJob, i: int, result: VideoResult) -> None:
        """Hand a result to its job's writer; a complete job is published."""
        st = result.status_row
        self.sink({"shard": oj.job.name, "status": st["status"], "crops": st["crops"]})
        try:
            oj.add(i, result)
            if oj.complete:
                oj.writer.commit(self.cfg)
                self.summary.done += 1
                self.summary.videos_run += len(oj.job.videos)
                self.sink({"shard": oj.job.name, "job_done": True, "videos": len(oj.job.videos)})
                self.jobs.remove(oj)
        except Exception as e:  # the disk: this job is lost, the others go on
            if self.interrupted():
                raise KeyboardInterrupt from e
            self.fail(oj, e)

    def fail(self, oj: OrderedJob, e: BaseException) -> None:
        """Lose job OJ (its other videos are cancelled) and say why."""
        oj.abort()
        mine = [f for f, (o, _) in self.futures.items() if o is oj]
        for f in mine:
            del self.futures[f]
        self.pairs.drop(oj.job.name, mine)
        if mine:
            self.client.cancel(mine)
        self.summary.failed_jobs.append((oj.job.name, one_line(e)))
        self.sink({"shard": oj.job.name, "job_done": True, "videos": len(oj.job.videos)})
