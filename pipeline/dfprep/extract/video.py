"""One video: decode -> detect -> select -> crop -> encode.

The steps stay apart: frames are decoded in batches, a batch's faces come from the detector passed
in (or need none: shipped crops, the original's boxes), `dfprep.pairing.FaceChooser` picks the
faces of each frame, and the candidates are cropped and encoded while the frame is at hand; the
samples are made once the chooser has settled (a paired fake is settled by all its frames).
A detector that takes batches ahead (`submit`: extract's GPU mode, `dfprep.extract.gpu`) detects
a batch while the next one is decoded; the batches are still chosen and cropped in order.

Per-video failures are data (a status row), never a failed task; a task only fails when its worker
dies, and Dask retries it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import time
from collections import deque
from dataclasses import dataclass, field

import cv2

from dfprep.config import ExtractConfig
from dfprep.core.errors import ConfigError, DetectorError, InputError, one_line
from dfprep.extract.crops import FrameAt, dropped_row, face_jpeg, make_samples, shipped_face
from dfprep.extract.failures import VideoTimeout, is_transient
from dfprep.pairing import FaceChooser, FrameChoice, Reference
from dfprep.schema import MULTI_FACE_FAKE

__all__ = [
    "VideoResult",
    "VideoTimeout",
    "process_video",
    "reference_part",
    "result_part",
    "run_video",
]


# Batches a detector with `submit` may hold while the next one is decoded (each holds its source
# frames until it is cropped: memory grows by this many batches of frames per worker).
IN_FLIGHT = 1


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


def new_status(row: dict) -> dict:
    """A video's status row before anything is read (a failure unless it gets further)."""
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
        max_faces_in_frame=0,
        multi_face_share=0.0,
        flags="",
        transient=False,  # a failure that can pass: a resume runs it again (extract.failures)
    )
    return status


