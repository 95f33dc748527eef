"""`dfprep bench`: measured figures of extraction, printed, never asserted by a test.

- `config`: the command's options as a validated frozen dataclass (`BenchConfig.for_case`).
- `cases`: the `stages` and `machine` cases (`run_stages`, `run_machine`) from the timings in
  `measure` on the videos of `videos` (generated face clips, or the user's).
- `pairing`: the `pairing` case (the largest-face rule vs manipulation-aware selection).
- `detector`: the `detector` case (the detector alone, in torch on a device and in ONNX Runtime).
- `gpu`: the `gpu` case (decode only, CPU extract and extract's GPU mode on the whole machine).
- `tables`: what the command prints.

`run_case` runs the case a config names; `to_json` is what `--json` writes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dfprep.bench.cases import BenchResult, run_machine, run_stages, to_json
from dfprep.bench.config import CASES, BenchConfig
from dfprep.bench.detector import DetectorBench, run_detector
from dfprep.bench.gpu import GpuBench, run_gpu
from dfprep.bench.pairing import PairingBench, pairing_root, run_pairing_bench
from dfprep.bench.videos import make_bench_videos
from dfprep.config import Params
from dfprep.core.errors import InputError
from dfprep.core.media import video_files

__all__ = [
    "CASES",
    "BenchConfig",
    "BenchResult",
    "DetectorBench",
    "GpuBench",
    "PairingBench",
    "make_bench_videos",
    "run_case",
    "run_detector",
    "run_gpu",
    "run_machine",
    "run_pairing_bench",
    "run_stages",
    "to_json",
]


def run_case(
    videos: list[Path] | None,
    params: Params,
    cfg: BenchConfig,
    work_dir: Path | None = None,
    log: Callable[[str], None] = lambda line: None,
    json_out: Path | None = None,
) -> BenchResult | list[BenchResult] | PairingBench | DetectorBench | GpuBench:
    """The case `cfg.case` on the videos (None: generated; pairing: the sample's root folder);
    LOG gets progress lines, JSON_OUT the figures so far (detector, gpu: the cases a GPU host's
    time limit may cut short)."""
    if cfg.case == "pairing":
        return run_pairing_bench(pairing_root(videos), params, work_dir=work_dir)
    if cfg.case == "detector":
        if videos:
            raise InputError("bench --case detector times a generated clip: give no videos")
        return run_detector(params, cfg, work_dir, json_out, log)
    videos = video_files(videos, "bench") if videos else None  # folders: by the media rule
    if cfg.case == "gpu":
        return run_gpu(videos, params, cfg, work_dir, json_out)
    if cfg.case == "stages":
        return run_stages(videos, params, cfg, work_dir)
    return run_machine(videos, params, cfg, work_dir)
