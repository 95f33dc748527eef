"""The options of `dfprep bench`, with their defaults and rules, as one frozen dataclass.

They are command-line options, not params.yaml values (a benchmark computes nothing the pipeline
keeps), but they follow the same rules (`dfprep.core.config`): a bad value is one line naming
`bench.<option>` before any video is generated or timed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dfprep.config import MAX_SIDE, MAX_THREADS, X264_PRESETS
from dfprep.core.config import Bool, Checked, Choice, Float, Int, Seq, override, param, reject

# stages: where one process's time goes, 1 vs 2 workers | machine: the default options on the
# whole machine vs a naive process pool | pairing: the largest-face rule vs manipulation-aware
# selection on the FF++-layout sample (dfprep.bench.pairing) | detector: the detector alone, in
# torch on a device and in ONNX Runtime (dfprep.bench.detector) | gpu: decode only, CPU extract
# and extract's GPU mode on the whole machine (dfprep.bench.gpu)
CASES = ("stages", "machine", "pairing", "detector", "gpu")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = (
    "fp32",
    "tf32",
    "fp16",
)  # dfprep.detectors.retinaface_torch.PRECISIONS (a test checks)

# What a case generates unless told otherwise (the fields' own defaults are the stages case's).
CASE_DEFAULTS: dict[str, dict[str, Any]] = {
    "stages": {},
    "machine": {"n": 12, "preset": ("superfast", "ultrafast")},
    "pairing": {},
    "detector": {},
    "gpu": {"n": 16},
}


@dataclass(frozen=True)
class BenchConfig(Checked):
    SECTION = "bench"

    case: str = param("stages", Choice(CASES))
    # generated videos (when none are given)
    n: int = param(4, Int(1, 10_000))
    seconds: float = param(20.0, Float(0, 3600, lo_open=True))  # length of each generated video
    # keyframe interval of the generated videos; 0 = x264's default (250)
    gop: int = param(0, Int(0, 100_000))
    # x264 preset(s) of the generated videos, one set each (ultrafast has no B-frames, so
    # decode.skip_nonref saves nothing); the stages case takes one
    preset: tuple[str, ...] = param(
        ("superfast",), Seq(Choice(X264_PRESETS), min_n=1, max_n=len(X264_PRESETS), unique=True)
    )
    # stages: the Dask worker counts timed
    workers: tuple[int, ...] = param((1, 2), Seq(Int(1, MAX_THREADS), min_n=1, max_n=64))
    naive: bool = param(True, Bool())  # also time the naive OpenCV baseline
    # machine: also time one worker of one thread (the scaling against the default workers)
    scaling: bool = param(True, Bool())
    # WxH of the generated videos (even: yuv420p)
    size: tuple[int, ...] = param((1920, 1080), Seq(Int(64, MAX_SIDE, even=True), n=2))
    # detector, gpu: where torch detects (auto: CUDA when there is one)
    device: str = param("auto", Choice(DEVICES))
    # detector: torch's precisions timed (none given: all three on CUDA, fp32 on the CPU)
    precision: tuple[str, ...] = param(
        (), Seq(Choice(PRECISIONS), min_n=0, max_n=len(PRECISIONS), unique=True)
    )
    # detector: frames per call timed
    batches: tuple[int, ...] = param((1, 32, 128), Seq(Int(1, 4096), min_n=1, max_n=16))
    onnx: bool = param(True, Bool())  # detector: also ONNX Runtime on the CPU (and the agreement)
    threads: int = param(0, Int(0, MAX_THREADS))  # detector: CPU threads per engine; 0 = every core
    # detector: the least time each figure is measured over (seconds)
    measure: float = param(3.0, Float(0, 600, lo_open=True))
    # gpu: each video timed this many times (hard links under other names): longer runs without
    # generating more video
    repeat: int = param(1, Int(1, 100))

    def cross_check(self) -> None:
        if self.case == "stages" and len(self.preset) != 1:
            raise reject(
                "bench.preset", f"the stages case takes one preset, got {len(self.preset)}"
            )
        if self.device == "cpu" and set(self.precision) - {"fp32"}:
            raise reject("bench.precision", "tf32 and fp16 are for CUDA; the CPU runs fp32")

    @classmethod
    def for_case(cls, case: str | None = None, **options: Any) -> BenchConfig:
        """The case's defaults, then `options` (None = unset, as from the command line);
        validated: the case first, so its own defaults can be looked up."""
        case = override(cls(), {"case": case}).case
        return override(cls(case=case), {**CASE_DEFAULTS[case], **options})
