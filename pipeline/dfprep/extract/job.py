"""One shard job's files, assembled from its videos' results in manifest order.

`JobWriter` writes what it is given in order and publishes the shard on `commit`; `OrderedJob`
feeds it results that arrive in any order (a Dask run); `run_shard_job` runs a whole job in this
process (the inline run). What is written depends only on the results, never on where or when
they were computed: this is what keeps shards byte-identical on any number of workers.
"""

from __future__ import annotations

import re
import socket
from collections import Counter
from dataclasses import dataclass

import cv2

from dfprep import __version__
from dfprep.config import ExtractConfig
from dfprep.distribute import emit
from dfprep.extract.plan import ShardJob
from dfprep.extract.video import VideoResult, run_video
from dfprep.pairing import JobPairs
from dfprep.shards import ShardFiles, ShardWriter

__all__ = ["Held", "JobWriter", "OrderedJob", "run_shard_job"]

MAX_ERROR_KINDS = 50


class JobWriter:
    """Writes one shard job from its videos' results, added in manifest order, and publishes the
    shard on `commit`."""

    def __init__(self, job: ShardJob):
        self.job = job
        self.files = ShardFiles(job.shards_dir, job.name)
        self.files.remove()  # an older or unfinished attempt's files: stats first
        self.index_rows: list[dict] = []
        self.video_rows: list[dict] = []
        self.dropped_rows: list[dict] = []
        self.pairing: Counter = Counter()
        self.counts: Counter = Counter()
        self.errors: Counter = Counter()
        self.strategies: Counter = Counter()
        self.seconds = 0.0
        self.hosts: set[str] = set()
        self.writer = ShardWriter(self.files)  # last: nothing can fail between it and the caller

    @property
    def added(self) -> int:
        return len(self.video_rows)

    def add(self, result: VideoResult) -> None:
        """The next video of the job (in manifest order): its samples go into the tar now."""
        row = self.job.videos[self.added]
        st = result.status_row
        if st["video_id"] != row["video_id"]:
            raise RuntimeError(
                f"shard {self.job.name}: expected video {row['video_id']!r}, got {st['video_id']!r}"
            )
        for key, members, index_row in result.samples:
            self.writer.write(key, members)
            index_row["shard"] = self.files.tar.name
            self.index_rows.append(index_row)
        self.video_rows.append(st)
        self.dropped_rows.extend(result.dropped)
        if st.get("pairing"):
            self.pairing[st["pairing"].split(":")[0]] += 1
            if st["pairing"].startswith("fallback"):
                self.pairing[st["pairing"]] += 1
        self.counts["faces_dropped"] += st.get("faces_dropped", 0)
        self.counts[st["status"]] += 1
        self.counts["transient"] += bool(st.get("transient"))
        self.counts["crops"] += st["crops"]
        self.counts["frames_sampled"] += st["frames_sampled"]
        if st["error"]:
            msg = re.sub(r"/\S+", "<path>", st["error"])  # group messages that differ by path only
            if msg in self.errors or len(self.errors) < MAX_ERROR_KINDS:
                self.errors[msg] += 1
        if st["strategy"]:
            self.strategies[st["strategy"]] += 1
        self.seconds += result.seconds
        if result.host:
            self.hosts.add(result.host)

    def commit(self, cfg: ExtractConfig) -> dict:
        """Publish the shard (stats last); returns the stats. Only once every video was added."""
        try:
            if self.added != len(self.job.videos):
                raise RuntimeError(
                    f"shard {self.job.name}: {self.added} of {len(self.job.videos)} videos added"
                )
            stats = self._stats(cfg)
            self.writer.commit(self.index_rows, self.video_rows, stats, self.dropped_rows)
        except BaseException:  # Ctrl-C included: never leave the temporary tar open
            self.writer.abort()
            raise
        return stats

    def _stats(self, cfg: ExtractConfig) -> dict:
        c = self.counts
        return {
            "shard": self.job.name,
            "params_hash": self.job.params_hash,
            "manifest": self.job.manifest,
            "manifest_id": self.job.manifest_id,
            "videos": len(self.job.videos),
            "ok": c["ok"],
            "no_face": c["no_face"],
            "failed": c["failed"],
            "transient": c["transient"],  # failed videos a resume runs again (extract.failures)
            "crops": c["crops"],
            "frames_sampled": c["frames_sampled"],
            "seconds": round(self.seconds, 3),  # processing time of its videos, summed
            "errors": dict(self.errors.most_common()),
            "strategies": dict(self.strategies),
            # paired fakes: per source (diff, mask, fallback, and each fallback reason)
            "pairing": dict(sorted(self.pairing.items())),
            "faces_dropped": c["faces_dropped"],
            "host": socket.gethostname(),  # the writer's
            "video_hosts": sorted(self.hosts),
            "threads": {"decode": cfg.decode.threads, "detect": cfg.detect.threads},  # per video
            # the crops' geometry, which a crop's record does not carry (SBI's landmarks need it)
            "crop": {"margin": cfg.crop.margin, "size": cfg.crop.size},
            "versions": _versions(),
        }

    def abort(self) -> None:
        """Drop the temporary tar; never raises."""
        self.writer.abort()


