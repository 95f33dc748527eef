"""Throughput figures for `dftrain bench` (benchmarks print numbers; no test asserts on time).

- loader: samples/s of the training input pipeline alone (read, shuffle, decode, augment, batch),
  for a list of worker counts (1 gives the per-worker rate).
- model: images/s of our training step (WithEmbedding + CE + triplet + layer-decay AdamW, bf16 on CUDA)
  against a bare timm forward/backward/AdamW loop, both on random tensors of the same shape.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

import timm
import torch
import torch.nn.functional as F

from dftrain.config import TrainConfig
from dftrain.data import SampleDecoder, TrainStream, check_workers, loader, read_splits
from dftrain.labels import names
from dftrain.losses import objective
from dftrain.model import WithEmbedding, create_model
from dftrain.optim import build_optimizer
from dftrain.synth import write_synthetic_shards
from dftrain.train import autocast
from dftrain.transforms import train_transform


@contextlib.contextmanager
def data_or_synthetic(data_dir: str | Path | None, shards: int = 8, per_shard: int = 128):
    """The given shard directory, or synthetic 224px shards in a temporary one."""
    if data_dir is not None:
        yield Path(data_dir)
        return
    with tempfile.TemporaryDirectory(prefix="dftrain-bench-") as tmp:
        write_synthetic_shards(
            tmp, train_shards=shards, val_shards=1, per_shard=per_shard, size=224
        )
        yield Path(tmp)


def bench_loader(data_dir: Path, cfg: TrainConfig, workers: int, batches: int) -> dict[str, float]:
    """Samples/s of the training stream with `workers` DataLoader workers (after the first batch)."""
    split = read_splits(data_dir)["train"]
    check_workers(split, workers, 1)
    decode = SampleDecoder(train_transform(cfg.aug, cfg.model.img_size), cfg.labels)
    bs = cfg.optim.batch_size
    stream = TrainStream(
        split, decode, bs, batches + max(workers, 1), epoch=0, seed=cfg.seed,
        shuffle_buffer=cfg.data.shuffle_buffer, shuffle_initial=cfg.data.shuffle_initial,
    )  # fmt: skip
    it = iter(loader(stream, workers, cfg.data.prefetch, seed=cfg.seed))
    next(it)  # worker start-up and the shuffle buffer's initial fill are not throughput
    t0, n = time.perf_counter(), 0
    for x, _ in it:
        n += len(x)
        if n >= batches * bs:
            break
    dt = time.perf_counter() - t0
    return {
        "workers": workers,
        "samples": n,
        "seconds": dt,
        "samples_per_s": n / dt,
        "per_worker": n / dt / max(workers, 1),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


def _our_step(cfg: TrainConfig, x, y, device: torch.device):
    vit = create_model(cfg.model, len(names(cfg.labels))).to(device)
    ours = WithEmbedding(vit, cfg.loss.embedding).train()
    opt = build_optimizer(vit, cfg.optim, device)

    def step():
        with autocast(device, cfg.amp):
            logits, emb = ours(x)
        loss, _ = objective(logits, emb, y, y, cfg.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

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


def bench_model(
    cfg: TrainConfig, batch: int, steps: int, warmup: int, device: torch.device
) -> dict[str, float]:
    """Training images/s: ours vs a bare timm loop (same architecture, shape, precision, optimiser kind)."""
    size = cfg.model.img_size
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.arange(batch, device=device) % len(names(cfg.labels))
    t_ours, t_bare = _interleaved(
        [_our_step(cfg, x, y, device), _bare_step(cfg, x, y, device)], steps, warmup, device
    )
    ours_ips, bare_ips = batch * steps / t_ours, batch * steps / t_bare
    return {
        "batch": batch,
        "steps": steps,
        "ours_img_per_s": ours_ips,
        "bare_img_per_s": bare_ips,
        "ratio": ours_ips / bare_ips,
    }
