"""dfprep bench: where extract's time goes, on the same videos in one run.

Stages, each timed on the same inputs: decode only (sampled frames converted to RGB), detection
only (on those frames, at the detector size), the full per-video extract (decode + detect + crop +
JPEG), a naive baseline as users often write it (OpenCV reads and converts every frame, detection
at full resolution on one frame per second), and the Dask extract with 1 and with 2 workers.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from dfprep.config import Params, replace
from dfprep.errors import ConfigError, InputError
from dfprep.outputs import output_dir


@dataclass
class BenchResult:
    videos: int
    seconds_of_video: float
    frames_sampled: int
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    ratios: dict[str, float] = field(default_factory=dict)
    targets: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def make_bench_videos(out_dir: Path, n: int = 4, seconds: float = 20.0, gop: int | None = None) -> list[Path]:
    """1920x1080 30 fps H.264 videos with a moving real face (the sample generator's renderer)."""
    from dfprep.synth import make_face_video

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = out_dir / f"bench_{i}_gop{gop or 'default'}.mp4"
        if not p.exists():
            make_face_video(p, fps=30, size=(1920, 1080), seconds=seconds, seed=i, gop=gop)
        paths.append(p)
    return paths


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench_decode(paths, params: Params) -> tuple[float, list]:
    from dfprep.decode import open_sampled

    frames_by_video = []

    def run():
        for p in paths:
            with open_sampled(p, params.decode, threads=1) as (_info, frames):
                frames_by_video.append([f.image for f in frames])

    t, _ = _timed(run)
    return t, frames_by_video


def bench_detect(frames_by_video, params: Params) -> float:
    from dfprep.detect import get_detector

    det = get_detector(replace(params.detect, threads=1))
    det.detect(frames_by_video[0][:1])  # warm-up (session creation is a one-off per worker)

    def run():
        for frames in frames_by_video:
            bs = params.detect.batch_size
            for i in range(0, len(frames), bs):
                det.detect(frames[i : i + bs])

    return _timed(run)[0]


def bench_full(paths, params: Params) -> float:
    from dfprep.detect import get_detector
    from dfprep.extract import process_video

    cfg = replace(params.extract, decode=replace(params.decode, threads=1),
                  detect=replace(params.detect, threads=1))
    det = get_detector(cfg.detect)
    rows = [_row(p) for p in paths]

    def run():
        for r in rows:
            res = process_video(r, cfg, det)
            if res.status_row["status"] != "ok":
                raise RuntimeError(f"bench video failed: {res.status_row['error']}")

    return _timed(run)[0]


def bench_naive(paths, params: Params) -> float:
    """Every frame read and converted; detection at full resolution once per second."""
    from dfprep.detect import get_detector

    det = get_detector(replace(params.detect, threads=1, max_size=100_000))

    def run():
        for p in paths:
            cap = cv2.VideoCapture(str(p))
            fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
            i = 0
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                if i % round(fps / params.decode.fps) == 0:
                    det.detect([rgb])
                i += 1
            cap.release()

    cv2.setNumThreads(1)
    return _timed(run)[0]


def bench_dask(paths, params: Params, workers: int, out: Path) -> float:
    from dfprep.adapters import VideoRow
    from dfprep.extract import run_extract
    from dfprep.manifest import rows_to_table, write_manifest

    root = Path(os.path.commonpath([str(p.parent) for p in paths]))
    rows = [VideoRow(p.relative_to(root).as_posix(), "test", 1, "bench", "FS") for p in paths]
    m = write_manifest(rows_to_table("bench", root, rows), out / f"bench_w{workers}.parquet")
    # one thread per worker in both runs: this measures how the Dask layer scales with processes
    p = replace(params, shard=replace(params.shard, videos_per_shard=1),
                decode=replace(params.decode, threads=1), detect=replace(params.detect, threads=1),
                run=replace(params.run, workers=workers))
    # cluster start-up is excluded: it is paid once per run, not per video
    from dfprep.distribute import make_client

    with make_client(p.run) as client:
        client.wait_for_workers(workers)
        client.run(_warm_worker, p.detect)  # start-up is paid once per worker, not per video
        t, summary = _timed(lambda: run_extract([m], out / f"extract_w{workers}", p, client=client, overwrite=True))
    if summary.ok != len(paths):
        raise RuntimeError(f"bench extract with {workers} workers: {summary.ok}/{len(paths)} ok")
    return t


def _row(p: Path) -> dict:
    return {"video_id": "bench-" + p.stem, "path": str(p), "dataset": "bench", "split": "test",
            "label": 1, "method": "bench", "category": "FS", "kind": "video", "frame_stride": 1,
            "fake_segments": None}


def check_bench_args(paths: list[Path] | None, params: Params, *, workers: tuple[int, ...],
                     seconds: float, n: int, gop: int | None) -> None:
    """Refuse before any timing what would fail or divide by zero: one line naming the culprit."""
    from dfprep.decode import open_sampled

    if not paths:
        if n < 1:
            raise ConfigError(f"--n: must be >= 1 generated video(s), got {n}")
        if not seconds > 0:
            raise ConfigError(f"--seconds: must be > 0, got {seconds}")
        if gop is not None and gop < 1:
            raise ConfigError(f"--gop: must be >= 1, got {gop}")
    if any(w < 1 for w in workers):
        raise ConfigError(f"--workers: worker counts must be >= 1, got {', '.join(map(str, workers))}")
    for p in paths or ():
        with open_sampled(p, params.decode) as (info, _):  # a DecodeError names the file and why
            if not info.duration:
                raise InputError(f"{p}: no duration, so nothing to time against real time")


def run_bench(paths: list[Path] | None = None, params: Params | None = None, *,
              workers: tuple[int, ...] = (1, 2), work_dir: Path | None = None,
              seconds: float = 20.0, n: int = 4, gop: int | None = None,
              naive: bool = True) -> BenchResult:
    params = params or Params()
    check_bench_args(paths, params, workers=workers, seconds=seconds, n=n, gop=gop)
    work = output_dir(work_dir or tempfile.mkdtemp(prefix="dfprep-bench-"), "--work-dir")
    if not paths:
        paths = make_bench_videos(work / "videos", n=n, seconds=seconds, gop=gop)
    import av

    total_s = 0.0
    for p in paths:
        with av.open(str(p)) as c:
            total_s += float(c.duration or 0) / 1e6
    t_decode, frames = bench_decode(paths, params)
    res = BenchResult(videos=len(paths), seconds_of_video=round(total_s, 2),
                      frames_sampled=sum(len(f) for f in frames))
    res.timings["decode"] = t_decode
    res.timings["detect"] = bench_detect(frames, params)
    del frames
    res.timings["full"] = bench_full(paths, params)
    if naive:
        res.timings["naive"] = bench_naive(paths, params)
    for w in workers:
        res.timings[f"dask_{w}w"] = bench_dask(paths, params, w, work)
    t = res.timings
    res.ratios["full / (decode + detect)"] = t["full"] / (t["decode"] + t["detect"])
    if "naive" in t:
        res.ratios["naive / full"] = t["naive"] / t["full"]
    if "dask_1w" in t and "dask_2w" in t:
        res.ratios["speed-up 2 workers vs 1"] = t["dask_1w"] / t["dask_2w"]
    res.targets = {
        "full / (decode + detect)": {"target": "<= 1.25", "met": res.ratios["full / (decode + detect)"] <= 1.25},
    }
    if "naive / full" in res.ratios:
        res.targets["naive / full"] = {"target": ">= 3", "met": res.ratios["naive / full"] >= 3}
    if "speed-up 2 workers vs 1" in res.ratios:
        res.targets["speed-up 2 workers vs 1"] = {"target": ">= 1.7", "met": res.ratios["speed-up 2 workers vs 1"] >= 1.7}
    res.notes.append(f"cores: {os.cpu_count()}; videos: {[str(p) for p in paths]}")
    return res


def to_json(res: BenchResult) -> str:
    from dataclasses import asdict

    return json.dumps(asdict(res), indent=1)


def _warm_worker(detect_cfg) -> bool:
    """Pay a worker's one-off start-up (imports, ONNX session, first inference) before timing."""
    import numpy as np

    import dfprep.extract  # noqa: F401  (pyarrow, tar writer, decoder)
    from dfprep.detect import get_detector

    get_detector(detect_cfg).detect([np.zeros((360, 640, 3), np.uint8)])
    return True
