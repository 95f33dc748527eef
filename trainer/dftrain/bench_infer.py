"""Inference figures for `dftrain bench --suite gpu`: `dftrain eval` crops/s and `dftrain predict`
seconds per second of video, split into decode, detect and model.

The predict video is generated here with PyAV (H.264, x264's default GOP): a face photograph
(scikit-image's astronaut, as in the sample dataset) drifting over a textured background, so the
detector finds one face in every sampled frame.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np

from dftrain.config import EvalConfig, TrainConfig


def random_checkpoint(path: Path, cfg: TrainConfig) -> Path:
    """A randomly initialised model of `cfg` saved through the trainer's own checkpoint code."""
    from dftrain.checkpoint import checkpoint_meta, save_checkpoint
    from dftrain.labels import names
    from dftrain.model import create_model

    vit = create_model(cfg.model, len(names(cfg.labels)))
    return save_checkpoint(path, vit, checkpoint_meta(cfg, 0, {}))


def bench_eval(checkpoint: Path, extract_dir: Path, out: Path, cfg: EvalConfig) -> dict:
    """`dftrain eval` on an extract output: crops/s of its scoring loop (loader start-up included)
    and the whole call's wall time (reading the test set, metrics and plots too)."""
    from dftrain.evaluate import evaluate

    t0 = time.perf_counter()
    r = evaluate(checkpoint, [str(extract_dir)], out, cfg)
    wall = time.perf_counter() - t0
    return {
        "crops": r.crops,
        "videos": r.videos,
        "seconds": r.seconds,
        "crops_per_s": r.crops / r.seconds,
        "wall_s": wall,
        "device": r.info["device"],
        "batch_size": cfg.batch_size,
    }


def _face_photo(height: int) -> np.ndarray:
    import cv2
    import skimage.data

    img = skimage.data.astronaut()[0:240, 105:345]  # her head: the face is about half of it
    return cv2.resize(img, (height, height), interpolation=cv2.INTER_AREA)


def _i420(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)  # (h * 3 / 2, w): Y, then U, then V


def make_predict_video(
    path: Path, width: int = 1920, height: int = 1080, fps: int = 30, seconds: float = 60.0
) -> Path:
    """An H.264 MP4 (yuv420p, x264 superfast, CRF 23) of `seconds` at `fps`: the face photo (60% of
    the height) drifting over a textured background. Frames are assembled directly in YUV 4:2:0
    (no colour conversion per frame), so writing the minute of 1080p costs x264's time only."""
    import av

    if width % 4 or height % 4:
        raise ValueError(f"make_predict_video: {width}x{height}: sides must be multiples of 4")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    bg = np.stack([xx / width, yy / height, 0.5 + 0.2 * np.sin(xx / 37.0)], -1) * 160 + 40
    bg = np.clip(bg + rng.normal(0, 6, bg.shape), 0, 255).astype(np.uint8)
    side = int(height * 0.6) // 4 * 4
    bg_planes = _planes(_i420(bg), width, height)
    face_planes = _planes(_i420(_face_photo(side)), side, side)
    n = round(seconds * fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23", "preset": "superfast"}
        stream.thread_count = 0  # all cores
        frame = np.empty((height * 3 // 2, width), np.uint8)
        dst = _planes(frame, width, height)
        for i in range(n):
            t = i / fps
            x = int((width - side) * (0.5 + 0.3 * math.sin(2 * math.pi * t / 20))) // 2 * 2
            y = int((height - side) * (0.5 + 0.2 * math.sin(2 * math.pi * t / 13))) // 2 * 2
            for k, (d, b, f) in enumerate(zip(dst, bg_planes, face_planes, strict=True)):
                d[...] = b
                s = 1 if k == 0 else 2  # chroma planes are subsampled by 2
                d[y // s : (y + side) // s, x // s : (x + side) // s] = f
            vf = av.VideoFrame.from_ndarray(frame, format="yuv420p")
            vf.pts = i
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _planes(i420: np.ndarray, width: int, height: int) -> list[np.ndarray]:
    """Views of the Y (h, w), U and V (h/2, w/2) planes of an I420 array of shape (h * 3/2, w)."""
    y = i420[:height]
    chroma = i420[height:].reshape(2, height // 2, width // 2)
    return [y, chroma[0], chroma[1]]


class _Timed:
    """Wraps a callable, summing the seconds spent in it."""

    def __init__(self, fn, sync=None):
        self.fn, self.sync, self.seconds = fn, sync, 0.0

    def __call__(self, *a, **kw):
        t0 = time.perf_counter()
        out = self.fn(*a, **kw)
        if self.sync is not None:
            self.sync()
        self.seconds += time.perf_counter() - t0
        return out


class _TimedDetector:
    def __init__(self, detector):
        self.detector = detector
        self.detect = _Timed(detector.detect)


def bench_predict(video: Path, checkpoint: Path, ecfg: EvalConfig, params=None) -> dict:
    """`dftrain predict` on one video, with the same objects `predict()` builds: seconds per second
    of video, split into detect (the detector's calls), model (scoring the crops: JPEG decode,
    preprocessing, forward) and decode (the rest: demuxing, decoding and converting the sampled
    frames, cropping, JPEG encoding). The detector and the model are warmed up first: their
    start-up is paid once per process, not per video."""
    import av

    from dfprep.config import Params, replace
    from dfprep.detect import get_detector
    from dfprep.extract import resolve_threads
    from dftrain.inference import Scorer
    from dftrain.predict import predict_video

    params = params or Params()
    scorer = Scorer(checkpoint, ecfg.device, ecfg.amp)
    cfg = resolve_threads(params.extract, replace(params.run, workers=1, scheduler=""))
    detector = _TimedDetector(get_detector(cfg.detect))
    with av.open(str(video)) as c:
        duration = float(c.duration or 0) / 1e6
        stream = c.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = float(stream.average_rate or 0)
    warm = np.zeros((height, width, 3), np.uint8)
    detector.detector.detect([warm])
    size = int(scorer.meta["preprocess"]["img_size"])
    import torch

    scorer.score(torch.zeros(ecfg.batch_size, 3, size, size))
    sync = torch.cuda.synchronize if scorer.device.type == "cuda" else None
    scorer.score_jpegs = _Timed(scorer.score_jpegs, sync)
    pred = predict_video(video, scorer, cfg, detector, ecfg, params.run.video_timeout)
    if pred.status != "ok":
        raise RuntimeError(f"bench predict: {video}: {pred.status} {pred.error}")
    total = pred.seconds
    detect, model = detector.detect.seconds, scorer.score_jpegs.seconds
    decode = max(total - detect - model, 0.0)
    per = 1.0 / duration
    return {
        "video": f"{width}x{height} {rate:g} fps, {duration:.1f} s, H.264",
        "video_seconds": duration,
        "frames_sampled": pred.frames_sampled,
        "faces": pred.faces,
        "seconds": total,
        "s_per_s": total * per,
        "decode_s_per_s": decode * per,
        "detect_s_per_s": detect * per,
        "model_s_per_s": model * per,
        "x_real_time": duration / total,
        "device": str(scorer.device),
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
    }
