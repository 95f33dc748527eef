"""The worker side of dfprep extract: one video (decode -> detect -> select -> crop -> JPEG) and
one shard job (its videos in manifest order, written to one shard).

Per-video failures are data (a status row), never a failed task; a task only fails when its
worker dies or the disk does, and Dask retries it. The driver side (planning the jobs, running
them on Dask, the summary) is `dfprep.extract`.
"""

from __future__ import annotations

import math
import os
import re
import socket
import time
from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np

from dfprep import __version__
from dfprep.config import ExtractConfig
from dfprep.core.codec import encode_sample
from dfprep.core.errors import first_line
from dfprep.crop import crop_face
from dfprep.distribute import emit
from dfprep.errors import ConfigError, DfprepError, InputError
from dfprep.schema import CropRecord, SampleLabels, make_key
from dfprep.shard import ShardFiles, ShardWriter

MAX_ERROR_KINDS = 50


class VideoTimeout(DfprepError):
    pass


@dataclass(frozen=True)
class ShardJob:
    name: str
    shards_dir: str
    videos: tuple[dict, ...]
    params_hash: str
    manifest: str = ""  # the resolved path of the manifest it comes from (recorded in its stats)


def crop_label(row: dict, t: float) -> int:
    """A partly manipulated video (fake_segments set) is fake only inside its fake segments."""
    if int(row["label"]) == 0:
        return 0
    segs = row.get("fake_segments")
    if not segs:
        return 1
    return int(any(s["start"] <= t < s["end"] for s in segs))


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def one_line(e: BaseException) -> str:
    if isinstance(e, DfprepError):  # ours name a path, which may itself hold a line break
        return str(e).strip().replace("\r", "\\r").replace("\n", "\\n") or type(e).__name__
    msg = first_line(e)
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def shipped_face(image: np.ndarray):
    """A publisher's face crop taken as it is: the whole image, score 1, no landmarks (zeros)."""
    from dfprep.detect import Face

    h, w = image.shape[:2]
    return Face((0.0, 0.0, float(w), float(h)), 1.0, (0.0,) * 10)


