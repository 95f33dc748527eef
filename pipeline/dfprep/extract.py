"""dfprep extract: manifests -> fixed shard jobs -> (decode -> detect -> crop) per video -> shards.

The manifest is cut into shard jobs of N videos in video-id order before any work starts, so a
shard's content never depends on scheduling; one Dask task runs one job and writes its shard.
Per-video failures are data (a status row), never a failed task; a task only fails when its
worker dies or the disk does, and Dask retries it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dfprep import __version__
from dfprep.config import ExtractConfig, Params, replace
from dfprep.crop import crop_face
from dfprep.distribute import emit
from dfprep.errors import DfprepError, InputError
from dfprep.manifest import read_manifest
from dfprep.schema import CropRecord, SampleLabels, make_key
from dfprep.shard import ShardFiles, ShardWriter, remove_stale_tmp, shard_name, writing

MAX_ERROR_KINDS = 50


class VideoTimeout(DfprepError):
    pass


@dataclass(frozen=True)
class ShardJob:
    name: str
    shards_dir: str
    videos: tuple[dict, ...]
    params_hash: str


def manifest_prefix(path: Path) -> str:
    """Shard name prefix of a manifest: its file stem, made safe."""
    stem = path.name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9_]", "_", stem) or "manifest"


def job_hash(cfg: ExtractConfig, rows: list[dict]) -> str:
    """What the shard's bytes depend on: the output params and the videos' ids and labels.

    The path is left out on purpose: moving a dataset to another disk does not redo its shards;
    so is `faces` when it is `detect` (the only mode before it existed: older shards stay valid).
    """
    content = [{k: v for k, v in r.items() if k != "path" and not (k == "faces" and v == "detect")}
               for r in rows]
    blob = json.dumps([cfg.params_hash(), content], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def plan_jobs(manifests: list[Path], out_dir: Path, cfg: ExtractConfig) -> list[ShardJob]:
    jobs: list[ShardJob] = []
    seen_prefix: dict[str, Path] = {}
    seen_ids: dict[str, Path] = {}
    n = cfg.shard.videos_per_shard
    if n < 1:
        raise InputError(f"videos_per_shard must be >= 1, got {n}")
    for m in manifests:
        m = Path(m)
        prefix = manifest_prefix(m)
        if prefix in seen_prefix:
            raise InputError(f"manifests {seen_prefix[prefix]} and {m} would write the same shard names ({prefix}-*); rename one")
        seen_prefix[prefix] = m
        rows = sorted(read_manifest(m).to_pylist(), key=lambda r: r["video_id"])
        for r in rows:
            if r["video_id"] in seen_ids:
                raise InputError(f"video id {r['video_id']!r} is in both {seen_ids[r['video_id']]} and {m}")
            seen_ids[r["video_id"]] = m
        for i in range(0, len(rows), n):
            chunk = rows[i : i + n]
            jobs.append(
                ShardJob(shard_name(prefix, i // n), str(out_dir / "shards"), tuple(chunk), job_hash(cfg, chunk))
            )
    return jobs


def crop_label(row: dict, t: float) -> int:
    """A partly manipulated video (fake_segments set) is fake only inside its fake segments."""
    if int(row["label"]) == 0:
        return 0
    segs = row.get("fake_segments")
    if not segs:
        return 1
    return int(any(s["start"] <= t < s["end"] for s in segs))


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def one_line(e: BaseException) -> str:
    if isinstance(e, DfprepError):  # ours name a path, which may itself hold a line break
        return str(e).strip().replace("\r", "\\r").replace("\n", "\\n") or type(e).__name__
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
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


def process_video(
    row: dict, cfg: ExtractConfig, detector, timeout: float = 0.0
) -> VideoResult:
    """Decode -> detect -> select -> crop one video; never raises for a bad video.

    `cfg.decode.threads` must be resolved (> 0) by the caller, see `resolve_threads`."""
    from dfprep.decode import open_sampled  # imported here: workers import only what they run
    from dfprep.detect import select_faces

    status = {
        k: row[k] for k in ("video_id", "path", "dataset", "split", "label", "category", "method")
    }
    status.update(status="failed", error="", frames_sampled=0, frames_with_face=0, crops=0,
                  strategy="", duration=0.0, width=0, height=0)
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
            labels = SampleLabels(row["video_id"], row["dataset"], row["split"], label,
                                  int(row["label"]), row["category"], row["method"])
            for j, face in enumerate(chosen):
                key = make_key(row["video_id"], fr.sample_index, j)
                rec = CropRecord(key, labels, fr.sample_index, fr.frame_index, fr.time, j,
                                 face.score, list(face.box), list(face.landmarks))
                face_img = (shipped_crop(fr.image, cfg.crop.size) if shipped
                            else crop_face(fr.image, face.box, cfg.crop.margin, cfg.crop.size))
                jpg = encode_jpeg(face_img, cfg.crop.jpeg_quality)
                meta = rec.to_json()
                index_row = {**meta, "shard": "", "jpeg_bytes": len(jpg)}
                members = {"cls": str(label).encode(), "jpg": jpg,
                           "json": json.dumps(meta, sort_keys=True).encode()}
                samples.append((key, members, index_row))
        batch.clear()

    try:
        if not os.path.exists(row["path"]):
            raise InputError(f"file not found: {row['path']}")
        stride = int(row.get("frame_stride") or 0) or cfg.decode.frame_stride
        with open_sampled(row["path"], cfg.decode, kind=row.get("kind") or "video",
                          frame_stride=stride, threads=max(1, cfg.decode.threads),
                          check=check_time if timeout > 0 else None) as (info, frames):
            status.update(strategy=info.strategy, duration=float(info.duration or 0.0),
                          width=int(info.width), height=int(info.height))
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


def run_shard_job(job: ShardJob, cfg: ExtractConfig, video_timeout: float = 0.0) -> dict:
    """Process one shard job and publish its files; returns the stats dict (also written last)."""
    from dfprep.detect import get_detector

    files = ShardFiles(job.shards_dir, job.name)
    if files.is_complete(job.params_hash):  # a retried task whose first attempt finished
        return {**(files.read_stats() or {}), "skipped": True}
    files.remove()
    t0 = time.time()
    cv2.setNumThreads(max(1, cfg.decode.threads))  # resize/convert/JPEG: same cap as the decoder
    detector = get_detector(cfg.detect)
    writer = ShardWriter(files)
    index_rows: list[dict] = []
    video_rows: list[dict] = []
    counts: Counter = Counter()
    errors: Counter = Counter()
    strategies: Counter = Counter()
    try:
        for row in job.videos:
            result = process_video(row, cfg, detector, video_timeout)
            st = result.status_row
            for key, members, index_row in result.samples:
                writer.write(key, members)
                index_row["shard"] = files.tar.name
                index_rows.append(index_row)
            video_rows.append(st)
            counts[st["status"]] += 1
            counts["crops"] += st["crops"]
            counts["frames_sampled"] += st["frames_sampled"]
            if st["error"]:
                msg = re.sub(r"/\S+", "<path>", st["error"])  # group messages that differ by path only
                if msg in errors or len(errors) < MAX_ERROR_KINDS:
                    errors[msg] += 1
            if st["strategy"]:
                strategies[st["strategy"]] += 1
            emit({"shard": job.name, "status": st["status"], "crops": st["crops"]})
        seconds = time.time() - t0
        stats = {
            "shard": job.name,
            "params_hash": job.params_hash,
            "videos": len(job.videos),
            "ok": counts["ok"],
            "no_face": counts["no_face"],
            "failed": counts["failed"],
            "crops": counts["crops"],
            "frames_sampled": counts["frames_sampled"],
            "seconds": round(seconds, 3),
            "errors": dict(errors.most_common()),
            "strategies": dict(strategies),
            "host": socket.gethostname(),
            "threads": {"decode": cfg.decode.threads, "detect": cfg.detect.threads},
            "versions": _versions(),
        }
        writer.commit(index_rows, video_rows, stats)
    except BaseException:
        writer.abort()
        raise
    return stats


def _versions() -> dict:
    import av
    import onnxruntime

    return {"dfprep": __version__, "av": av.__version__, "onnxruntime": onnxruntime.__version__,
            "opencv": cv2.__version__}


def resolve_threads(cfg: ExtractConfig, run) -> ExtractConfig:
    """Decoder and detector threads per worker: explicit values, else cores / workers."""
    from dfprep.distribute import threads_per_worker

    return replace(cfg, decode=replace(cfg.decode, threads=threads_per_worker(run, cfg.decode.threads)),
                   detect=replace(cfg.detect, threads=threads_per_worker(run, cfg.detect.threads)))


# ---- driver --------------------------------------------------------------------------------


@dataclass
class ExtractSummary:
    out: str
    jobs: int = 0
    skipped: int = 0  # complete from an earlier run
    done: int = 0
    videos_run: int = 0  # videos processed by this run (excludes resumed shards)
    failed_jobs: list[tuple[str, str]] = field(default_factory=list)
    videos: int = 0
    ok: int = 0
    no_face: int = 0
    failed: int = 0
    crops: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    errors: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def prepare_out(jobs: list[ShardJob], out: Path, overwrite: bool) -> tuple[list[ShardJob], int]:
    """Remove temporary and stale files; return the jobs still to run and the number kept."""
    shards_dir = out / "shards"
    shards_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(shards_dir)
    planned = {j.name for j in jobs}
    prefixes = {j.name.rsplit("-", 1)[0] for j in jobs}
    for p in shards_dir.glob("*.stats.json"):  # shards of an older plan of the same manifests
        name = p.name[: -len(".stats.json")]
        if name.rsplit("-", 1)[0] in prefixes and name not in planned:
            ShardFiles(shards_dir, name).remove()
    pending = []
    for j in jobs:
        files = ShardFiles(j.shards_dir, j.name)
        if overwrite:
            files.remove()  # else a worker would take the old files for a finished first attempt
        if overwrite or not files.is_complete(j.params_hash):
            pending.append(j)
    return pending, len(jobs) - len(pending)


def summarize(jobs: list[ShardJob], out: Path, summary: ExtractSummary) -> ExtractSummary:
    """Totals from the stats files on disk (the authority, whichever run wrote them)."""
    errors: Counter = Counter()
    summary.videos = summary.ok = summary.no_face = summary.failed = summary.crops = 0
    for j in jobs:
        stats = ShardFiles(j.shards_dir, j.name).read_stats()
        if not stats or stats.get("params_hash") != j.params_hash:
            continue
        summary.videos += stats["videos"]
        summary.ok += stats["ok"]
        summary.no_face += stats["no_face"]
        summary.failed += stats["failed"]
        summary.crops += stats["crops"]
        errors.update(stats.get("errors", {}))
    summary.errors = dict(errors.most_common(20))
    tmp = out / ".extract.json.tmp"
    with writing(out / "extract.json"):
        tmp.write_text(json.dumps(summary.as_dict(), indent=1, sort_keys=True))
        os.replace(tmp, out / "extract.json")
    return summary


def run_extract(
    manifests: list[str | Path],
    out: str | Path,
    params: Params | None = None,
    *,
    client=None,
    overwrite: bool = False,
    on_event: Callable[[dict], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
) -> ExtractSummary:
    """Run (or resume) an extraction. `client`: a dask Client, "inline" (no Dask), or None (make
    one from params.run). `on_plan(total_videos, already_done_videos)` and `on_event(event)`
    drive a progress display."""
    from dfprep.distribute import local_sink, make_client

    params = params or Params()
    cfg = params.extract
    out = Path(out)
    if not manifests:
        raise InputError("no manifest given")
    jobs = plan_jobs([Path(m) for m in manifests], out, cfg)
    pending, kept = prepare_out(jobs, out, overwrite)
    summary = ExtractSummary(out=str(out), jobs=len(jobs), skipped=kept)
    if on_plan:
        on_plan(sum(len(j.videos) for j in jobs), sum(len(j.videos) for j in jobs if j not in pending))
    cfg = resolve_threads(cfg, params.run)
    t0 = time.time()
    sink = on_event or (lambda e: None)
    try:
        if not pending:
            pass
        elif client == "inline" or params.run.scheduler == "inline":
            with local_sink(sink):
                for j in pending:
                    try:
                        run_shard_job(j, cfg, params.run.video_timeout)
                        summary.done += 1
                        summary.videos_run += len(j.videos)
                    except Exception as e:
                        summary.failed_jobs.append((j.name, one_line(e)))
        elif client is not None:
            _run_on(client, pending, cfg, params, summary, sink)
        else:
            with make_client(params.run) as c:
                _run_on(c, pending, cfg, params, summary, sink)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        summary.seconds = round(time.time() - t0, 3)
        summarize(jobs, out, summary)
    return summary


def _run_on(client, pending, cfg, params, summary, sink) -> None:
    import uuid

    from distributed import as_completed

    from dfprep.distribute import PROGRESS_TOPIC

    sink({"dashboard": client.dashboard_link, "workers": len(client.scheduler_info()["workers"])})

    client.subscribe_topic(PROGRESS_TOPIC, lambda ev: sink(ev[1]))
    run_id = uuid.uuid4().hex[:8]
    futures = {
        client.submit(run_shard_job, j, cfg, params.run.video_timeout,
                      key=f"dfprep-extract-{j.name}-{run_id}", retries=params.run.retries,
                      pure=False): j
        for j in pending
    }
    try:
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                fut.result()
                summary.done += 1
                summary.videos_run += len(job.videos)
            except Exception as e:
                summary.failed_jobs.append((job.name, one_line(e)))
            sink({"shard": job.name, "job_done": True, "videos": len(job.videos)})
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        client.unsubscribe_topic(PROGRESS_TOPIC)
