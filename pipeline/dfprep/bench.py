"""dfprep bench: where extract's time goes, on the same videos in one run.

Two cases. `stages` (the default): decode only (sampled frames converted to RGB), detection only
(on those frames, at the detector size), the full per-video extract (decode + detect + crop +
JPEG), a naive baseline as users often write it (OpenCV reads and converts every frame, detection
at full resolution on one frame per second), and the Dask extract with 1 and with 2 workers.
`machine`: the whole machine on a folder of clips with the default options (one shard job, fewer
jobs than workers), for x264's default encoding and for `ultrafast` (no B-frames, so
`decode.skip_nonref` saves nothing), beside the naive baseline run by `multiprocessing.Pool(cores)`
over the videos. Every figure is also given against the machine's decode + detect limit:
(single-process decode-only + detect-only seconds) / cores. What a run pays once (cluster start,
worker imports, ONNX sessions) is timed apart.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from dfprep.config import Params, replace
from dfprep.core.atomic import publish
from dfprep.core.system import available_cores
from dfprep.errors import ConfigError, InputError
from dfprep.outputs import output_dir

CASES = ("stages", "machine", "pairing")  # pairing: dfprep.bench_pairing
SIZE = (1920, 1080)


@dataclass
class BenchResult:
    videos: int
    seconds_of_video: float
    frames_sampled: int
    title: str = ""
    cores: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    limit: float = 0.0  # the decode + detect limit: (decode + detect) / cores, seconds
    startup: dict[str, float] = field(default_factory=dict)  # paid once per run, not in timings
    ratios: dict[str, float] = field(default_factory=dict)
    targets: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def make_bench_videos(
    out_dir: Path,
    n: int = 4,
    seconds: float = 20.0,
    gop: int | None = None,
    preset: str = "superfast",
    size: tuple[int, int] = SIZE,
) -> list[Path]:
    """30 fps H.264 videos (1920x1080 by default) with a moving real face (the sample generator's
    renderer); `preset` is x264's (superfast, like `dfprep synth`; ultrafast has no B-frames)."""
    from dfprep.synth import make_face_video

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    tag = "" if (preset == "superfast" and size == SIZE) else f"_{preset}_{size[0]}x{size[1]}"
    for i in range(n):
        p = out_dir / f"bench_{i}_gop{gop or 'default'}_{seconds:g}s{tag}.mp4"
        if not p.exists():
            tmp = p.with_name(f".{p.name}.tmp.mp4")
            make_face_video(tmp, fps=30, size=size, seconds=seconds, seed=i, gop=gop, preset=preset)
            publish(tmp, p)  # a killed bench never leaves a half video that a rerun would reuse
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

    cfg = replace(
        params.extract,
        decode=replace(params.decode, threads=1),
        detect=replace(params.detect, threads=1),
    )
    det = get_detector(cfg.detect)
    rows = [_row(p) for p in paths]

    def run():
        for r in rows:
            res = process_video(r, cfg, det)
            if res.status_row["status"] != "ok":
                raise RuntimeError(f"bench video failed: {res.status_row['error']}")

    return _timed(run)[0]


def _naive_detector(params: Params):
    from dfprep.detect import get_detector

    return get_detector(
        replace(params.detect, threads=1, max_size=16384)
    )  # full resolution (the largest max_size allowed)


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
    _pool_state["det"].detect([__import__("numpy").zeros((64, 64, 3), "uint8")])
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


def _bench_manifest(paths, out: Path, name: str) -> Path:
    from dfprep.adapters import VideoRow
    from dfprep.manifest import rows_to_table, write_manifest

    root = Path(os.path.commonpath([str(Path(p).resolve().parent) for p in paths]))
    rows = [
        VideoRow(Path(p).resolve().relative_to(root).as_posix(), "test", 1, "bench", "FS")
        for p in paths
    ]
    return write_manifest(rows_to_table("bench", root, rows), out / f"{name}.parquet")


