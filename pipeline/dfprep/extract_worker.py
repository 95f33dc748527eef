"""The worker side of dfprep extract: one video (decode -> detect -> select -> crop -> JPEG) and
one shard job (its videos in manifest order, written to one shard).

Per-video failures are data (a status row), never a failed task; a task only fails when its
worker dies or the disk does, and Dask retries it. The driver side (planning the jobs, running
them on Dask, the summary) is `dfprep.extract`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import socket
import time
from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np

from dfprep import __version__, pairing
from dfprep.config import ExtractConfig
from dfprep.core.codec import encode_sample
from dfprep.core.errors import first_line
from dfprep.crop import crop_face
from dfprep.distribute import emit
from dfprep.errors import ConfigError, DfprepError, InputError
from dfprep.manipulation import (
    Reference,
    alignment_problem,
    aspect_problem,
    box_to_small,
    diff_scores,
    mask_scores,
    small_grey,
    small_size,
    ssim_scores,
)
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
    dropped: list[dict] = field(default_factory=list)  # faces left out as unmanipulated (thumbs)
    reference: Reference | None = None  # an original's frames for its fakes (want_reference)

    @property
    def nbytes(self) -> int:
        """Bytes of its samples (what a writer holds while it waits for an earlier video)."""
        return sum(len(b) for _, members, _ in self.samples for b in members.values()) + sum(
            len(d["jpg"]) for d in self.dropped
        )


def process_video(
    row: dict,
    cfg: ExtractConfig,
    detector,
    timeout: float = 0.0,
    *,
    reference: Reference | None = None,
    want_reference: bool = False,
) -> VideoResult:
    """Decode -> detect -> select -> crop one video; never raises for a bad video.

    A paired fake (`original_id` or `mask_path` set, `pair.select` not off) keeps only the faces
    that differ from REFERENCE (its original's frames, see `dfprep.manipulation`) or are white in
    its mask; any other video keeps the largest faces. WANT_REFERENCE: an original whose fakes
    follow: `result.reference` gets its frames and faces. `cfg.decode.threads` must be resolved
    (> 0) by the caller, see `resolve_threads`."""
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
        original_id=row.get("original_id") or "",
        pairing="",
        faces_dropped=0,
    )
    samples: list[tuple[str, dict[str, bytes], dict]] = []
    dropped: list[dict] = []
    deadline = time.monotonic() + timeout if timeout > 0 else math.inf
    frames_with_face = 0
    n = 0  # sampled frames so far
    unmatched = 0  # sampled frames of a paired fake without the original's counterpart
    # a paired fake's frames: (samples of the faces that differ, samples of today's choice,
    # dropped faces, faces big enough), settled once the video is read (see `settle`)
    held: list[tuple[list, list, list, int]] = []
    pc = cfg.pair
    ref_out = Reference(row["video_id"]) if want_reference else None
    limit = (
        cfg.detect.real_max_faces
        if int(row["label"]) == 0 and cfg.detect.real_max_faces >= 0
        else cfg.detect.max_faces
    )

    def check_time() -> None:  # also called by the decoder between packets
        if time.monotonic() > deadline:
            raise VideoTimeout(f"time limit of {timeout:g} s exceeded after {n} sampled frames")

    shipped = row.get("faces") == "shipped"  # the images are the publisher's face crops
    pair = PairState.plan(row, cfg, reference, shipped)
    status["pairing"] = pair.label

    def flush(batch: list) -> None:
        nonlocal frames_with_face, unmatched
        if not batch:
            return
        if pair.source and pair.aspect_checked is False:
            pair.check_aspect(batch[0].image.shape)
        if shipped:
            detections = [[shipped_face(f.image)] for f in batch]
        elif pair.source and pair.reuse_boxes:
            detections = [pair.original_faces(f) for f in batch]
        else:
            detections = detector.detect([f.image for f in batch])
        for fr, faces in zip(batch, detections, strict=True):
            if ref_out is not None and not ref_out.error:
                ref_out.add(fr, faces, pc)
            if not pair.source:
                chosen = faces if shipped else select_faces(faces, cfg.detect, limit)
                made = make_samples(fr, chosen, [None] * len(chosen))
                frames_with_face += bool(made)
                samples.extend(made)
                continue
            # a paired fake: the faces that differ, and (for a one-person video) today's choice
            today = select_faces(faces, cfg.detect, limit)
            picked = pair.select(fr, faces)
            if picked is None:  # no counterpart in the original: no crop from this frame
                unmatched += 1
                big = len(select_faces(faces, cfg.detect, 0))
                held.append(([], make_samples(fr, today, [None] * len(today)), [], big))
                continue
            chosen, scores, lost, score_of = picked
            cache: dict[int, bytes] = {}
            held.append(
                (
                    make_samples(fr, chosen, scores, cache),
                    make_samples(fr, today, [score_of[id(f)] for f in today], cache),
                    [(fr, face, score) for face, score in lost],
                    len(score_of),
                )
            )
        batch.clear()

    def make_samples(fr, chosen: list, scores: list, cache: dict | None = None) -> list:
        """The samples of one frame's chosen faces (CACHE: face -> JPEG, shared by the two
        choices of a paired fake's frame)."""
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
        out = []
        for j, (face, score) in enumerate(zip(chosen, scores, strict=True)):
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
                score,
            )
            jpg = None if cache is None else cache.get(id(face))
            if jpg is None:
                face_img = (
                    shipped_crop(fr.image, cfg.crop.size)
                    if shipped
                    else crop_face(fr.image, face.box, cfg.crop.margin, cfg.crop.size)
                )
                jpg = encode_jpeg(face_img, cfg.crop.jpeg_quality)
                if cache is not None:
                    cache[id(face)] = jpg
            meta = rec.to_json()
            index_row = {**meta, "shard": "", "jpeg_bytes": len(jpg)}
            out.append((key, encode_sample(meta, jpg), index_row))
        return out

    def settle() -> None:
        """A paired fake's frames, once all are seen: the faces that differ; or, when no frame
        showed more than one face and that face differed in one at least, today's crops (the
        one person is the one manipulated; frames where it does not differ keep their crop)."""
        nonlocal frames_with_face
        one_person = (
            pc.keep_single_person
            and all(n <= 1 for *_, n in held)
            and any(kept for kept, *_ in held)
        )
        for kept, today, lost, _ in held:
            made = today if one_person else kept
            frames_with_face += bool(made)
            samples.extend(made)
            if one_person:
                continue
            status["faces_dropped"] += len(lost)
            for fr, face, score in lost:
                if len(dropped) < pc.max_dropped:
                    dropped.append(dropped_row(row, fr, face, score, pair.source, cfg))
        held.clear()

    try:
        if not os.path.exists(row["path"]):
            raise InputError(f"file not found: {row['path']}")
        stride = int(row.get("frame_stride") or 0) or cfg.decode.frame_stride
        if pair.source == "mask":
            pair.load_mask(cfg, check_time)
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
            if ref_out is not None:
                ref_out.fps, ref_out.duration = float(info.fps or 0.0), float(info.duration or 0.0)
            pair.check_alignment(info)
            status["pairing"] = pair.label
            batch: list = []
            for fr in frames:
                n += 1
                batch.append(fr)
                if len(batch) >= cfg.detect.batch_size:
                    flush(batch)
                check_time()
            flush(batch)
            settle()
            status["frames_sampled"] = n
            status["strategy"] = info.strategy  # final only now: a failed seek falls back
            if info.errors:
                status["error"] = f"warning: {info.errors} undecodable packet(s) skipped"
    except ConfigError:  # the parameters, not the video: the shard job fails and is never complete
        raise
    except Exception as e:  # a bad video is a status row, not a failed shard
        status.update(status="failed", error=one_line(e), frames_with_face=frames_with_face)
        if ref_out is not None:
            ref_out.drop(f"original failed: {one_line(e)}")
        return VideoResult(status, [], reference=ref_out)
    status["pairing"] = pair.label
    if unmatched and not status["error"]:
        status["error"] = (
            f"warning: {unmatched} sampled frame(s) without the original's counterpart gave no crop"
        )
    status["frames_with_face"] = frames_with_face
    status["crops"] = len(samples)
    if status["frames_sampled"] == 0:
        status.update(status="failed", error=status["error"] or "no frames sampled")
        if ref_out is not None:
            ref_out.drop("original failed: no frames sampled")
        return VideoResult(status, [], reference=ref_out)
    status["status"] = "ok" if samples else "no_face"
    return VideoResult(status, samples, dropped=dropped, reference=ref_out)


