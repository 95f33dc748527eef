"""`dftrain gpu-bench`: every training, input and inference figure of the project in one run
(about 8 minutes on one H200), printed as a table and written to OUT/bench.json + OUT/bench.md
(`dftrain.bench.report`).

1. bare timm forward + backward + fused AdamW on random tensors, bf16, batch 64 / 128 / 256;
2. our training step on the same tensors (ratio to 1; target >= 0.90 at batch 64);
3. our step under torch.compile (train.compile): speed-up and compile time;
4. the input pipeline alone with 1 / 8 / 15 workers (target: default workers >= 1.5x what 2
   consumes), then the whole `dftrain run` for a fixed number of steps: steps/s, GPU utilisation;
5. `dftrain eval` crops/s; `dftrain predict` on a 1080p30 60 s H.264 video: seconds per second of
   video (decode, detect, model; target < 1, faster than real time).

Every measurement runs even if an earlier one failed; a failure is recorded under `errors` (the
command then exits 1). `Sizes.tiny_sizes()` shrinks everything so the whole suite runs on a CPU in
seconds: a smoke test of the code path, whose figures are not results.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import platform
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfprep.core.system import available_cores
from dftrain.config import EvalConfig, ModelConfig, TrainConfig


@dataclass(frozen=True)
class Sizes:
    model: ModelConfig = field(default_factory=ModelConfig)  # ViT-B/16 @224 (the paper's model)
    batches: tuple[int, ...] = (64, 128, 256)
    steps: int = 30  # timed steps per model measurement
    warmup: int = 5
    compile_batch: int = 64
    compile_backend: str = "inductor"
    shard_size: int = 224  # px of the synthetic JPEG crops
    train_shards: int = 30  # >= the largest worker count
    per_shard: int = 256  # 30 x 256 = 7680 samples = 120 steps of 64 for the run
    distinct: int = 16  # encoded JPEGs per label kind in the shards (every sample is decoded)
    loader_workers: tuple[int, ...] = (1, 8, 15)
    loader_batches: int = 40  # batches timed per loader measurement
    run_batch: int = 64
    eval_shards: int = 16
    eval_videos_per_shard: int = 16
    eval_crops_per_video: int = 32  # 8192 crops
    eval_batch: int = 128
    eval_workers: int = -1  # -1 = eval's default (cores - 1, at most one per shard)
    video: tuple[int, int, int, float] = (1920, 1080, 30, 60.0)  # width, height, fps, seconds
    tiny: bool = False

    @staticmethod
    def tiny_sizes() -> Sizes:
        """A few seconds on a CPU: tiny ViT at 32 px, small batches, few steps, a 3 s 320x180 video."""
        return Sizes(
            model=ModelConfig(
                name="vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, drop_path=0.0
            ),
            batches=(4, 8),
            steps=2,
            warmup=1,
            compile_batch=8,
            compile_backend="eager",
            shard_size=48,
            train_shards=4,
            per_shard=24,
            loader_workers=(0, 2),
            loader_batches=3,
            run_batch=8,
            eval_shards=2,
            eval_videos_per_shard=2,
            eval_crops_per_video=8,
            eval_batch=16,
            eval_workers=0,
            video=(320, 180, 10, 3.0),
            tiny=True,
        )


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def host_info(device) -> dict[str, Any]:
    import timm
    import torch

    info = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        "cores": available_cores(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
    }
    if device.type == "cuda":
        info["cuda"] = torch.version.cuda
    return info


def _train_cfg(base: TrainConfig, sizes: Sizes, batch: int) -> TrainConfig:
    return dataclasses.replace(
        base,
        model=sizes.model,
        optim=dataclasses.replace(base.optim, batch_size=batch),
        compile_backend=sizes.compile_backend,
    )


class _Sections:
    """Runs each measurement, recording its seconds or its error without stopping the others."""

    def __init__(
        self, result: dict, log: Callable[[str], None], on_update: Callable[[dict], None] | None
    ):
        self.result, self.log, self.on_update = result, log, on_update

    def __call__(self, name: str, fn: Callable[[], Any], store: bool = True) -> Any:
        self.log(f"bench: {name} ...")
        t0 = time.perf_counter()
        try:
            value = fn()
        except Exception as e:  # recorded; the next measurement still runs
            last = traceback.format_exception_only(type(e), e)[-1].strip()
            self.result["errors"][name] = last
            self.log(f"bench: {name} FAILED: {last}")
            value = None
        else:
            if store:
                self.result[name] = value
        self.result["seconds"][name] = round(time.perf_counter() - t0, 2)
        if self.on_update is not None:  # a run cut short still leaves what it measured
            self.on_update(self.result)
        return value


def run_suite(
    sizes: Sizes,
    device,
    base: TrainConfig | None = None,
    data_dir: Path | None = None,
    work_dir: Path | None = None,
    log: Callable[[str], None] = print,
    on_update: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Every measurement of the suite (module docstring); returns the JSON-able result."""
    from dftrain.bench.infer import bench_eval, bench_predict, random_checkpoint
    from dftrain.bench.report import targets
    from dftrain.bench.synthetic import make_predict_video
    from dftrain.bench.train import (
        bench_compile,
        bench_loader,
        bench_model,
        bench_run,
        data_or_synthetic,
    )
    from dftrain.data import default_workers, read_splits

    base = base or TrainConfig()
    result: dict[str, Any] = {
        "suite": "gpu",
        "tiny": sizes.tiny,
        "date": _now(),
        "host": host_info(device),
        "sizes": json.loads(json.dumps(dataclasses.asdict(sizes))),  # tuples as lists
        "precision": "bf16" if device.type == "cuda" and base.amp != "off" else "fp32",
        "complete": False,
        "errors": {},
        "seconds": {},
    }
    section = _Sections(result, log, on_update)
    t_start = time.perf_counter()
    with (
        _WorkDir(work_dir) as work,
        data_or_synthetic(
            data_dir,
            shards=sizes.train_shards,
            per_shard=sizes.per_shard,
            size=sizes.shard_size,
            distinct=sizes.distinct,
        ) as shards,
    ):
        # 1 + 2: bare timm vs our step
        result["model"] = []
        for b in sizes.batches:
            r = section(f"model_b{b}", lambda b=b: bench_model(
                _train_cfg(base, sizes, b), b, sizes.steps, sizes.warmup, device), store=False)  # fmt: skip
            if r is not None:
                result["model"].append(r)
        # 3: torch.compile
        section("compile", lambda: bench_compile(
            _train_cfg(base, sizes, sizes.compile_batch), sizes.compile_batch, sizes.steps,
            sizes.warmup, device))  # fmt: skip
        # 4: the input pipeline alone, then the whole run
        n_train = len(read_splits(shards)["train"].shards)
        default = default_workers(1, n_train)
        result["loader_default_workers"] = default
        counts = sorted({*(w for w in sizes.loader_workers if w <= n_train), default})
        result["loader"] = []
        run_cfg = _train_cfg(base, sizes, sizes.run_batch)
        for w in counts:
            r = section(f"loader_w{w}", lambda w=w: bench_loader(
                shards, run_cfg, w, sizes.loader_batches, device), store=False)  # fmt: skip
            if r is not None:
                result["loader"].append(r)
        section("run", lambda: bench_run(shards, run_cfg, work / "run", device))
        # 5: eval and predict
        ecfg = EvalConfig(
            batch_size=sizes.eval_batch,
            workers=sizes.eval_workers,
            device=device.type,
            amp=base.amp,
        )
        ckpt = section("checkpoint", lambda: str(random_checkpoint(
            work / "ckpt" / "best", _train_cfg(base, sizes, sizes.run_batch))))  # fmt: skip
        if ckpt:
            section("eval", lambda: bench_eval(Path(ckpt), _eval_data(work, sizes),
                                               work / "eval", ecfg))  # fmt: skip
            w, h, fps, secs = sizes.video
            video = section("video", lambda: str(make_predict_video(
                work / "video.mp4", w, h, fps, secs)))  # fmt: skip
            if video:
                section("predict", lambda: bench_predict(Path(video), Path(ckpt), ecfg))
    result["total_s"] = round(time.perf_counter() - t_start, 1)
    result["complete"] = True
    result["targets"] = targets(result)
    return result


def _eval_data(work: Path, sizes: Sizes) -> Path:
    from dftrain.bench.synthetic import write_synthetic_extract

    out = work / "extract"
    write_synthetic_extract(
        out, shards=sizes.eval_shards, videos_per_shard=sizes.eval_videos_per_shard,
        crops_per_video=sizes.eval_crops_per_video, size=sizes.shard_size,
    )  # fmt: skip
    return out


class _WorkDir:
    """A fresh scratch folder: inside `work_dir` (kept) or a temporary one (removed afterwards)."""

    def __init__(self, work_dir: Path | None):
        self.work_dir, self._tmp = work_dir, None

    def __enter__(self) -> Path:
        if self.work_dir is not None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix="suite-", dir=self.work_dir))
        self._tmp = tempfile.TemporaryDirectory(prefix="dftrain-suite-")
        return Path(self._tmp.name)

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
