"""Inference figures for `dftrain gpu-bench`: `dftrain eval` crops/s and `dftrain predict`
seconds per second of video, split into decode, detect and model (the video:
`dftrain.bench.synthetic.make_predict_video`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dfprep.core.system import available_cores
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
    from dfprep.extract import local_detector, resolve_threads
    from dftrain.inference import Scorer
    from dftrain.predict import predict_video

    params = params or Params()
    scorer = Scorer(checkpoint, ecfg.device, ecfg.amp)
    cfg = resolve_threads(params.extract, replace(params.run, workers=1, scheduler=""))
    detector = _TimedDetector(local_detector(replace(params, detect=cfg.detect)))
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
        "cores": available_cores(),
    }