def shipped_crop(image: np.ndarray, size: int) -> np.ndarray:
    """faces: shipped: the crop resized to size x size (no margin, no detection)."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    interp = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interp)


@dataclass
class VideoResult:
    status_row: dict
    samples: list[tuple[str, dict[str, bytes], dict]] = field(default_factory=list)
    seconds: float = 0.0  # processing time (set by run_video)
    host: str = ""  # where it ran (set by run_video)

    @property
    def nbytes(self) -> int:
        """Bytes of its samples (what a writer holds while it waits for an earlier video)."""
        return sum(len(b) for _, members, _ in self.samples for b in members.values())


def process_video(row: dict, cfg: ExtractConfig, detector, timeout: float = 0.0) -> VideoResult:
    """Decode -> detect -> select -> crop one video; never raises for a bad video.

    `cfg.decode.threads` must be resolved (> 0) by the caller, see `resolve_threads`."""
    from dfprep.decode import open_sampled  # imported here: workers import only what they run
    from dfprep.detect import select_faces

    status = {
        k: row[k] for k in ("video_id", "path", "dataset", "split", "label", "category", "method")
    }
    status.update(
        status="failed",
        error="",
        frames_sampled=0,
        frames_with_face=0,
        crops=0,
        strategy="",
        duration=0.0,
        width=0,
        height=0,
    )
    samples: list[tuple[str, dict[str, bytes], dict]] = []
    deadline = time.monotonic() + timeout if timeout > 0 else math.inf
    frames_with_face = 0
    n = 0  # sampled frames so far

    def check_time() -> None:  # also called by the decoder between packets
        if time.monotonic() > deadline:
            raise VideoTimeout(f"time limit of {timeout:g} s exceeded after {n} sampled frames")

    shipped = row.get("faces") == "shipped"  # the images are the publisher's face crops

    def flush(batch: list) -> None:
        nonlocal frames_with_face
        if not batch:
            return
        if shipped:
            detections = [[shipped_face(f.image)] for f in batch]
        else:
            detections = detector.detect([f.image for f in batch])
        for fr, faces in zip(batch, detections, strict=True):
            chosen = faces if shipped else select_faces(faces, cfg.detect)
            frames_with_face += bool(chosen)
            label = crop_label(row, fr.time)
            labels = SampleLabels(
                row["video_id"],
                row["dataset"],
                row["split"],
                label,
                int(row["label"]),
                row["category"],
                row["method"],
            )
            for j, face in enumerate(chosen):
                key = make_key(row["video_id"], fr.sample_index, j)
                rec = CropRecord(
                    key,
                    labels,
                    fr.sample_index,
                    fr.frame_index,
                    fr.time,
                    j,
                    face.score,
                    list(face.box),
                    list(face.landmarks),
                )
                face_img = (
                    shipped_crop(fr.image, cfg.crop.size)
                    if shipped
                    else crop_face(fr.image, face.box, cfg.crop.margin, cfg.crop.size)
                )
                jpg = encode_jpeg(face_img, cfg.crop.jpeg_quality)
                meta = rec.to_json()
                index_row = {**meta, "shard": "", "jpeg_bytes": len(jpg)}
                members = encode_sample(meta, jpg)
                samples.append((key, members, index_row))
        batch.clear()

    try:
        if not os.path.exists(row["path"]):
            raise InputError(f"file not found: {row['path']}")
        stride = int(row.get("frame_stride") or 0) or cfg.decode.frame_stride
        with open_sampled(
            row["path"],
            cfg.decode,
            kind=row.get("kind") or "video",
            frame_stride=stride,
            threads=max(1, cfg.decode.threads),
            check=check_time if timeout > 0 else None,
        ) as (info, frames):
            status.update(
                strategy=info.strategy,
                duration=float(info.duration or 0.0),
                width=int(info.width),
                height=int(info.height),
            )
            batch: list = []
            for fr in frames:
                n += 1
                batch.append(fr)
                if len(batch) >= cfg.detect.batch_size:
                    flush(batch)
                check_time()
            flush(batch)
            status["frames_sampled"] = n
            status["strategy"] = info.strategy  # final only now: a failed seek falls back
            if info.errors:
                status["error"] = f"warning: {info.errors} undecodable packet(s) skipped"
    except ConfigError:  # the parameters, not the video: the shard job fails and is never complete
        raise
    except Exception as e:  # a bad video is a status row, not a failed shard
        status.update(status="failed", error=one_line(e), frames_with_face=frames_with_face)
        return VideoResult(status, [])
    status["frames_with_face"] = frames_with_face
    status["crops"] = len(samples)
    if status["frames_sampled"] == 0:
        status.update(status="failed", error=status["error"] or "no frames sampled")
        return VideoResult(status, [])
    status["status"] = "ok" if samples else "no_face"
    return VideoResult(status, samples)


def run_video(row: dict, cfg: ExtractConfig, timeout: float = 0.0) -> VideoResult:
    """One video on this process's detector (the Dask task of a Dask run); never raises for a bad
    video. `cfg`'s thread counts must be resolved (> 0): they are this task's share of the cores."""
    from dfprep.detect import get_detector

    cv2.setNumThreads(max(1, cfg.decode.threads))  # resize/convert/JPEG: same cap as the decoder
    detector = get_detector(cfg.detect)
    t0 = time.perf_counter()
    result = process_video(row, cfg, detector, timeout)
    result.seconds = time.perf_counter() - t0
    result.host = socket.gethostname()
    return result


class JobWriter:
    """Writes one shard job from its videos' results, added in manifest order, and publishes the
    shard on `commit`. What it writes depends only on the results, never on where or when they
    were computed: this is what keeps shards byte-identical on any number of workers."""

    def __init__(self, job: ShardJob):
        self.job = job
        self.files = ShardFiles(job.shards_dir, job.name)
        self.files.remove()  # an older or unfinished attempt's files: stats first
        self.index_rows: list[dict] = []
        self.video_rows: list[dict] = []
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
        self.counts[st["status"]] += 1
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
            self.writer.commit(self.index_rows, self.video_rows, stats)
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
            "videos": len(self.job.videos),
            "ok": c["ok"],
            "no_face": c["no_face"],
            "failed": c["failed"],
            "crops": c["crops"],
            "frames_sampled": c["frames_sampled"],
            "seconds": round(self.seconds, 3),  # processing time of its videos, summed
            "errors": dict(self.errors.most_common()),
            "strategies": dict(self.strategies),
            "host": socket.gethostname(),  # the writer's
            "video_hosts": sorted(self.hosts),
            "threads": {"decode": cfg.decode.threads, "detect": cfg.detect.threads},  # per video
            "versions": _versions(),
        }

    def abort(self) -> None:
        """Drop the temporary tar; never raises."""
        self.writer.abort()


def run_shard_job(job: ShardJob, cfg: ExtractConfig, video_timeout: float = 0.0) -> dict:
    """Process one shard job's videos one after the other in this process and publish its files;
    returns the stats dict (also written last). The inline run; a Dask run spreads the videos."""
    files = ShardFiles(job.shards_dir, job.name)
    if files.is_complete(job.params_hash):  # a retried task whose first attempt finished
        return {**(files.read_stats() or {}), "skipped": True}
    writer = JobWriter(job)
    try:
        for row in job.videos:
            result = run_video(row, cfg, video_timeout)
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