class VideoRun:
    """One video's state while it is read: its status row, its frames' choices and crops (held
    until the chooser settles), the thumbnails of its dropped faces."""

    def __init__(self, row: dict, cfg: ExtractConfig, detector, timeout: float, chooser):
        self.row, self.cfg, self.detector, self.chooser = row, cfg, detector, chooser
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout if timeout > 0 else math.inf
        self.status = new_status(row)
        self.status["pairing"] = chooser.label
        self.sampled = 0  # frames read so far
        self.frames: list[tuple[FrameAt, FrameChoice, dict[int, bytes]]] = []
        self.lost = 0  # faces of a paired fake that do not differ
        self.max_faces = 0  # the most faces in one frame so far
        self.multi_face = 0  # frames with two faces or more so far
        self.dropped: list[dict] = []  # thumbnails of the first few of them
        self.samples: list = []
        self.in_flight: deque = deque()  # (batch, pending faces) sent ahead, oldest first

    def check_time(self) -> None:  # also called by the decoder between packets
        if time.monotonic() > self.deadline:
            raise VideoTimeout(
                f"time limit of {self.timeout:g} s exceeded after {self.sampled} sampled frames"
            )

    def read(self) -> None:
        """Decode the video batch by batch and take its faces; raises for a bad video."""
        from dfprep.decode import DecodeError, open_sampled  # workers import only what they run

        row, cfg = self.row, self.cfg
        if not os.path.exists(row["path"]):
            raise DecodeError(row["path"], "file not found", transient=True)
        self.chooser.prepare(self.check_time)
        with open_sampled(
            row["path"],
            cfg.decode,
            kind=row.get("kind") or "video",
            frame_stride=int(row.get("frame_stride") or 0) or cfg.decode.frame_stride,
            threads=max(1, cfg.decode.threads),
            check=self.check_time if self.timeout > 0 else None,
        ) as (info, frames):
            self._started(info)
            batch: list = []
            for fr in frames:
                self.sampled += 1
                if self.sampled == 1:  # the display size is known from the first frame
                    self.status.update(width=int(info.width), height=int(info.height))
                batch.append(fr)
                if len(batch) >= cfg.detect.batch_size:
                    self.send(batch)
                    batch = []
                self.check_time()
            self.send(batch, last=True)
            self.settle()
            self.status["frames_sampled"] = self.sampled
            self.status["strategy"] = info.strategy  # final only now: a failed seek falls back
            if info.errors:
                self.warn(f"{info.errors} undecodable packet(s) skipped")

    def _started(self, info) -> None:
        self.status.update(
            strategy=info.strategy,
            duration=float(info.duration or 0.0),
            width=int(info.width),
            height=int(info.height),
        )
        self._check_segments(float(info.duration or 0.0))
        self.chooser.start(info)
        self.status["pairing"] = self.chooser.label

    def _check_segments(self, duration: float) -> None:
        """A fake's segments against the video's length, first known here: a segment that starts
        at or after the end would label every crop real. All of them: the video fails (the row
        does not fit the file); some: a warning naming them. Never silent relabelling."""
        segs = self.row.get("fake_segments") or []
        if int(self.row["label"]) != 1 or not segs or duration <= 0:
            return
        beyond = [s for s in segs if s["start"] >= duration]
        if not beyond:
            return
        what = ", ".join(f"{s['start']:g}-{s['end']:g} s" for s in beyond)
        msg = (
            f"video {self.row['video_id']!r}: fake_segments {what} start at or after the video's end "
            f"({duration:.2f} s)"
        )
        if len(beyond) == len(segs):
            raise InputError(f"{msg}: no crop would be fake; fix the manifest row")
        self.warn(f"{msg}: those segments label no crop")

    def warn(self, text: str) -> None:
        """Add a warning to the status row's reason (an ok video keeps its status)."""
        st = self.status
        st["error"] = f"{st['error']}; {text}" if st["error"] else f"warning: {text}"

    def detect(self, batch: list):
        """The faces of each frame of BATCH: the detector's, unless none is needed; pending
        faces (with `result()`) from a detector that takes batches ahead."""
        if self.chooser.shipped:
            return [[shipped_face(f.image)] for f in batch]
        known = self.chooser.known_faces(batch)
        if known is not None:
            return known
        submit = getattr(self.detector, "submit", None)
        images = [f.image for f in batch]
        return submit(images) if submit is not None else self.detector.detect(images)

    def send(self, batch: list, last: bool = False) -> None:
        """Detect BATCH, then choose and crop every batch whose faces are due, in order: at
        once, or (pending faces) once IN_FLIGHT later batches are sent, or after the LAST."""
        if batch:
            self.in_flight.append((batch, self.detect(batch)))
        while self.in_flight and (
            last or len(self.in_flight) > IN_FLIGHT or isinstance(self.in_flight[0][1], list)
        ):
            self.take(*self.in_flight.popleft())

    def take(self, batch: list, found) -> None:
        """Select and crop one batch of frames, given their faces (or pending faces)."""
        for fr, faces in zip(
            batch, found if isinstance(found, list) else found.result(), strict=True
        ):
            choice = self.chooser.choose(fr, faces)
            jpgs = {
                id(f): face_jpeg(fr.image, f, self.cfg, self.chooser.shipped)
                for f in choice.faces()
            }
            self.max_faces = max(self.max_faces, choice.big)
            self.multi_face += choice.big >= 2
            at = FrameAt(fr.sample_index, fr.frame_index, fr.time, fr.pts_time, choice.big)
            self.frames.append((at, choice, jpgs))
            self._drop(fr, choice)

    def _drop(self, fr, choice: FrameChoice) -> None:
        """Count a frame's faces that do not differ; keep the first few as thumbnails."""
        for face, score in choice.dropped:
            self.lost += 1
            if len(self.dropped) < self.cfg.pair.max_dropped:
                self.dropped.append(
                    dropped_row(self.row, fr, face, score, self.chooser.label, self.cfg)
                )

    def settle(self) -> None:
        """Every frame seen: the samples of the faces each frame keeps, in frame order."""
        largest = self.chooser.finish()
        for at, choice, jpgs in self.frames:
            self.samples += make_samples(
                self.row, at, choice.largest if largest else choice.kept, jpgs
            )
        self.status["frames_with_face"] = sum(
            bool(c.largest if largest else c.kept) for _, c, _ in self.frames
        )
        self.frames = []
        if largest:  # one person, the one manipulated: nothing was dropped
            self.dropped = []
        else:
            self.status["faces_dropped"] = self.lost

    def _faces(self) -> None:
        """The status row's face counts, and the flag of a fake whose largest face may be a real
        person's: unpaired (no original, no mask, or a fallback) with several faces in a frame.
        Training data only (a test video's crops are scored, not learnt from); the flag changes
        no crop."""
        st, row = self.status, self.row
        st["max_faces_in_frame"] = self.max_faces
        st["multi_face_share"] = self.multi_face / self.sampled if self.sampled else 0.0
        suspect = (
            int(row["label"]) == 1
            and row["split"] != "test"
            and not self.chooser.paired
            and not self.chooser.shipped
            and self.multi_face > 0
        )
        st["flags"] = MULTI_FACE_FAKE if suspect else ""

    def failed(self, why: str, transient: bool = False) -> VideoResult:
        """The video failed with WHY (its crops are lost); an original's fakes fall back.
        TRANSIENT: the failure can pass, a resume runs it again."""
        self.status.update(
            status="failed",
            error=why,
            frames_with_face=self._frames_with_face(),
            transient=transient,
        )
        self._faces()
        for _, pending in self.in_flight:  # batches still out: their late faces are dropped
            getattr(pending, "cancel", lambda: None)()
        self.chooser.failed(f"original failed: {why}")
        return VideoResult(self.status, [], reference=self.chooser.reference)

    def _frames_with_face(self) -> int:
        """Frames with a crop before a failure: a paired fake's frames count once settled."""
        unsettled = 0 if self.chooser.paired else sum(bool(c.kept) for _, c, _ in self.frames)
        return self.status["frames_with_face"] + unsettled

    def result(self) -> VideoResult:
        """The video once read (ok, no face, or failed when no frame was sampled)."""
        st = self.status
        st["pairing"] = self.chooser.label
        self._faces()
        if self.chooser.unmatched and not st["error"]:
            self.warn(
                f"{self.chooser.unmatched} sampled frame(s) without the original's "
                "counterpart gave no crop"
            )
        st["crops"] = len(self.samples)
        if st["frames_sampled"] == 0:
            st.update(status="failed", error=st["error"] or "no frames sampled")
            self.chooser.failed("original failed: no frames sampled")
            return VideoResult(st, [], reference=self.chooser.reference)
        st["status"] = "ok" if self.samples else "no_face"
        return VideoResult(st, self.samples, dropped=self.dropped, reference=self.chooser.reference)


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

    A paired fake (`original_id` or `mask_path` set, `pair.select` not off, not in the test split)
    keeps only the faces that differ from REFERENCE (its original's frames, see `dfprep.pairing`)
    or are white in its mask; any other video keeps the largest faces (a test video: the same rule
    for reals and fakes, every face by default, `detect.test_max_faces`). WANT_REFERENCE: an original whose fakes follow:
    `result.reference` gets its frames and faces. `cfg.decode.threads` must be resolved (> 0) by
    the caller, see `resolve_threads`."""
    chooser = FaceChooser.for_video(row, cfg, reference, want_reference=want_reference)
    video = VideoRun(row, cfg, detector, timeout, chooser)
    try:
        video.read()
    except (ConfigError, DetectorError):  # the parameters or the detector process, not the video
        raise
    except Exception as e:  # a bad video is a status row, not a failed shard
        return video.failed(one_line(e), is_transient(e))
    return video.result()


def run_video(
    row: dict,
    cfg: ExtractConfig,
    timeout: float = 0.0,
    *,
    reference: Reference | None = None,
    want_reference: bool = False,
    detectors=None,
) -> VideoResult:
    """One video on this process's detector (the Dask task of a Dask run); never raises for a bad
    video. `cfg`'s thread counts must be resolved (> 0): they are this task's share of the cores.
    REFERENCE / WANT_REFERENCE: see `process_video`. DETECTORS: the run's detector processes in
    GPU mode (`dfprep.extract.gpu`), None: this process's own detector."""
    from dfprep.extract.gpu import detector_for

    cv2.setNumThreads(max(1, cfg.decode.threads))  # resize/convert/JPEG: same cap as the decoder
    detector = detector_for(cfg.detect, detectors)
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
