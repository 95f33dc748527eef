"""The `stages` and `machine` cases of `dfprep bench`: where extract's time goes, on the same
videos in one run, against the machine's decode + detect limit.

`stages` (the default): decode only (sampled frames converted to RGB), detection only (on those
frames, at the detector size), the full per-video extract (decode + detect + crop + JPEG), a naive
baseline as users often write it (OpenCV reads and converts every frame, detection at full
resolution on one frame per second), and the Dask extract with 1 and with 2 workers.
`machine`: the whole machine on a folder of clips with the default options (one shard job, fewer
jobs than workers), for x264's default encoding and for `ultrafast` (no B-frames, so
`decode.skip_nonref` saves nothing), beside the naive baseline run by `multiprocessing.Pool(cores)`
over the videos. Every figure is also given against the machine's decode + detect limit:
(single-process decode-only + detect-only seconds) / cores. What a run pays once (cluster start,
worker imports, ONNX sessions) is timed apart.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dfprep.bench.config import BenchConfig
from dfprep.bench.measure import (
    bench_dask,
    bench_decode,
    bench_detect,
    bench_extract,
    bench_full,
    bench_naive,
    bench_naive_pool,
    single_threaded,
)
from dfprep.bench.videos import make_bench_videos, video_seconds
from dfprep.config import Params
from dfprep.core.errors import InputError
from dfprep.core.outputs import output_dir
from dfprep.core.system import available_cores


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

    def target(self, name: str, value: float, goal: str) -> None:
        """Record a ratio and whether it meets `goal` ('<= 1.25', '>= 3')."""
        op, threshold = goal.split()
        self.ratios[name] = value
        met = value <= float(threshold) if op == "<=" else value >= float(threshold)
        self.targets[name] = {"target": goal, "met": met}


def check_videos(paths: list[Path] | None, params: Params) -> None:
    """Refuse before any timing a video that would fail or divide by zero: one line naming it."""
    from dfprep.decode import open_sampled

    for p in paths or ():
        with open_sampled(p, params.decode) as (info, _):  # a DecodeError names the file and why
            if not info.duration:
                raise InputError(f"{p}: no duration, so nothing to time against real time")


def _generated(work: Path, cfg: BenchConfig, preset: str) -> list[Path]:
    return make_bench_videos(
        work / "videos", n=cfg.n, seconds=cfg.seconds, gop=cfg.gop or None, preset=preset,
        size=cfg.size,
    )  # fmt: skip


def _measured(videos: list[Path], params: Params, title: str) -> BenchResult:
    """A result for the videos with the single-process decode-only and detect-only times, and
    the limit they give."""
    res = BenchResult(len(videos), round(video_seconds(videos), 2), 0, title=title)
    t_decode, frames = bench_decode(videos, params)
    res.frames_sampled = sum(len(f) for f in frames)
    res.timings["decode only (1 process, 1 thread)"] = t_decode
    res.timings["detect only (1 process, 1 thread)"] = bench_detect(frames, params)
    res.cores = available_cores()
    res.limit = (t_decode + res.timings["detect only (1 process, 1 thread)"]) / res.cores
    return res


def run_stages(
    paths: list[Path] | None, params: Params, cfg: BenchConfig, work_dir: Path | None = None
) -> BenchResult:
    """The `stages` case: where one process's time goes, and how Dask scales with workers."""
    check_videos(paths, params)
    work = output_dir(work_dir or tempfile.mkdtemp(prefix="dfprep-bench-"), "--work-dir")
    videos = list(paths) if paths else _generated(work, cfg, cfg.preset[0])
    res = _measured(videos, params, "stages")
    t = res.timings
    t["full extract, 1 process (decode + detect + crop + JPEG)"] = full = bench_full(videos, params)
    if cfg.naive:
        t["naive baseline, 1 process"] = bench_naive(videos, params)
    for w in cfg.workers:
        t[f"Dask extract, {w} worker(s) x 1 thread"] = bench_dask(videos, params, w, work)
    res.target("full / (decode + detect)", full / (res.limit * res.cores), "<= 1.25")
    if cfg.naive:
        res.target("naive / full", t["naive baseline, 1 process"] / full, ">= 3")
    one, two = "Dask extract, 1 worker(s) x 1 thread", "Dask extract, 2 worker(s) x 1 thread"
    if one in t and two in t:
        res.target("speed-up 2 workers vs 1", t[one] / t[two], ">= 1.7")
    res.notes.append(f"cores: {res.cores}; videos: {[str(p) for p in videos]}")
    return res


def run_machine(
    paths: list[Path] | None, params: Params, cfg: BenchConfig, work_dir: Path | None = None
) -> list[BenchResult]:
    """The `machine` case, once per x264 preset (or once on `paths`): the default options on the
    whole machine, against the decode + detect limit and the naive baseline on a process pool."""
    from dfprep.distribute import default_workers

    check_videos(paths, params)
    work = output_dir(work_dir or tempfile.mkdtemp(prefix="dfprep-bench-"), "--work-dir")
    sets = (
        [("your videos", list(paths))]
        if paths
        else [(f"x264 {preset}", _generated(work, cfg, preset)) for preset in cfg.preset]
    )
    results = []
    for title, videos in sets:
        res = _measured(videos, params, f"machine, {title}")
        t = res.timings
        name = "dfprep extract, default options"
        t[name], res.startup["cluster start + workers warm"] = bench_extract(
            videos, params, work, "extract_default"
        )
        workers = default_workers(params.run)
        if cfg.naive:
            pool = f"naive baseline, Pool({res.cores})"
            t[pool], res.startup[f"naive Pool({res.cores}) start"] = bench_naive_pool(
                videos, params, res.cores
            )
            res.target("naive / extract", t[pool] / t[name], ">= 3")
        res.target("extract / limit", t[name] / res.limit, "<= 1.3")
        if cfg.scaling and workers > 1:
            one = "dfprep extract, 1 worker x 1 thread"
            t[one] = bench_extract(videos, single_threaded(params, 1), work, "extract_1w")[0]
            res.target(f"speed-up {workers} workers vs 1", t[one] / t[name],
                       f">= {round(0.85 * workers, 2):g}")  # fmt: skip
        res.notes.append(
            f"cores: {res.cores}; default workers: {workers}; videos: {[str(p) for p in videos]}"
        )
        results.append(res)
    return results


def to_json(res) -> str:
    """A case's result (a dataclass or a list of them) as JSON."""
    return json.dumps([asdict(r) for r in res] if isinstance(res, list) else asdict(res), indent=1)