@dataclass
class Held:
    """Bytes of results held back, all jobs of a run together."""

    bytes: int = 0


class OrderedJob:
    """One shard job assembled from per-video results that arrive in any order: each result is
    written as soon as every earlier video of the job has been, so the bytes follow the manifest."""

    def __init__(self, job: ShardJob, held: Held | None = None):
        self.job = job
        self.writer: JobWriter | None = None  # opened with the first video written
        self.waiting: dict[int, VideoResult] = {}
        self.held = held or Held()
        self.failed = False

    @property
    def written(self) -> int:
        return self.writer.added if self.writer else 0

    @property
    def complete(self) -> bool:
        return self.written == len(self.job.videos)

    def add(self, i: int, result: VideoResult) -> None:
        """Video i of the job (its position in the manifest order) is done."""
        self.waiting[i] = result
        self.held.bytes += result.nbytes
        while self.written in self.waiting:
            r = self.waiting.pop(self.written)
            self.held.bytes -= r.nbytes
            if self.writer is None:
                self.writer = JobWriter(self.job)
            self.writer.add(r)

    def abort(self) -> None:
        self.failed = True
        self.held.bytes -= sum(r.nbytes for r in self.waiting.values())
        self.waiting.clear()
        if self.writer is not None:
            self.writer.abort()


def run_shard_job(
    job: ShardJob, cfg: ExtractConfig, video_timeout: float = 0.0, detectors=None
) -> dict:
    """Process one shard job's videos one after the other in this process and publish its files;
    returns the stats dict (also written last). The inline run; a Dask run spreads the videos.
    DETECTORS: the run's detector processes in GPU mode (`dfprep.extract.gpu`)."""
    files = ShardFiles(job.shards_dir, job.name)
    if files.is_complete(job.params_hash):  # a retried task whose first attempt finished
        return {**(files.read_stats() or {}), "skipped": True}
    writer = JobWriter(job)
    pairs = JobPairs(job.videos, cfg.pair.select)
    try:
        for i, row in enumerate(job.videos):
            gpu = {"detectors": detectors} if detectors else {}  # GPU mode only
            result = run_video(row, cfg, video_timeout, **pairs.task_args(i), **gpu)
            if result.reference is not None:
                pairs.keep(i, result.reference)
                result.reference = None
            pairs.done(i)  # its original's frames are freed after its last fake
            writer.add(result)
            st = result.status_row
            emit({"shard": job.name, "status": st["status"], "crops": st["crops"]})
        return writer.commit(cfg)
    except BaseException:
        writer.abort()
        raise


def _versions() -> dict:
    import av
    import onnxruntime

    return {
        "dfprep": __version__,
        "av": av.__version__,
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
    }