def dropped_row(row: dict, fr, face, score: float, source: str, cfg: ExtractConfig) -> dict:
    """A face left out as unmanipulated, as a small thumbnail for the report's contact sheet."""
    thumb = crop_face(fr.image, face.box, cfg.crop.margin, DROPPED_THUMB)
    return {
        "video_id": row["video_id"],
        "dataset": row["dataset"],
        "method": row["method"],
        "sample_index": fr.sample_index,
        "frame_index": fr.frame_index,
        "time": round(fr.time, 6),
        "bbox": [round(float(v), 2) for v in face.box],
        "manip_score": round(float(score), 4),
        "source": source,
        "jpg": encode_jpeg(thumb, 85),
    }


DROPPED_THUMB = 112  # px: the side of a dropped face's thumbnail (~4 KB)


class PairState:
    """How one fake's faces are chosen: the source (diff | mask | "" = largest faces), what it
    compares against, and the fallback reason when pairing was asked for but cannot be done."""

    def __init__(self, cfg: ExtractConfig, reference: Reference | None):
        self.cfg = cfg
        self.pc = cfg.pair
        self.reference = reference
        self.source = ""
        self.fallback = ""
        self.reuse_boxes = False
        self.mask: dict[int, tuple[float, np.ndarray]] = {}
        self.mask_path = ""
        self.aspect_checked: bool | None = None  # False: to check on the first frame

    @property
    def label(self) -> str:
        return self.source or (f"fallback: {self.fallback}" if self.fallback else "")

    def fall_back(self, why: str) -> None:
        self.source, self.fallback, self.reuse_boxes = "", why, False
        self.mask.clear()

    @classmethod
    def plan(cls, row: dict, cfg: ExtractConfig, reference, shipped: bool) -> PairState:
        st = cls(cfg, reference)
        select = cfg.pair.select
        original = row.get("original_id") or ""
        st.mask_path = row.get("mask_path") or ""
        if select == "off" or int(row["label"]) != 1 or not (original or st.mask_path):
            return st
        if shipped:
            st.fall_back("the faces are shipped crops (nothing to compare)")
            return st
        # auto: the diff when the original is usable (decoded anyway, in the same job), else the
        # mask (a second decode per fake: measured 1.44x today's extract time on the sample,
        # against 1.19x for the diff, with the same 100 % share)
        usable = original and not st._reference_problem(original)
        if select == "mask" or (select == "auto" and st.mask_path and not usable):
            if not st.mask_path:
                st.fall_back("no mask video")
                return st
            st.source = "mask"
        elif not original:  # select diff, a mask only
            st.fall_back("no original")
            return st
        else:
            st.source = "diff"
        if st.source == "diff" or cfg.pair.reuse_original_boxes:
            why = st._reference_problem(original)
            if why and st.source == "diff":
                st.fall_back(why)
                return st
            st.reuse_boxes = cfg.pair.reuse_original_boxes and not why
        st.aspect_checked = False if (st.source == "diff" or st.reuse_boxes) else None
        return st

    def _reference_problem(self, original: str) -> str:
        ref = self.reference
        if ref is None:
            return f"original {original} not in this manifest"
        return ref.error

    def load_mask(self, cfg: ExtractConfig, check) -> None:
        """Decode the mask video at the sample times (small grey frames); a bad one falls back
        to the diff (auto, with an original) or to the largest faces, with the reason."""
        from dfprep.decode import open_sampled

        budget = self.pc.max_reference_mb << 20
        used = 0
        try:
            if not os.path.exists(self.mask_path):
                raise InputError(f"file not found: {self.mask_path}")
            with open_sampled(self.mask_path, cfg.decode, threads=max(1, cfg.decode.threads)) as (
                info,
                frames,
            ):
                self.mask_info = (float(info.fps or 0.0), float(info.duration or 0.0))
                for fr in frames:
                    size = small_size(fr.image.shape, self.pc.compare_size)
                    g = small_grey(fr.image, size, blur=False)
                    used += g.nbytes
                    if used > budget:
                        raise InputError(
                            f"mask longer than pair.max_reference_mb ({budget >> 20} MB)"
                        )
                    self.mask[fr.sample_index] = (fr.time, g)
                    check()
        except ConfigError:
            raise
        except Exception as e:
            why = f"mask unreadable: {one_line(e)}"
            if self.pc.select == "auto" and self.reference is not None and not self.reference.error:
                self.source, self.reuse_boxes = "diff", False
                self.mask.clear()
                self.aspect_checked = False
                self.fallback = why
            else:
                self.fall_back(why)

    def check_alignment(self, info) -> None:
        """The fake's frame rate and length against its original's (or its mask's)."""
        fps, duration = float(info.fps or 0.0), float(info.duration or 0.0)
        tol = (self.pc.fps_tolerance, self.pc.duration_tolerance)
        if self.source == "mask":
            mref = Reference("mask", fps=self.mask_info[0], duration=self.mask_info[1])
            why = alignment_problem(fps, duration, mref, *tol)
            if why:
                self.fall_back(f"mask: {why}")
                return
        if self.source == "diff" or self.reuse_boxes:
            why = alignment_problem(fps, duration, self.reference, *tol)
            if why and self.source == "diff":
                self.fall_back(why)
            elif why:
                self.reuse_boxes, self.aspect_checked = False, None

    def check_aspect(self, shape) -> None:
        self.aspect_checked = True
        why = aspect_problem(shape, self.reference)
        if why and self.source == "diff":
            self.fall_back(why)
        elif why:
            self.reuse_boxes = False

    def _counterpart(self, frames: dict, fr) -> np.ndarray | None:
        got = frames.get(fr.sample_index)
        if got is None or abs(got[0] - fr.time) > self.pc.time_tolerance:
            return None
        return got[1]

    def original_faces(self, fr) -> list:
        """reuse_original_boxes: the original's faces at this time, in the fake's pixels."""
        from dfprep.detect import Face

        ref = self.reference
        if self._counterpart(ref.frames, fr) is None:
            return []
        sy, sx = fr.image.shape[0] / ref.shape[0], fr.image.shape[1] / ref.shape[1]
        out = []
        for f in ref.faces.get(fr.sample_index, []):
            x1, y1, x2, y2 = f.box
            lms = tuple(v * (sx if i % 2 == 0 else sy) for i, v in enumerate(f.landmarks))
            out.append(Face((x1 * sx, y1 * sy, x2 * sx, y2 * sy), f.score, lms))
        return out

    def select(self, fr, faces: list):
        """(chosen faces, their scores, [(dropped face, score)], id(face) -> score of every face
        big enough) of one frame, or None when the frame has no counterpart to compare with."""
        from dfprep.detect import select_faces

        big = select_faces(faces, self.cfg.detect, 0)  # every face big enough, largest first
        if self.source == "mask":
            got = self._counterpart(self.mask, fr)
            if got is None:
                return None
            boxes = [box_to_small(f.box, fr.image.shape, got.shape) for f in big]
            scores = mask_scores(got, boxes)
            threshold = self.pc.mask_threshold
        else:
            got = self._counterpart(self.reference.frames, fr)
            if got is None:
                return None
            small = small_grey(fr.image, (got.shape[1], got.shape[0]))
            boxes = [box_to_small(f.box, fr.image.shape, got.shape) for f in big]
            measure = ssim_scores if self.pc.measure == "ssim" else diff_scores
            scores = measure(small, got, boxes, self.pc.noise_floor)
            threshold = self.pc.threshold
        kept = [(f, s) for f, s in zip(big, scores, strict=True) if s >= threshold]
        lost = [(f, s) for f, s in zip(big, scores, strict=True) if s < threshold]
        m = self.cfg.detect.max_faces
        kept = kept if m <= 0 else kept[:m]
        score_of = {id(f): s for f, s in zip(big, scores, strict=True)}
        return [f for f, _ in kept], [s for _, s in kept], lost, score_of


