"""`dftrain predict`: raw videos -> P(fake), with exactly extract's crops.

Each video goes through `dfprep.extract.process_video`, the function that writes the shards (1-FPS
decoding, the detector, the face choice, the crop and its JPEG encoding), and the JPEG bytes are
scored like `dftrain eval` scores them from a shard. A video therefore gets the score eval would
give it after `dfprep extract` with the same decode/detect/crop parameters: a loose video is a
test-split row, so it follows the test split's label-blind rule (every face of every sampled
frame by default, `detect.test_max_faces`), and its score is the mean over all of them.
With `run.detect_device: cuda` (or `auto` on a GPU host) the detector is extract's GPU-mode detector,
in this process (`dfprep.extract.gpu.local_detector`): the crops of a GPU-mode extract.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dfprep.config import ExtractConfig, Params, replace
from dfprep.core.errors import InputError
from dfprep.core.media import in_mask_folder, video_files
from dfprep.extract import VideoResult, process_video, resolve_threads
from dfprep.schema import make_video_id
from dftrain.aggregate import resolve_aggregate
from dftrain.config import EvalConfig, check_eval_config
from dftrain.inference import Scorer
from dftrain.metrics import group_max_mean


@dataclass
class VideoPrediction:
    path: str
    status: str  # ok | no_face | failed (extract's statuses)
    verdict: str  # fake | real (P(fake) >= threshold or not) | no face | unreadable
    p_fake: float | None  # mean over the face crops; None without any
    # face crops scored: every face of every sampled frame by default (the test split's rule,
    # `detect.test_max_faces`), all of them in the mean
    faces: int
    frames_sampled: int
    frames_with_face: int = 0
    most_faces: int = 0  # the most faces one sampled frame gave (2: two people in view)
    error: str = ""
    times: list[float] = field(default_factory=list)  # per crop: seconds from the start
    scores: list[float] = field(default_factory=list)  # per crop: P(fake)
    seconds: float = 0.0

    @property
    def scored(self) -> bool:
        return self.p_fake is not None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def find_videos(paths: Iterable[str | Path], skipped: list[Path] | None = None) -> list[Path]:
    """Files as given (whatever their extension), folders searched recursively for videos by the
    media rule (`dfprep.core.media.video_files`; their other files are named in a warning),
    leaving out the publishers' mask videos (FF++'s `masks/videos`; appended to `skipped`).

    A path that does not exist is kept: it becomes an `unreadable` row, like any bad video."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            out.append(p)
            continue
        found = video_files([p], "predict")
        masks = [f for f in found if in_mask_folder(f.relative_to(p))]
        if skipped is not None:
            skipped += masks
        if len(masks) == len(found):
            raise InputError(f"{p}: no video file in this folder (only mask videos)")
        out += [f for f in found if f not in set(masks)]
    if not out:
        raise InputError("no video given")
    return out


def video_row(path: Path) -> dict:
    """A manifest row for one loose video (labels unknown: they are not used for scoring)."""
    p = path.resolve() if path.exists() else path.absolute()
    return {
        "video_id": make_video_id("predict", p.name), "path": str(p), "dataset": "predict",
        "split": "test", "label": 0, "method": "unknown", "category": "unknown", "kind": "video",
        "frame_stride": 0, "fake_segments": None,
    }  # fmt: skip


def extract_crops(path: Path, cfg: ExtractConfig, detector, timeout: float = 0.0) -> VideoResult:
    """Extract's own face crops of one video (the bytes it would write into a shard)."""
    return process_video(video_row(path), cfg, detector, timeout)


def predict_video(
    path: Path,
    scorer: Scorer,
    cfg: ExtractConfig,
    detector,
    ecfg: EvalConfig,
    timeout: float = 0.0,
) -> VideoPrediction:
    t0 = time.perf_counter()
    result = extract_crops(path, cfg, detector, timeout)
    st = result.status_row
    base = dict(
        path=str(path),
        status=st["status"],
        frames_sampled=int(st["frames_sampled"]),
        error=st["error"],
    )
    if not result.samples:
        verdict = "unreadable" if st["status"] == "failed" else "no face"
        return VideoPrediction(
            verdict=verdict, p_fake=None, faces=0, seconds=time.perf_counter() - t0, **base
        )
    jpegs = [members["jpg"] for _, members, _ in result.samples]
    p_fake, _ = scorer.score_jpegs(jpegs, ecfg.batch_size, where=str(path))
    if resolve_aggregate(ecfg.aggregate, scorer.meta) == "frame_max":  # SBI's: max per frame
        frames = [int(row["sample_index"]) for _, _, row in result.samples]
        score = float(group_max_mean(np.zeros(len(frames), int), frames, p_fake)[1][0])
    else:
        score = float(p_fake.mean())
    per_frame = Counter(row["sample_index"] for _, _, row in result.samples)
    return VideoPrediction(
        verdict="fake" if score >= ecfg.threshold else "real",
        p_fake=score,
        faces=len(jpegs),
        frames_with_face=len(per_frame),
        most_faces=max(per_frame.values()),
        times=[float(row["time"]) for _, _, row in result.samples],
        scores=[float(p) for p in p_fake],
        seconds=time.perf_counter() - t0,
        **base,
    )


def predict(
    paths: Iterable[str | Path],
    checkpoint: str | Path,
    params: Params | None = None,
    ecfg: EvalConfig | None = None,
    on_video: Callable[[VideoPrediction], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> list[VideoPrediction]:
    """Score raw videos in order; bad or faceless videos are results, never exceptions.
    ON_NOTICE gets the one-line notice of a GPU detector asked for but not there."""
    from dfprep.extract import local_detector

    params = params or Params()
    ecfg = check_eval_config(ecfg or EvalConfig())
    videos = find_videos(paths)
    scorer = Scorer(checkpoint, ecfg.device, ecfg.amp)
    # one process does everything here: give decoder and detector all the cores
    cfg = resolve_threads(params.extract, replace(params.run, workers=1, scheduler=""))
    detector = local_detector(replace(params, detect=cfg.detect), on_notice)
    out = []
    for v in videos:
        pred = predict_video(v, scorer, cfg, detector, ecfg, params.run.video_timeout)
        out.append(pred)
        if on_video:
            on_video(pred)
    return out


def to_json(preds: list[VideoPrediction], threshold: float) -> str:
    return json.dumps({"threshold": threshold, "videos": [p.as_dict() for p in preds]}, indent=1)


def results_table(preds: list[VideoPrediction], threshold: float):
    """The rich table `dftrain predict` prints."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=f"dftrain predict (fake if P(fake) >= {threshold:g})")
    for col, justify in (
        ("video", "left"),
        ("faces", "right"),  # crops scored, all in the mean
        ("frames", "right"),  # sampled frames with a face / sampled
        ("most", "right"),  # the most faces in one frame
        ("P(fake)", "right"),
        ("verdict", "left"),
    ):
        t.add_column(col, justify=justify, overflow="fold")
    style = {"fake": "bold red", "real": "green", "no face": "yellow", "unreadable": "yellow"}
    for p in preds:
        sampled = bool(p.frames_sampled)
        frames = f"{p.frames_with_face}/{p.frames_sampled}" if sampled else "-"
        score = f"{p.p_fake:.3f}" if p.p_fake is not None else "-"
        verdict = p.verdict + (f": {p.error}" if p.error and not p.scored else "")
        t.add_row(Text(p.path), str(p.faces) if sampled else "-", frames, str(p.most_faces),
                  score, Text(verdict, style=style[p.verdict]))  # fmt: skip
    return t