def bench_extract(paths, params: Params, out: Path, name: str) -> tuple[float, float]:
    """`run_extract` on a cluster made from `params.run`, as the CLI runs it. Returns (seconds,
    start-up seconds): the cluster's start and each worker's one-off start (imports, ONNX session,
    first inference) are timed apart, being paid once per run, not per video."""
    from dfprep.distribute import default_workers, make_client
    from dfprep.extract import run_extract, task_config

    out.mkdir(parents=True, exist_ok=True)
    m = _bench_manifest(paths, out, name)
    t0 = time.perf_counter()
    with make_client(params.run) as client:
        workers = default_workers(params.run)
        client.wait_for_workers(workers)
        cfg = task_config(params.extract, client, len(paths))
        if not all(client.run(_warm_worker, _warm_row(out), cfg).values()):
            raise RuntimeError("bench: the warm-up video failed on a worker")
        startup = time.perf_counter() - t0
        t, summary = _timed(
            lambda: run_extract([m], out / name, params, client=client, overwrite=True)
        )
    if summary.ok != len(paths):
        raise RuntimeError(f"bench extract {name}: {summary.ok}/{len(paths)} videos ok")
    return t, startup


def bench_dask(paths, params: Params, workers: int, out: Path) -> float:
    """The Dask extract on `workers` single-threaded workers, a shard job per video: how the Dask
    layer scales with processes."""
    p = replace(
        params,
        shard=replace(params.shard, videos_per_shard=1),
        decode=replace(params.decode, threads=1),
        detect=replace(params.detect, threads=1),
        run=replace(params.run, workers=workers, scheduler=""),
    )
    return bench_extract(paths, p, out, f"extract_w{workers}")[0]


def _row(p: Path) -> dict:
    return {
        "video_id": "bench-" + p.stem,
        "path": str(p),
        "dataset": "bench",
        "split": "test",
        "label": 1,
        "method": "bench",
        "category": "FS",
        "kind": "video",
        "frame_stride": 1,
        "fake_segments": None,
    }


def _video_seconds(paths) -> float:
    import av

    total = 0.0
    for p in paths:
        with av.open(str(p)) as c:
            total += float(c.duration or 0) / 1e6
    return total


def _decode_detect(paths, params: Params, res: BenchResult) -> None:
    """The single-process decode-only and detect-only times, and the limit they give."""
    t_decode, frames = bench_decode(paths, params)
    res.frames_sampled = sum(len(f) for f in frames)
    res.timings["decode only (1 process, 1 thread)"] = t_decode
    res.timings["detect only (1 process, 1 thread)"] = bench_detect(frames, params)
    res.cores = available_cores()
    res.limit = (t_decode + res.timings["detect only (1 process, 1 thread)"]) / res.cores


def check_bench_args(
    paths: list[Path] | None,
    params: Params,
    *,
    workers: tuple[int, ...],
    seconds: float,
    n: int,
    gop: int | None,
) -> None:
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
        raise ConfigError(
            f"--workers: worker counts must be >= 1, got {', '.join(map(str, workers))}"
        )
    for p in paths or ():
        with open_sampled(p, params.decode) as (info, _):  # a DecodeError names the file and why
            if not info.duration:
                raise InputError(f"{p}: no duration, so nothing to time against real time")


def run_bench(
    paths: list[Path] | None = None,
    params: Params | None = None,
    *,
    workers: tuple[int, ...] = (1, 2),
    work_dir: Path | None = None,
    seconds: float = 20.0,
    n: int = 4,
    gop: int | None = None,
    naive: bool = True,
    preset: str = "superfast",
    size: tuple[int, int] = SIZE,
) -> BenchResult:
    """The `stages` case: where one process's time goes, and how Dask scales with workers."""
    params = params or Params()
    check_bench_args(paths, params, workers=workers, seconds=seconds, n=n, gop=gop)
    work = output_dir(work_dir or tempfile.mkdtemp(prefix="dfprep-bench-"), "--work-dir")
    if not paths:
        paths = make_bench_videos(
            work / "videos", n=n, seconds=seconds, gop=gop, preset=preset, size=size
        )
    res = BenchResult(
        videos=len(paths),
        seconds_of_video=round(_video_seconds(paths), 2),
        frames_sampled=0,
        title="stages",
    )
    _decode_detect(paths, params, res)
    t = res.timings
    t["full extract, 1 process (decode + detect + crop + JPEG)"] = full = bench_full(paths, params)
    if naive:
        t["naive baseline, 1 process"] = bench_naive(paths, params)
    for w in workers:
        t[f"Dask extract, {w} worker(s) x 1 thread"] = bench_dask(paths, params, w, work)
    decode_detect = res.limit * res.cores
    res.ratios["full / (decode + detect)"] = full / decode_detect
    res.targets["full / (decode + detect)"] = {
        "target": "<= 1.25",
        "met": res.ratios["full / (decode + detect)"] <= 1.25,
    }
    if naive:
        res.ratios["naive / full"] = t["naive baseline, 1 process"] / full
        res.targets["naive / full"] = {"target": ">= 3", "met": res.ratios["naive / full"] >= 3}
    one, two = "Dask extract, 1 worker(s) x 1 thread", "Dask extract, 2 worker(s) x 1 thread"
    if one in t and two in t:
        res.ratios["speed-up 2 workers vs 1"] = t[one] / t[two]
        res.targets["speed-up 2 workers vs 1"] = {
            "target": ">= 1.7",
            "met": res.ratios["speed-up 2 workers vs 1"] >= 1.7,
        }
    res.notes.append(f"cores: {res.cores}; videos: {[str(p) for p in paths]}")
    return res


