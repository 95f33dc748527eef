"""Training throughput (benchmarks print numbers; no test asserts on time).

- loader: samples/s of the training input pipeline alone (read, shuffle, decode, augment, batch,
  pinned copy to the device), for a list of worker counts (1 gives the per-worker rate).
- model: images/s of our training step (`dftrain.step.train_step` on WithEmbedding: CE + triplet,
  layer-decay AdamW, the lr schedule, bf16 on CUDA) against a bare timm forward/backward/AdamW
  loop, both on random tensors of the same shape; optionally our step under torch.compile (its
  compile time too).
- run: the whole `dftrain run` on shards, its training loop's steps/s and the GPU's utilisation.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

import timm
import torch
import torch.nn.functional as F

from dftrain.bench.synthetic import write_synthetic_shards
from dftrain.bench.utilisation import UtilisationSampler
from dftrain.config import TrainConfig, effective_lr, with_weight
from dftrain.data import (
    SampleDecoder,
    TrainStream,
    batches_per_rank,
    check_workers,
    loader,
    read_splits,
)
from dftrain.labels import names, triplet_targets
from dftrain.model import WithEmbedding, create_model
from dftrain.optim import build_optimizer, lr_at, set_lr
from dftrain.step import autocast, maybe_compile, train_step
from dftrain.transforms import train_transform


@contextlib.contextmanager
def data_or_synthetic(
    data_dir: str | Path | None, shards: int = 8, per_shard: int = 128, size: int = 224, **kw
):
    """The given shard directory, or synthetic `size` px shards in a temporary one (local disk)."""
    if data_dir is not None:
        yield Path(data_dir)
        return
    with tempfile.TemporaryDirectory(prefix="dftrain-bench-") as tmp:
        write_synthetic_shards(
            tmp, {"train": [per_shard] * shards, "val": [per_shard]}, size=size, **kw
        )
        yield Path(tmp)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_loader(
    data_dir: Path,
    cfg: TrainConfig,
    workers: int,
    batches: int,
    device: torch.device | None = None,
) -> dict[str, float]:
    """Samples/s of the training stream with `workers` DataLoader workers (after the first batch).

    With a CUDA `device` the batches are pinned and copied to it, as `dftrain run` does."""
    device = device or torch.device("cpu")
    split = read_splits(data_dir)["train"]
    check_workers(split, workers, 1)
    decode = SampleDecoder(train_transform(cfg.aug, cfg.model.img_size), cfg.labels)
    bs = cfg.optim.batch_size
    stream = TrainStream(
        split, decode, bs, batches + max(workers, 1), epoch=0, seed=cfg.seed,
        shuffle_buffer=cfg.data.shuffle_buffer, shuffle_initial=cfg.data.shuffle_initial,
    )  # fmt: skip
    pin = device.type == "cuda"
    it = iter(loader(stream, workers, cfg.data.prefetch, seed=cfg.seed, pin_memory=pin))
    next(it)  # worker start-up and the shuffle buffer's initial fill are not throughput
    t0, n = time.perf_counter(), 0
    for x, _ in it:
        x.to(device, non_blocking=True)
        n += len(x)
        if n >= batches * bs:
            break
    _sync(device)
    dt = time.perf_counter() - t0
    return {
        "workers": workers,
        "samples": n,
        "seconds": dt,
        "samples_per_s": n / dt,
        "per_worker": n / dt / max(workers, 1),
    }


def _interleaved(steps_fns, steps: int, warmup: int, device: torch.device) -> list[float]:
    """Seconds per function, alternating them step by step so drift in machine load hits both alike."""
    for _ in range(warmup):
        for fn in steps_fns:
            fn()
    totals = [0.0] * len(steps_fns)
    for _ in range(steps):
        for k, fn in enumerate(steps_fns):
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            totals[k] += time.perf_counter() - t0
    return totals


def _our_step(cfg: TrainConfig, x, y, device: torch.device, total_steps: int = 1000):
    """`dftrain run`'s step: lr schedule, WithEmbedding (torch.compile if cfg.compile), then
    `train_step` (CE + triplet, layer-decay AdamW, fused on CUDA)."""
    if cfg.loss.weight == "auto":  # found when a run starts; any weight costs the same here
        cfg = with_weight(cfg, 1.0)
    vit = create_model(cfg.model, len(names(cfg.labels))).to(device)
    ours = maybe_compile(WithEmbedding(vit, cfg.loss.embedding).train(), cfg)
    o = cfg.optim
    opt = build_optimizer(vit, o, device)
    ty = triplet_targets(y, cfg.loss.triplet_labels)
    warmup = total_steps * o.warmup_epochs / max(o.epochs, 1)
    peak = effective_lr(o, 1)[0]
    n = 0

    def step():
        nonlocal n
        set_lr(opt, lr_at(n, total_steps, warmup, peak, o.min_lr))
        n += 1
        train_step(ours, opt, x, y, ty, cfg, vit.parameters())

    return step


def _bare_step(cfg: TrainConfig, x, y, device: torch.device):
    kwargs = {
        "img_size": cfg.model.img_size,
        "num_classes": len(names(cfg.labels)),
        "global_pool": "avg",
    }
    kwargs["drop_path_rate"] = cfg.model.drop_path
    if cfg.model.patch_size:
        kwargs["patch_size"] = cfg.model.patch_size
    if cfg.model.depth:
        kwargs["depth"] = cfg.model.depth
    bare = timm.create_model(cfg.model.name, pretrained=False, **kwargs).to(device).train()
    opt = torch.optim.AdamW(bare.parameters(), lr=1e-4, fused=device.type == "cuda" or None)

    def step():
        with autocast(device, cfg.amp):
            out = bare(x)
        loss = F.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _inputs(cfg: TrainConfig, batch: int, device: torch.device):
    size = cfg.model.img_size
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.arange(batch, device=device) % len(names(cfg.labels))
    return x, y


def free_device_memory(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def bench_model(
    cfg: TrainConfig, batch: int, steps: int, warmup: int, device: torch.device
) -> dict[str, float]:
    """Training images/s: ours vs a bare timm loop (same architecture, shape, precision, optimiser kind)."""
    x, y = _inputs(cfg, batch, device)
    t_ours, t_bare = _interleaved(
        [_our_step(cfg, x, y, device), _bare_step(cfg, x, y, device)], steps, warmup, device
    )
    ours_ips, bare_ips = batch * steps / t_ours, batch * steps / t_bare
    free_device_memory(device)
    return {
        "batch": batch,
        "steps": steps,
        "ours_img_per_s": ours_ips,
        "bare_img_per_s": bare_ips,
        "ratio": ours_ips / bare_ips,
    }


def bench_compile(
    cfg: TrainConfig, batch: int, steps: int, warmup: int, device: torch.device
) -> dict[str, float]:
    """Our step eager vs under torch.compile (cfg.compile_backend): img/s of each, the speed-up and
    the compile time (first compiled step minus a steady one)."""
    import dataclasses

    x, y = _inputs(cfg, batch, device)
    eager = _our_step(dataclasses.replace(cfg, compile=False), x, y, device)
    compiled = _our_step(dataclasses.replace(cfg, compile=True), x, y, device)
    _sync(device)
    t0 = time.perf_counter()
    compiled()  # traces and compiles forward and backward
    _sync(device)
    first = time.perf_counter() - t0
    t_eager, t_comp = _interleaved([eager, compiled], steps, warmup, device)
    eager_ips, comp_ips = batch * steps / t_eager, batch * steps / t_comp
    free_device_memory(device)
    return {
        "batch": batch,
        "steps": steps,
        "backend": cfg.compile_backend,
        "eager_img_per_s": eager_ips,
        "compiled_img_per_s": comp_ips,
        "speedup": comp_ips / eager_ips,
        "compile_s": max(first - t_comp / steps, 0.0),
    }


# ---- the whole `dftrain run` -------------------------------------------------------------------


def bench_run(data_dir: Path, cfg: TrainConfig, out_dir: Path, device: torch.device) -> dict:
    """One epoch of `dftrain run` on `data_dir` (its length fixes the steps): wall time, steps/s of
    the training loop between its first and last logged steps (both host syncs), img/s and the mean
    GPU utilisation over that window ("n/a" = None where it cannot be read)."""
    import dataclasses

    from dftrain.train import run

    cfg = dataclasses.replace(
        cfg,
        optim=dataclasses.replace(cfg.optim, epochs=1),
        device=device.type,
        model=dataclasses.replace(
            cfg.model, init=cfg.model.init or "none"
        ),  # speed: any weights do
    )
    steps = batches_per_rank(read_splits(data_dir)["train"], cfg.optim.batch_size, 1)
    marks: dict[int, float] = {}
    every = cfg.log_every if steps >= 2 * cfg.log_every else 1
    cfg = dataclasses.replace(cfg, log_every=every)

    def on_step(step: int) -> None:
        if step % every == 0 or step == steps:
            marks[step] = time.perf_counter()

    t0 = time.perf_counter()
    with UtilisationSampler(device) as util:
        run(data_dir, out_dir, cfg, progress=False, on_step=on_step)
    wall = time.perf_counter() - t0
    first, last = min(marks), max(marks)
    if last == first:
        raise RuntimeError(f"bench run: {steps} step(s) are too few to time the loop")
    seconds = marks[last] - marks[first]
    steps_per_s = (last - first) / seconds
    return {
        "steps": steps,
        "batch": cfg.optim.batch_size,
        "timed_steps": last - first,
        "steps_per_s": steps_per_s,
        "img_per_s": steps_per_s * cfg.optim.batch_size,
        "gpu_util_mean": util.mean(marks[first], marks[last]) if util.available else None,
        "gpu_util_samples": len(util.samples),
        "wall_s": wall,
        "compile": cfg.compile,
    }
