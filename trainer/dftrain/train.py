"""The training loop of `dftrain run`, split the way timm's train.py is: `setup` (data plan, model,
optimiser, resume; `loss.weight: auto` found by `dftrain.loss_weight`), `train_one_epoch`
(streaming, one update per batch, `dftrain.step`), `validate` (the objective the run trains, on
fixed val batches), `save_checkpoints` (best/last), and `_run`, the loop over epochs. Exact resume
at epoch boundaries, DDP under torchrun.

With `sbi.enabled` (SBI, `dftrain.sbi`), the training and validation splits are the real crops,
each read once an epoch and decoded into itself and its pseudo-fake: a batch of `batch_size` is
half reals, half their fakes."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch.nn.parallel import DistributedDataParallel

from dfprep.core.errors import EXIT_DIVERGED, ConfigError, DfprepError
from dfprep.core.lock import output_lock
from dfprep.core.outputs import output_dir
from dftrain import distributed
from dftrain.checkpoint import (
    WEIGHTS,
    check_epochs,
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
    with_weight,
)
from dftrain.data import (
    EvalStream,
    SampleDecoder,
    Split,
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
from dftrain.loss_weight import auto_weight, resumed_weight, weight_note
from dftrain.losses import triplet_loss
from dftrain.model import WithEmbedding, create_model, initialise
from dftrain.monitor import Monitor
from dftrain.optim import (
    build_optimizer,
    linear_decay_at,
    lr_at,
    set_lr,
)
from dftrain.sbi.data import VAL_KEY, SBIDecoder, crop_margin, real_splits, swapped_crops
from dftrain.step import autocast, maybe_compile, step_of
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


def seed_epoch(seed: int, epoch: int, rank: int) -> int:
    """Seed every RNG the main process uses (drop path, main-process augmentation) per epoch."""
    s = (seed * 1_000_003 + epoch * 1_009 + rank) & 0x7FFFFFFF
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    return s


def validate(
    vit: torch.nn.Module, stream: EvalStream, workers: int, cfg: TrainConfig, d: distributed.Dist
) -> dict[str, float]:
    """Over the whole val split (all ranks): `loss`, the checkpoint criterion (`loss.val_loss`):
    the objective the run trains, CE + w x triplet (the paper's "validation loss"), or CE alone;
    its parts `ce` (plain cross-entropy: comparable across runs, whatever their w or margin) and
    `triplet` (each val batch's term, weighted by its size; 0 without a triplet loss); the AUC of
    P(fake) and the accuracy at 0.5.

    The val batches are the same every epoch (the split's shards in order, read by the same
    readers: `EvalStream`), so the triplet term, which depends on each batch's label mix, is
    comparable from epoch to epoch. `cfg.loss.weight` must be resolved (a number)."""
    lc = cfg.loss
    view = WithEmbedding(vit, lc.embedding).eval()
    with_triplet = lc.triplet != "none"
    logits_l, y_l = [], []
    trip_sum, trip_n = 0.0, 0
    n_workers = min(workers, len(stream.shards_of_rank()))
    with torch.no_grad():
        for x, y in loader(
            stream, n_workers, cfg.data.prefetch, seed=0, pin_memory=d.device.type == "cuda"
        ):
            with autocast(d.device, cfg.amp):
                logits, emb = view(x.to(d.device, non_blocking=True))
            logits_l.append(logits.float().cpu())
            y_l.append(y)
            if with_triplet:
                ty = triplet_targets(y.to(d.device), lc.triplet_labels)
                t = triplet_loss(emb.float(), ty, lc.triplet, lc.margin, lc.reduction)
                trip_sum += float(t) * len(y)
                trip_n += len(y)
    parts = distributed.gather(
        (
            torch.cat(logits_l) if logits_l else None,
            torch.cat(y_l) if y_l else None,
            trip_sum,
            trip_n,
        ),
        d,
    )
    logits = torch.cat([p[0] for p in parts if p[0] is not None])
    y = torch.cat([p[1] for p in parts if p[1] is not None])
    n_trip = sum(p[3] for p in parts)
    triplet = sum(p[2] for p in parts) / n_trip if n_trip else 0.0
    ce = float(F.cross_entropy(logits, y))
    trained_ce = float(F.cross_entropy(logits, y, label_smoothing=lc.label_smoothing))
    p_fake = fake_probability(logits)
    fake = (y > 0).long()
    auc = (
        float(roc_auc_score(fake.numpy(), p_fake.numpy())) if len(fake.unique()) == 2 else math.nan
    )
    return {
        "loss": trained_ce + float(lc.weight) * triplet if lc.val_loss == "objective" else ce,
        "ce": ce,
        "triplet": triplet,
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
    # a parameter added since the run began ran at its default (new ones default to the old behaviour)
    saved = {**flat(to_dict(TrainConfig())), **flat(meta["train_config"])}
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
    check_epochs(state, meta, last, cfg.optim.epochs)
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
    progress: bool | str = True,
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
        # one run per folder; rank 0 holds it for all the processes of a run (torchrun)
        with output_lock(out_dir, "dftrain run") if d.main else contextlib.nullcontext():
            return _run(
                Path(data_dir), Path(out_dir), cfg, d, resume, progress, stop_after, on_step
            )
    finally:
        distributed.teardown(d)


@dataclass
class Training:
    """What `setup` makes once per call and every epoch uses."""

    cfg: TrainConfig
    d: distributed.Dist
    splits: dict[str, Split]
    data: dict[str, str]  # the balanced directory's identity (checkpoints record it)
    classes: list[str]
    workers: int  # loader workers per process
    steps: int  # optimiser steps per epoch and process
    peak_lr: float
    lr_how: str  # how the peak lr was found (as given, or scaled from blr), for the log
    schedule: dict[str, Any]  # recorded in the run's params and in every checkpoint
    vit: torch.nn.Module  # the classifier (checkpoints, validation)
    module: torch.nn.Module  # what trains: WithEmbedding(vit), under DDP / torch.compile
    opt: torch.optim.Optimizer
    train_decode: SampleDecoder
    val_decode: SampleDecoder
    mix: Callable | None  # mixup/cutmix, or None
    how: str  # how the weights were initialised (or resumed), for the log
    # the triplet weight: w and how it was found (`auto_weight`); config.json and metrics record it
    loss_weight: dict[str, Any] = field(default_factory=dict)
    data_note: str = ""  # what the training data is when it is not the split as it is (SBI)

    @property
    def total_steps(self) -> int:
        return self.steps * self.cfg.optim.epochs

    @property
    def reads(self) -> int:
        """Samples read per batch: the batch, or half of it when each sample gives two images."""
        return self.cfg.optim.batch_size // self.train_decode.per_sample

    def lr(self, gstep: int) -> float:
        o = self.cfg.optim
        warmup = o.warmup_epochs * self.steps
        if o.schedule == "linear_decay":
            return linear_decay_at(
                gstep, self.steps, o.epochs, warmup, self.peak_lr, o.min_lr, o.decay_start
            )
        return lr_at(gstep, self.total_steps, warmup, self.peak_lr, o.min_lr)


@dataclass
class LoopState:
    """Where the loop stands: what checkpoints/last carries besides the weights and optimiser."""

    epoch: int = 0  # epochs done
    best_val_loss: float = math.inf
    best_epoch: int = -1
    history: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def saved(cls, state: dict[str, Any]) -> LoopState:
        return cls(int(state["epoch"]), float(state["best_val_loss"]), int(state["best_epoch"]),
                   list(state.get("history", [])))  # fmt: skip

    def end_epoch(self, epoch: int, train: dict[str, float], val: dict[str, float]) -> bool:
        """Record the epoch; whether its val loss is the best so far."""
        improved = val["loss"] < self.best_val_loss
        if improved:
            self.best_val_loss, self.best_epoch = val["loss"], epoch
        self.history.append({"epoch": epoch, **train, **{f"val_{k}": v for k, v in val.items()}})
        self.epoch = epoch + 1
        return improved


def _last_checkpoint(out: Path, resume: bool) -> Path:
    """OUT/checkpoints/last: absent for a new run, present to resume one."""
    last_dir = out / "checkpoints" / "last"
    if not resume and last_dir.exists():
        raise ConfigError(
            f"{out}: already holds a run; pass --resume to continue it or choose another output directory"
        )
    if resume and not (last_dir / WEIGHTS).is_file():
        raise ConfigError(f"{last_dir}: no checkpoint to resume from")
    return last_dir


def setup(
    data_dir: Path, cfg: TrainConfig, d: distributed.Dist, last_dir: Path | None
) -> tuple[Training, LoopState]:
    """The data plan, the model and its optimiser, fresh or resumed from `last_dir`; the run's
    `cfg` has its triplet weight resolved (`loss.weight: auto`: found now, or the resumed run's)."""
    splits = read_splits(data_dir)
    data = data_identity(data_dir)
    classes = names(cfg.labels)
    o = cfg.optim
    sbi_rows: list[dict] = []
    if cfg.sbi.enabled:  # the real crops alone (of sbi.datasets)
        splits, sbi_rows = real_splits(data_dir, splits, cfg.sbi.datasets)
    per_sample = 2 if cfg.sbi.enabled else 1
    weight: dict[str, Any] = {}
    if last_dir:
        cfg, weight = resumed_weight(cfg, last_dir)
    state: dict[str, Any] = _check_resumable(cfg, last_dir, d.world, data) if last_dir else {}
    workers = cfg.data.workers
    # auto; a resumed run keeps the count it started with (it shapes the sample order)
    if workers < 0:
        workers = int(state.get("workers", default_workers(d.world, len(splits["train"].shards))))
    check_workers(splits["train"], workers, d.world)
    steps = batches_per_rank(splits["train"], o.batch_size // per_sample, d.world)
    peak_lr, global_batch, lr_how = effective_lr(o, d.world)
    schedule = {"effective_lr": peak_lr, "global_batch": global_batch, "steps_per_epoch": steps,
                "samples_per_epoch": steps * global_batch,
                "left_out_per_epoch": splits["train"].total - steps * global_batch // per_sample}  # fmt: skip

    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    vit = create_model(cfg.model, len(classes))
    if last_dir:
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
    if last_dir:
        opt.load_state_dict(state["optimizer"])
    note = ""
    if cfg.sbi.enabled:
        margin, margin_how = crop_margin(data_dir, cfg.sbi.margin)
        tail = eval_transform(
            cfg.aug, cfg.model.img_size
        )  # SBI's own transforms replace train.aug's
        swapped = swapped_crops(sbi_rows) if cfg.labels.shuffle else {}
        kw: dict[str, Any] = dict(seed=cfg.seed, swapped=swapped, shuffle=cfg.labels.shuffle)
        train_decode: Any = SBIDecoder(cfg.sbi, margin, tail, **kw)
        val_decode: Any = SBIDecoder(cfg.sbi, margin, tail, epoch=VAL_KEY, augment=False, **kw)
        videos = len({r["video_id"] for r in sbi_rows if r["split"] == "train"})
        note = (f"SBI: {splits['train'].total} real crops of {videos} videos"
                f" ({', '.join(cfg.sbi.datasets) or 'every dataset'}), each with its pseudo-fake;"
                f" val {splits['val'].total} reals + their fixed pseudo-fakes; margin {margin:g} ({margin_how})"
                + ("; control: the labels of half of each video's pairs swapped" if cfg.labels.shuffle else ""))  # fmt: skip
    else:
        control = control_labels(data_dir, cfg.labels) if cfg.labels.shuffle else {}
        train_decode = SampleDecoder(
            train_transform(cfg.aug, cfg.model.img_size), cfg.labels, control
        )
        val_decode = SampleDecoder(eval_transform(cfg.aug, cfg.model.img_size), cfg.labels, control)
    run = Training(
        cfg, d, splits, data, classes, workers, steps, peak_lr, lr_how, schedule, vit, module, opt,
        train_decode, val_decode, mixup(cfg.loss, len(classes)), how, data_note=note,
    )  # fmt: skip
    if cfg.loss.weight == "auto":  # a fresh run (a resumed one reuses its w)
        weight = auto_weight(run.vit, lambda: epoch_batches(run, 0), run.cfg, d, run.steps)
        run.cfg = with_weight(cfg, weight["weight"])
    run.loss_weight = weight or {"weight": float(cfg.loss.weight), "auto": False}
    return run, LoopState.saved(state) if last_dir else LoopState()


def train_stream(run: Training, epoch: int) -> TrainStream:
    """This rank's training stream of one epoch (a function of seed, epoch, ranks and workers)."""
    cfg, d = run.cfg, run.d
    return TrainStream(
        run.splits["train"], run.train_decode.for_epoch(epoch), run.reads, run.steps, epoch=epoch,
        seed=cfg.seed, rank=d.rank, world=d.world, shuffle_buffer=cfg.data.shuffle_buffer,
        shuffle_initial=cfg.data.shuffle_initial,
    )  # fmt: skip


def epoch_batches(run: Training, epoch: int):
    """This rank's training batches of one epoch, every RNG of the main process seeded for it."""
    cfg, d = run.cfg, run.d
    return loader(train_stream(run, epoch), run.workers, cfg.data.prefetch,
                  seed=seed_epoch(cfg.seed, epoch, d.rank), pin_memory=d.device.type == "cuda")  # fmt: skip


def train_one_epoch(
    epoch: int,
    run: Training,
    mon: Monitor,
    on_step: Callable[[int], None] | None = None,
    step: Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]] | None = None,
) -> dict[str, float]:
    """One pass over the training split (each sample once over all ranks and workers); returns the
    means of the loss and its parts (`train_loss`, ...). `step`: the update (default `step_of`)."""
    cfg, d, steps = run.cfg, run.d, run.steps
    step = step or step_of(cfg)
    batches = epoch_batches(run, epoch)
    run.module.train()
    sums: dict[str, torch.Tensor] = {}  # on the device: summed without a host sync per step
    t0, seen = time.perf_counter(), 0
    for i, (x, y) in enumerate(batches):
        gstep = epoch * steps + i
        lr = run.lr(gstep)
        set_lr(run.opt, lr)
        x, y = x.to(d.device, non_blocking=True), y.to(d.device, non_blocking=True)
        ty = triplet_targets(y, cfg.loss.triplet_labels)
        x, targets = run.mix(x, y) if run.mix is not None else (x, y)
        loss, parts = step(run.module, run.opt, x, targets, ty, cfg, run.vit.parameters())
        seen += len(y)
        for k, v in {"loss": loss.detach(), **parts}.items():
            sums[k] = sums[k] + v if k in sums else v.clone()
        record = (i + 1) % cfg.log_every == 0 or i + 1 == steps
        values = None
        if record:  # the only host sync of a step
            values = {"loss": float(loss.detach()), **{k: float(v) for k, v in parts.items()}}
            if not math.isfinite(values["loss"]):
                raise DivergedError(
                    f"loss is {values['loss']} at step {gstep + 1} (epoch {epoch}); lower train.optim.blr or optim.lr"
                )
        ips = seen * d.world / max(time.perf_counter() - t0, 1e-9)
        mon.step(gstep + 1, epoch + (i + 1) / steps, values, lr, ips, record)
        if on_step is not None:
            on_step(gstep + 1)
    return {f"train_{k}": float(v) / steps for k, v in sums.items()}


def save_checkpoints(
    run: Training, state: LoopState, epoch: int, val: dict[str, float], improved: bool, out: Path
) -> None:
    """After epoch `epoch`: checkpoints/last (with the optimiser and loop state), and
    checkpoints/best when the val loss improved. Rank 0 only."""
    meta = checkpoint_meta(run.cfg, epoch, {f"val_{k}": v for k, v in val.items()}, run.data)
    meta["schedule"] = run.schedule
    meta["loss_weight"] = run.loss_weight  # train_config has w; this says how it was found
    if improved:
        save_checkpoint(out / "checkpoints" / "best", run.vit, meta)
    save_checkpoint(
        out / "checkpoints" / "last", run.vit, meta,
        {"optimizer": run.opt.state_dict(), "epoch": state.epoch,
         "best_val_loss": state.best_val_loss, "best_epoch": state.best_epoch,
         "history": state.history, "workers": run.workers, "world": run.d.world},
    )  # fmt: skip


def _monitor(
    out: Path, run: Training, state: LoopState, resume: bool, progress: bool | str
) -> Monitor:
    cfg, d, o, steps = run.cfg, run.d, run.cfg.optim, run.steps
    s = run.schedule
    mon = Monitor(
        out, total_steps=run.total_steps, done_steps=state.epoch * steps,
        params={**flat(to_dict(cfg)), **{f"run.{k}": v for k, v in s.items()}},
        summary={"lr/effective": run.peak_lr, "lr/global_batch": s["global_batch"],
                 "loss/weight": float(cfg.loss.weight)},
        resume=resume, progress=progress, enabled=d.main,
    )  # fmt: skip
    if run.data_note:
        mon.log(run.data_note)
    mon.log(
        f"{run.how}; {cfg.model.name} -> {len(run.classes)} classes ({', '.join(run.classes)}); triplet {cfg.loss.triplet}; "
        f"{d.world} process(es) on {d.device}, {run.workers} loader worker(s); {steps} steps/epoch of {o.batch_size}"
        f" per process ({s['samples_per_epoch'] // run.train_decode.per_sample} of {run.splits['train'].total} samples, each once"
        + (" with its pseudo-fake" if cfg.sbi.enabled else "")
        + f"; {s['left_out_per_epoch']} left out this epoch); peak lr {run.peak_lr:.3g} ({run.lr_how})"
        + (
            f", {o.optimizer}"
            + (f" under SAM (rho {o.sam_rho:g})" if o.sam_rho > 0 else "")
            + f", {o.schedule} schedule"
        )
        + weight_note(cfg, run.loss_weight)
        + (f"; torch.compile ({cfg.compile_backend})" if cfg.compile else "")
    )
    return mon


def _best(state: LoopState) -> dict[str, float]:
    """The best epoch's val figures for the metrics (val_ce is comparable across runs)."""
    row = next((h for h in state.history if h.get("epoch") == state.best_epoch), {})
    return {"epoch": state.best_epoch, "val_loss": state.best_val_loss,
            "val_ce": row.get("val_ce", math.nan), "val_auc": row.get("val_auc", math.nan)}  # fmt: skip


def _run(
    data_dir: Path,
    out: Path,
    cfg: TrainConfig,
    d: distributed.Dist,
    resume: bool,
    progress: bool | str,
    stop_after: int,
    on_step: Callable[[int], None] | None = None,
) -> RunResult:
    last_dir = _last_checkpoint(out, resume)
    run, state = setup(data_dir, cfg, d, last_dir if resume else None)
    cfg = run.cfg  # the triplet weight resolved
    mon = _monitor(out, run, state, resume, progress)
    if cfg.sbi.enabled and d.main and not resume:  # what the model is trained on, to look at
        from dftrain.sbi.sheet import SHEET, split_sheet

        sheet = split_sheet(run.splits["train"], out / SHEET, margin=run.train_decode.margin,
                            cfg=cfg.sbi, seed=cfg.seed)  # fmt: skip
        mon.log(f"pseudo-fakes drawn in {sheet}")
    val_batch = max(
        1, (cfg.data.val_batch_size or cfg.optim.batch_size) // run.val_decode.per_sample
    )
    epochs = cfg.optim.epochs
    end_epoch = min(epochs, state.epoch + stop_after) if stop_after > 0 else epochs
    try:
        for epoch in range(state.epoch, end_epoch):
            train = train_one_epoch(epoch, run, mon, on_step)
            val_stream = EvalStream(run.splits["val"], run.val_decode, val_batch, d.rank, d.world)
            val = validate(run.vit, val_stream, run.workers, cfg, d)
            improved = state.end_epoch(epoch, train, val)
            if d.main:
                save_checkpoints(run, state, epoch, val, improved, out)
            mon.epoch_end((epoch + 1) * run.steps, epoch, val, _best(state))
            distributed.barrier(d)
    finally:
        mon.close()
    return RunResult(out, len(state.history), state.best_epoch, state.best_val_loss, state.history)
