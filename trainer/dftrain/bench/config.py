"""The options of `dftrain bench` and `dftrain gpu-bench`, with their defaults and rules.

They are command-line options, not params.yaml values (the model, batch size and every training
setting come from its `train:` section), but they follow the same rules (`dfprep.core.config`): a
bad value is one line naming `bench.<option>` or `gpu_bench.<option>` before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from dfprep.core.config import Bool, Checked, Choice, Int, Seq, param
from dftrain.config import MAX_WORKERS, TRAIN_DEVICES

AUTO_WORKERS = -1  # a loader worker count: cores - 1 (at least 1)


@dataclass(frozen=True)
class BenchConfig(Checked):
    """`dftrain bench`: the input pipeline per worker count, and the model where there is a GPU."""

    SECTION = "bench"

    # loader worker counts timed, one measurement each; -1 (auto on the command line) = cores - 1
    workers: tuple[int, ...] = param(
        (1, AUTO_WORKERS), Seq(Int(AUTO_WORKERS, MAX_WORKERS), min_n=1, max_n=64)
    )
    batches: int = param(20, Int(1, 1_000_000))  # batches timed per loader measurement
    steps: int = param(20, Int(1, 1_000_000))  # timed training steps per model measurement
    cpu_model: bool = param(False, Bool())  # time the model on the CPU when there is no GPU


@dataclass(frozen=True)
class GpuBenchConfig(Checked):
    """`dftrain gpu-bench`: every measurement at fixed sizes (dftrain.bench.suite.Sizes)."""

    SECTION = "gpu_bench"

    # auto | cpu | cuda: one device, the first GPU (CUDA_VISIBLE_DEVICES chooses it)
    device: str = param("auto", Choice(TRAIN_DEVICES))
    tiny: bool = param(False, Bool())  # tiny sizes: a smoke test of the code path, not a result
