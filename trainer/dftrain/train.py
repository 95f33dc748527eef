"""The training loop of `dftrain run`: per-epoch streaming train + validation, best/last checkpoints,
exact resume at epoch boundaries, DDP under torchrun."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch.nn.parallel import DistributedDataParallel

from dfprep.core.errors import EXIT_DIVERGED, ConfigError, DfprepError
from dfprep.core.outputs import output_dir
from dftrain import distributed
from dftrain.checkpoint import (
    WEIGHTS,
    checkpoint_meta,
    load_state,
    load_weights,
    read_meta,
    save_checkpoint,
)
from dftrain.config import (
    RUN_ONLY,
    TrainConfig,
    effective_lr,
    flat,
    resolve_init,
    to_dict,
)
from dftrain.data import (
    EvalStream,
    SampleDecoder,
    TrainStream,
    batches_per_rank,
    check_workers,
    control_labels,
    data_identity,
    default_workers,
    loader,
    read_splits,
)
from dftrain.labels import fake_probability, names, triplet_targets
from dftrain.labels import resolve as resolve_labels
from dftrain.losses import objective
from dftrain.model import WithEmbedding, create_model, initialise
from dftrain.monitor import Monitor
from dftrain.optim import build_optimizer, lr_at, set_lr
from dftrain.transforms import eval_transform, mixup, train_transform


class DivergedError(DfprepError):
    """The loss became NaN/inf (usually a learning rate too high for the batch): exit status 3."""

    exit_code = EXIT_DIVERGED


@dataclass
class RunResult:
    out_dir: Path
    epochs_done: int
    best_epoch: int
    best_val_loss: float
    history: list[dict[str, float]]


def autocast(device: torch.device, amp: str):
    """bf16 autocast on CUDA ('auto' or 'bf16'); fp32 on CPU unless 'bf16' is asked for."""
    on = amp == "bf16" or (amp == "auto" and device.type == "cuda")
    if not on:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def maybe_compile(module: torch.nn.Module, cfg: TrainConfig) -> torch.nn.Module:
    """`torch.compile(module)` when train.compile is set (the weights stay shared with `module`)."""
    if not cfg.compile:
        return module
    return torch.compile(module, backend=cfg.compile_backend)


def seed_epoch(seed: int, epoch: int, rank: int) -> int:
    """Seed every RNG the main process uses (drop path, main-process augmentation) per epoch."""
    s = (seed * 1_000_003 + epoch * 1_009 + rank) & 0x7FFFFFFF
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    return s


def evaluate(
    vit: torch.nn.Module, stream: EvalStream, workers: int, cfg: TrainConfig, d: distributed.Dist
) -> dict[str, float]:
    """Frame-level CE loss, AUC of P(fake) and accuracy at 0.5 over the whole split (all ranks)."""
    vit.eval()
    logits_l, y_l = [], []
    n_workers = min(workers, len(stream.shards_of_rank()))
    with torch.no_grad(), autocast(d.device, cfg.amp):
        for x, y in loader(
            stream, n_workers, cfg.data.prefetch, seed=0, pin_memory=d.device.type == "cuda"
        ):
            logits_l.append(vit(x.to(d.device, non_blocking=True)).float().cpu())
            y_l.append(y)
    parts = distributed.gather(
        (torch.cat(logits_l) if logits_l else None, torch.cat(y_l) if y_l else None), d
    )
    logits = torch.cat([p[0] for p in parts if p[0] is not None])
    y = torch.cat([p[1] for p in parts if p[1] is not None])
    p_fake = fake_probability(logits)
    fake = (y > 0).long()
    auc = (
        float(roc_auc_score(fake.numpy(), p_fake.numpy())) if len(fake.unique()) == 2 else math.nan
    )
    return {
        "loss": float(F.cross_entropy(logits, y)),
        "auc": auc,
        "acc": float(((p_fake >= 0.5).long() == fake).float().mean()),
        "n": float(len(y)),
    }


def _check_resumable(
    cfg: TrainConfig, last: Path, world: int, data: dict[str, str]
) -> dict[str, Any]:
    """The saved loop state, if this run can continue it exactly (same parameters, data and process count)."""
    meta = read_meta(last)
    was = meta.get("data")
    if isinstance(was, dict) and was.get("identity") != data["identity"]:
        raise ConfigError(
            f"{last}: was trained on {was.get('dir')} (identity {was.get('identity')}); {data['dir']} is other data "
            f"(identity {data['identity']}, from sizes.json and selection.parquet): resume with the same balanced directory"
        )
    saved = flat(meta["train_config"])
    now = flat(to_dict(cfg))
    differ = sorted(
        k for k in set(saved) | set(now) if k not in RUN_ONLY and saved.get(k) != now.get(k)
    )
    if differ:
        k = differ[0]
        raise ConfigError(
            f"{last}: cannot resume with different parameters ({len(differ)}, e.g. train.{k}: {saved.get(k)!r} -> {now.get(k)!r})"
        )
    state = load_state(last)
    if int(state.get("world", 1)) != world:
        raise ConfigError(
            f"{last}: the run used {state.get('world')} process(es); resume it with the same number, not {world}"
        )
    return state


def run(
    data_dir: str | Path,
    out_dir: str | Path,
    cfg: TrainConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    stop_after: int = 0,
    on_step: Callable[[int], None] | None = None,
) -> RunResult:
    """Train from balanced shards into OUT (checkpoints/{best,last}, dvclive/); see docs/train.md.

    `stop_after` > 0 returns after that many epochs in this call (time-boxed jobs; `--resume` goes on).
    `on_step(global_step)` is called after every training step (`dftrain bench` times the loop with it).
    """
    cfg = resolve_init(cfg)  # the paper's model without --init: refused here, before any work
    output_dir(out_dir)
    cfg = dataclasses.replace(cfg, labels=resolve_labels(cfg.labels))
    d = distributed.setup(cfg.device)
    try:
        return _run(Path(data_dir), Path(out_dir), cfg, d, resume, progress, stop_after, on_step)
    finally:
        distributed.teardown(d)


def _run(
    data_dir: Path,
    out: Path,
    cfg: TrainConfig,
    d: distributed.Dist,
    resume: bool,
    progress: bool,
    stop_after: int,
    on_step: Callable[[int], None] | None = None,
) -> RunResult:
    splits = read_splits(data_dir)
    data = data_identity(data_dir)
    classes = names(cfg.labels)
    last_dir, best_dir = out / "checkpoints" / "last", out / "checkpoints" / "best"
    if not resume and last_dir.exists():
        raise ConfigError(
            f"{out}: already holds a run; pass --resume to continue it or choose another output directory"
        )
    if resume and not (last_dir / WEIGHTS).is_file():
        raise ConfigError(f"{last_dir}: no checkpoint to resume from")

    o = cfg.optim
    state: dict[str, Any] = _check_resumable(cfg, last_dir, d.world, data) if resume else {}
    workers = cfg.data.workers
    if (
        workers < 0
    ):  # auto; a resumed run keeps the count it started with (it shapes the sample order)
        workers = int(state.get("workers", default_workers(d.world, len(splits["train"].shards))))
    check_workers(splits["train"], workers, d.world)
    steps = batches_per_rank(splits["train"], o.batch_size, d.world)
    total_steps, warmup_steps = steps * o.epochs, o.warmup_epochs * steps
    peak_lr, global_batch, lr_how = effective_lr(o, d.world)
    schedule = {"effective_lr": peak_lr, "global_batch": global_batch, "steps_per_epoch": steps,
                "samples_per_epoch": steps * global_batch,
                "left_out_per_epoch": splits["train"].total - steps * global_batch}  # fmt: skip

    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    vit = create_model(cfg.model, len(classes))
    if resume:
        load_weights(vit, last_dir / WEIGHTS, read_meta(last_dir)["weights_sha256"])
        how = f"resumed from {last_dir} with {state['epoch']} of {o.epochs} epochs done"
    else:
        how = initialise(vit, cfg.model.init, cfg.model.head_init_std)
    vit.to(d.device)
    module: torch.nn.Module = WithEmbedding(vit, cfg.loss.embedding)
    if d.world > 1:
        module = DistributedDataParallel(
            module, device_ids=[d.local_rank] if d.device.type == "cuda" else None
        )
    module = maybe_compile(module, cfg)  # after DDP: its bucketing then guides graph breaks
    opt = build_optimizer(vit, o, d.device)
    start_epoch, best_loss, best_epoch = 0, math.inf, -1
    history: list[dict[str, float]] = []
    if resume:
        opt.load_state_dict(state["optimizer"])
        start_epoch, best_loss, best_epoch = (
            int(state["epoch"]),
            float(state["best_val_loss"]),
            int(state["best_epoch"]),
        )
        history = list(state.get("history", []))

    control = control_labels(data_dir, cfg.labels) if cfg.labels.shuffle else {}
    train_decode = SampleDecoder(train_transform(cfg.aug, cfg.model.img_size), cfg.labels, control)
    val_decode = SampleDecoder(eval_transform(cfg.aug, cfg.model.img_size), cfg.labels, control)
    mix = mixup(cfg.loss, len(classes))
    pin = d.device.type == "cuda"

    mon = Monitor(
        out, total_steps=total_steps, done_steps=start_epoch * steps,
        params={**flat(to_dict(cfg)), **{f"run.{k}": v for k, v in schedule.items()}},
        summary={"lr/effective": peak_lr, "lr/global_batch": global_batch},
        resume=resume, progress=progress, enabled=d.main,
    )  # fmt: skip
    mon.log(
        f"{how}; {cfg.model.name} -> {len(classes)} classes ({', '.join(classes)}); triplet {cfg.loss.triplet}; "
        f"{d.world} process(es) on {d.device}, {workers} loader worker(s); {steps} steps/epoch of {o.batch_size}"
        f" per process ({schedule['samples_per_epoch']} of {splits['train'].total} samples, each once; "
        f"{schedule['left_out_per_epoch']} left out this epoch); peak lr {peak_lr:.3g} ({lr_how})"
        + (f"; torch.compile ({cfg.compile_backend})" if cfg.compile else "")
    )
    try:
        end_epoch = min(o.epochs, start_epoch + stop_after) if stop_after > 0 else o.epochs
        for epoch in range(start_epoch, end_epoch):
            epoch_seed = seed_epoch(cfg.seed, epoch, d.rank)
            stream = TrainStream(
                splits["train"], train_decode, o.batch_size, steps, epoch=epoch, seed=cfg.seed, rank=d.rank,
                world=d.world, shuffle_buffer=cfg.data.shuffle_buffer, shuffle_initial=cfg.data.shuffle_initial,
            )  # fmt: skip
            batches = loader(stream, workers, cfg.data.prefetch, seed=epoch_seed, pin_memory=pin)
            module.train()
            sums: dict[str, torch.Tensor] = {}  # on the device: summed without a host sync per step
            t0, seen = time.perf_counter(), 0
            for i, (x, y) in enumerate(batches):
                gstep = epoch * steps + i
                lr = lr_at(gstep, total_steps, warmup_steps, peak_lr, o.min_lr)
                set_lr(opt, lr)
                x, y = x.to(d.device, non_blocking=True), y.to(d.device, non_blocking=True)
                ty = triplet_targets(y, cfg.loss.triplet_labels)
                targets = y
                if mix is not None:
                    x, targets = mix(x, y)
                with autocast(d.device, cfg.amp):
                    logits, emb = module(x)
                loss, parts = objective(logits, emb, targets, ty, cfg.loss)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if o.clip_grad > 0:
                    torch.nn.utils.clip_grad_norm_(vit.parameters(), o.clip_grad)
                opt.step()
                seen += len(y)
                for k, v in {"loss": loss.detach(), **parts}.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                record = (i + 1) % cfg.log_every == 0 or i + 1 == steps
                values = None
                if record:  # the only host sync of a step
                    values = {
                        "loss": float(loss.detach()),
                        **{k: float(v) for k, v in parts.items()},
                    }
                    if not math.isfinite(values["loss"]):
                        raise DivergedError(
                            f"loss is {values['loss']} at step {gstep + 1} (epoch {epoch}); lower train.optim.blr or optim.lr"
                        )
                ips = seen * d.world / max(time.perf_counter() - t0, 1e-9)
                mon.step(gstep + 1, epoch + (i + 1) / steps, values, lr, ips, record)
                if on_step is not None:
                    on_step(gstep + 1)

            val = evaluate(
                vit,
                EvalStream(
                    splits["val"],
                    val_decode,
                    cfg.data.val_batch_size or o.batch_size,
                    d.rank,
                    d.world,
                ),
                workers,
                cfg,
                d,
            )
            improved = val["loss"] < best_loss
            if improved:
                best_loss, best_epoch = val["loss"], epoch
            train_means = {f"train_{k}": float(v) / steps for k, v in sums.items()}
            history.append(
                {"epoch": epoch, **train_means, **{f"val_{k}": v for k, v in val.items()}}
            )
            if d.main:
                meta = checkpoint_meta(cfg, epoch, {f"val_{k}": v for k, v in val.items()}, data)
                meta["schedule"] = schedule
                if improved:
                    save_checkpoint(best_dir, vit, meta)
                save_checkpoint(
                    last_dir, vit, meta,
                    {"optimizer": opt.state_dict(), "epoch": epoch + 1, "best_val_loss": best_loss,
                     "best_epoch": best_epoch, "history": history, "workers": workers, "world": d.world},
                )  # fmt: skip
            mon.epoch_end(
                (epoch + 1) * steps, epoch, val, {"epoch": best_epoch, "val_loss": best_loss}
            )
            distributed.barrier(d)
    finally:
        mon.close()
    return RunResult(out, len(history), best_epoch, best_loss, history)