def run_video(
    row: dict,
    cfg: ExtractConfig,
    timeout: float = 0.0,
    *,
    reference: Reference | None = None,
    want_reference: bool = False,
) -> VideoResult:
    """One video on this process's detector (the Dask task of a Dask run); never raises for a bad
    video. `cfg`'s thread counts must be resolved (> 0): they are this task's share of the cores.
    REFERENCE / WANT_REFERENCE: see `process_video`."""
    from dfprep.detect import get_detector

    cv2.setNumThreads(max(1, cfg.decode.threads))  # resize/convert/JPEG: same cap as the decoder
    detector = get_detector(cfg.detect)
    t0 = time.perf_counter()
    result = process_video(
        row, cfg, detector, timeout, reference=reference, want_reference=want_reference
    )
    result.seconds = time.perf_counter() - t0
    result.host = socket.gethostname()
    return result


def result_part(result: VideoResult) -> VideoResult:
    """An original's result without its reference (what goes back to the driver)."""
    return dataclasses.replace(result, reference=None)


def reference_part(result: VideoResult) -> Reference | None:
    """An original's reference (stays on the cluster, for its fakes' tasks)."""
    return result.reference


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
            "videos": len(self.job.videos),
            "ok": c["ok"],
            "no_face": c["no_face"],
            "failed": c["failed"],
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
    fakes_of = pairing.original_positions(job.videos, cfg.pair.select)  # fake -> its original
    last_use = {o: i for i, o in sorted(fakes_of.items())}  # original -> its last fake
    references: dict[int, Reference] = {}
    try:
        for i, row in enumerate(job.videos):
            result = run_video(
                row,
                cfg,
                video_timeout,
                reference=references.get(fakes_of.get(i, -1)),
                want_reference=i in last_use,
            )
            if result.reference is not None:
                references[i] = result.reference
                result.reference = None
            for o in [o for o, last in last_use.items() if last == i]:
                references.pop(o, None)  # its last fake is done: free its frames
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
