"""`loss.weight: auto`: the triplet term's weight w found once, when a run starts, so that CE and
w x triplet start in the same range (the paper tuned w; this is the documented reading), and the
same w reused when the run resumes. config.json and the metrics record how w was found."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from dftrain import distributed
from dftrain.checkpoint import read_meta
from dftrain.config import TrainConfig, with_weight
from dftrain.labels import triplet_targets
from dftrain.losses import triplet_loss
from dftrain.model import WithEmbedding
from dftrain.step import autocast

__all__ = ["auto_weight", "resumed_weight", "weight_note"]


def auto_weight(
    vit: torch.nn.Module,
    make_batches: Callable[[], Iterable],
    cfg: TrainConfig,
    d: distributed.Dist,
    steps: int,
) -> dict[str, Any]:
    """`loss.weight: auto`: w = mean CE / mean triplet term over the first `loss.weight_batches`
    batches of epoch 0 (all ranks together), found once before the first step, with the model as
    training starts (train mode, no update; normalisation statistics restored), so that w x
    triplet ~ CE when training starts. Returns what config.json and the metrics record. Without a
    triplet loss w is 0 (nothing to weigh); a triplet term of 0 on those batches leaves w at 1.
    MAKE_BATCHES: epoch 0's training batches (made only when needed); STEPS: the epoch's steps."""
    lc = cfg.loss
    if lc.triplet == "none":
        return {"weight": 0.0, "auto": True, "batches": 0}
    k = min(lc.weight_batches, steps)
    batches = make_batches()
    view = WithEmbedding(vit, lc.embedding).train()
    saved = {name: b.clone() for name, b in vit.named_buffers()}  # BatchNorm statistics
    ce_sum, trip_sum, n = 0.0, 0.0, 0
    with torch.no_grad():
        for i, (x, y) in enumerate(batches):
            if i == k:
                break
            x, y = x.to(d.device, non_blocking=True), y.to(d.device, non_blocking=True)
            with autocast(d.device, cfg.amp):
                logits, emb = view(x)
            ce_sum += float(F.cross_entropy(logits.float(), y, label_smoothing=lc.label_smoothing))
            ty = triplet_targets(y, lc.triplet_labels)
            trip_sum += float(triplet_loss(emb.float(), ty, lc.triplet, lc.margin, lc.reduction))
            n += 1
        for name, b in vit.named_buffers():
            b.copy_(saved[name])
    parts = distributed.gather((ce_sum, trip_sum, n), d)
    n = sum(p[2] for p in parts)
    ce, trip = sum(p[0] for p in parts) / n, sum(p[1] for p in parts) / n
    w = min(ce / trip, 1000.0) if trip > 0 else 1.0
    return {"weight": w, "auto": True, "ce": ce, "triplet": trip, "batches": n}


def resumed_weight(cfg: TrainConfig, last_dir: Path) -> tuple[TrainConfig, dict[str, Any]]:
    """`loss.weight: auto` on resume: the w the run found when it started (its config.json),
    never found again. A checkpoint without that record keeps `auto`, which resume refuses."""
    record = read_meta(last_dir).get("loss_weight")
    record = record if isinstance(record, dict) else {}
    w = record.get("weight")
    if cfg.loss.weight == "auto" and record.get("auto") and isinstance(w, (int, float)):
        return with_weight(cfg, w), record
    return cfg, record


def weight_note(cfg: TrainConfig, record: dict[str, Any]) -> str:
    """How the triplet term is weighed, for the line that opens a run's log."""
    if cfg.loss.triplet == "none":
        return ""
    how = (
        f"auto: CE {record['ce']:.4g} / triplet {record['triplet']:.4g} over the first "
        f"{record['batches']} batches"
        if record.get("auto") and "ce" in record
        else "auto, as the run found it" if record.get("auto") else "as given"
    )  # fmt: skip
    return f"; loss = CE + {cfg.loss.weight:.4g} x triplet ({how}); checkpoint on val {cfg.loss.val_loss}"