def run_machine_bench(
    paths: list[Path] | None = None,
    params: Params | None = None,
    *,
    work_dir: Path | None = None,
    seconds: float = 20.0,
    n: int = 12,
    gop: int | None = None,
    presets: tuple[str, ...] = ("superfast", "ultrafast"),
    naive: bool = True,
    scaling: bool = True,
    size: tuple[int, int] = SIZE,
) -> list[BenchResult]:
    """The `machine` case, once per x264 preset (or once on `paths`): the default options on the
    whole machine, against the decode + detect limit and the naive baseline on a process pool."""
    from dfprep.distribute import default_workers

    params = params or Params()
    work = Path(work_dir or tempfile.mkdtemp(prefix="dfprep-bench-"))
    sets = (
        [("your videos", list(paths))]
        if paths
        else [
            (
                f"x264 {preset}",
                make_bench_videos(
                    work / "videos", n=n, seconds=seconds, gop=gop, preset=preset, size=size
                ),
            )
            for preset in presets
        ]
    )
    results = []
    for title, videos in sets:
        res = BenchResult(
            videos=len(videos),
            seconds_of_video=round(_video_seconds(videos), 2),
            frames_sampled=0,
            title=f"machine, {title}",
        )
        _decode_detect(videos, params, res)
        t = res.timings
        name = "dfprep extract, default options"
        t[name], res.startup["cluster start + workers warm"] = bench_extract(
            videos, params, work, "extract_default"
        )
        workers = default_workers(params.run)
        if naive:
            (
                t[f"naive baseline, Pool({res.cores})"],
                res.startup[f"naive Pool({res.cores}) start"],
            ) = bench_naive_pool(videos, params, res.cores)
            res.ratios["naive / extract"] = t[f"naive baseline, Pool({res.cores})"] / t[name]
            res.targets["naive / extract"] = {
                "target": ">= 3",
                "met": res.ratios["naive / extract"] >= 3,
            }
        res.ratios["extract / limit"] = t[name] / res.limit
        res.targets["extract / limit"] = {
            "target": "<= 1.3",
            "met": res.ratios["extract / limit"] <= 1.3,
        }
        if scaling and workers > 1:
            one = replace(
                params,
                decode=replace(params.decode, threads=1),
                detect=replace(params.detect, threads=1),
                run=replace(params.run, workers=1, scheduler=""),
            )
            t["dfprep extract, 1 worker x 1 thread"] = bench_extract(
                videos, one, work, "extract_1w"
            )[0]
            key = f"speed-up {workers} workers vs 1"
            res.ratios[key] = t["dfprep extract, 1 worker x 1 thread"] / t[name]
            goal = round(0.85 * workers, 2)
            res.targets[key] = {"target": f">= {goal:g}", "met": res.ratios[key] >= goal}
        res.notes.append(
            f"cores: {res.cores}; default workers: {workers}; videos: {[str(p) for p in videos]}"
        )
        results.append(res)
    return results


def to_json(res: BenchResult | list[BenchResult]) -> str:
    from dataclasses import asdict

    return json.dumps([asdict(r) for r in res] if isinstance(res, list) else asdict(res), indent=1)


def _warm_worker(row: dict, cfg) -> bool:
    """Pay a worker's one-off start-up before timing: imports, the ONNX session, the decoder's and
    the JPEG encoder's first use; by running a whole video (a tiny one, not a timed one)."""
    from dfprep.extract import run_video

    return run_video(row, cfg).status_row["status"] == "ok"


def _warm_row(out: Path) -> dict:
    from dfprep.synth import make_face_video

    path = out / "warm-up.mp4"
    if not path.exists():
        tmp = out / ".warm-up.tmp.mp4"
        make_face_video(tmp, fps=30, size=(320, 240), seconds=1, seed=99)
        publish(tmp, path)
    return _row(path)
