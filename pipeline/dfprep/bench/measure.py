"""The timings `dfprep bench` is made of: decode only, detect only, the per-video extract, the
naive OpenCV baseline (in one process or on a process pool), and `run_extract` on a cluster.

What a run pays once (cluster start, worker imports, ONNX sessions) is returned apart from the
timed seconds."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import cv2
import numpy as np

from dfprep.bench.videos import bench_manifest, video_row, warm_up_video
from dfprep.config import Params, replace


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench_decode(paths, params: Params) -> tuple[float, list]:
    """Decode only: the sampled frames of every video, converted to RGB, on one thread."""
    from dfprep.decode import open_sampled

    frames_by_video = []

    def run():
        for p in paths:
            with open_sampled(p, params.decode, threads=1) as (_info, frames):
                frames_by_video.append([f.image for f in frames])

    t, _ = _timed(run)
    return t, frames_by_video


def bench_detect(frames_by_video, params: Params) -> float:
    """Detect only: those frames, at the detector size, in batches (after one warm-up call)."""
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
    """The per-video extract (decode + detect + crop + JPEG) in this process, one thread."""
    from dfprep.detect import get_detector
    from dfprep.extract import process_video

    cfg = replace(
        params.extract,
        decode=replace(params.decode, threads=1),
        detect=replace(params.detect, threads=1),
    )
    det = get_detector(cfg.detect)
    rows = [video_row(p) for p in paths]

    def run():
        for r in rows:
            res = process_video(r, cfg, det)
            if res.status_row["status"] != "ok":
                raise RuntimeError(f"bench video failed: {res.status_row['error']}")

    return _timed(run)[0]


def _naive_detector(params: Params):
    from dfprep.detect import get_detector

    # full resolution (the largest max_size allowed)
    return get_detector(replace(params.detect, threads=1, max_size=16384))


def _naive_video(path: str, params: Params, det) -> int:
    """Every frame read and converted to RGB; detection on one frame per second."""
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    every = max(1, round(fps / params.decode.fps))
    i = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if i % every == 0:
            det.detect([rgb])
        i += 1
    cap.release()
    return i


def bench_naive(paths, params: Params) -> float:
    """The naive baseline in one process."""
    det = _naive_detector(params)
    cv2.setNumThreads(1)
    return _timed(lambda: [_naive_video(str(p), params, det) for p in paths])[0]


_pool_state: dict = {}


def _pool_init(params: Params, barrier) -> None:
    cv2.setNumThreads(1)
    _pool_state["params"] = params
    _pool_state["det"] = _naive_detector(params)
    _pool_state["det"].detect([np.zeros((64, 64, 3), "uint8")])
    barrier.wait()  # the parent starts the clock once every process is ready


def _pool_video(path: str) -> int:
    return _naive_video(path, _pool_state["params"], _pool_state["det"])


def bench_naive_pool(paths, params: Params, processes: int) -> tuple[float, float]:
    """The naive baseline as a script would spread it: multiprocessing.Pool(processes) over the
    videos, one thread each. Returns (seconds, start-up seconds): the pool's start (processes,
    imports, model loads) is timed apart, like the cluster's."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes + 1)
    t0 = time.perf_counter()
    with ctx.Pool(processes, initializer=_pool_init, initargs=(params, barrier)) as pool:
        barrier.wait(timeout=300)
        startup = time.perf_counter() - t0
        t, frames = _timed(lambda: pool.map(_pool_video, [str(p) for p in paths], chunksize=1))
    if min(frames) <= 0:
        raise RuntimeError("naive baseline: OpenCV read no frame of a video")
    return t, startup


def warm_workers(client, out: Path, cfg, detectors=None) -> None:
    """Pay every worker's one-off start-up before timing (imports, the ONNX session or the
    detector process, the decoder's and the JPEG encoder's first use) by running a whole tiny
    video on each."""
    row = video_row(warm_up_video(out))
    if not all(client.run(_warm_worker, row, cfg, detectors).values()):
        raise RuntimeError("bench: the warm-up video failed on a worker")


def _warm_worker(row: dict, cfg, detectors=None) -> bool:
    from dfprep.extract import run_video

    return run_video(row, cfg, detectors=detectors).status_row["status"] == "ok"


def bench_extract(
    paths, params: Params, out: Path, name: str, stats: dict | None = None
) -> tuple[float, float]:
    """`run_extract` on a cluster made from `params.run`, as the CLI runs it. Returns (seconds,
    start-up seconds): the cluster's start and each worker's one-off start (the detector
    processes' too, `run.detect_device`) are timed apart, being paid once per run, not per video.
    STATS gets what the detector processes did during the timed run (GPU mode)."""
    from dfprep.distribute import default_workers, make_client
    from dfprep.extract import (
        detector_stats,
        plan_detection,
        run_extract,
        stop_detection,
        task_config,
    )

    out.mkdir(parents=True, exist_ok=True)
    m = bench_manifest(paths, out, name)
    t0 = time.perf_counter()
    with make_client(params.run) as client:
        client.wait_for_workers(default_workers(params.run))
        detectors, _ = plan_detection(params, client)
        try:
            warm_workers(client, out, task_config(params.extract, client, len(paths)), detectors)
            startup = time.perf_counter() - t0
            before = detector_stats(detectors)
            t, summary = _timed(
                lambda: run_extract(
                    [m], out / name, params, client=client, overwrite=True, detectors=detectors
                )
            )
            after = detector_stats(detectors)
        finally:
            stop_detection(detectors, client)
    if stats is not None and detectors is not None:
        stats.update({k: after.get(k, 0) - before.get(k, 0) for k in after})
    if summary.ok != len(paths):
        raise RuntimeError(f"bench extract {name}: {summary.ok}/{len(paths)} videos ok")
    return t, startup


def single_threaded(params: Params, workers: int, **sections) -> Params:
    """params on `workers` LocalCluster workers of one decoder and one detector thread each."""
    return replace(
        params,
        decode=replace(params.decode, threads=1),
        detect=replace(params.detect, threads=1),
        run=replace(params.run, workers=workers, scheduler=""),
        **sections,
    )


def bench_dask(paths, params: Params, workers: int, out: Path) -> float:
    """The Dask extract on `workers` single-threaded workers, a shard job per video: how the Dask
    layer scales with processes."""
    p = single_threaded(params, workers, shard=replace(params.shard, videos_per_shard=1))
    return bench_extract(paths, p, out, f"extract_w{workers}")[0]
