"""AdamW with layer-wise lr decay (BEiT/MAE/FSFM recipe) and a per-iteration warm-up + cosine
schedule; or SBI's recipe: SGD with momentum, SAM's two-pass step and a linear decay per epoch."""

from __future__ import annotations

import math

import torch
from torch import nn

from dftrain.config import OptimConfig

EMBED_PARAMS = ("cls_token", "pos_embed", "reg_token", "dist_token")


def layer_id(name: str, num_layers: int) -> int:
    """0 = embeddings, i + 1 = blocks.i, num_layers = everything above the blocks (fc_norm, head)."""
    if name in EMBED_PARAMS or name.startswith("patch_embed."):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return num_layers


def param_groups(model: nn.Module, weight_decay: float, layer_decay: float) -> list[dict]:
    """One group per (layer, decay or not); each carries `lr_scale` = layer_decay ** (top - layer).

    No weight decay on 1-D parameters (biases, norms) and on the model's `no_weight_decay()` set.
    A model without ViT `blocks` (a CNN) is one layer: layer decay does not apply to it.
    """
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.Sequential | nn.ModuleList):
        return _group(model, weight_decay)
    num_layers = len(blocks) + 1
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lid = layer_id(name, num_layers)
        decay = not (p.ndim == 1 or name in skip)
        g = groups.setdefault(
            (lid, decay),
            {
                "params": [],
                "names": [],
                "weight_decay": weight_decay if decay else 0.0,
                "lr_scale": layer_decay ** (num_layers - lid),
                "layer": lid,
            },
        )
        g["params"].append(p)
        g["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def _group(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups (decayed, not decayed) at lr_scale 1, for a model without layers to decay over."""
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    out = []
    for decay in (False, True):
        ps = [(n, p) for n, p in named if (not (p.ndim == 1 or n in skip)) == decay]
        if ps:
            out.append({"params": [p for _, p in ps], "names": [n for n, _ in ps],
                        "weight_decay": weight_decay if decay else 0.0, "lr_scale": 1.0, "layer": 0})  # fmt: skip
    return out


def build_optimizer(
    model: nn.Module, cfg: OptimConfig, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW (or SGD with momentum) over the layer-decay groups; the fused kernel on CUDA. (Its lr
    is set every step by `set_lr` from the schedule; the value here is only a placeholder.)"""
    groups = param_groups(model, cfg.weight_decay, cfg.layer_decay)
    fused = device.type == "cuda"
    lr = cfg.lr or cfg.blr
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, fused=fused or None)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg.betas), fused=fused or None)


def lr_at(
    step: float, total_steps: int, warmup_steps: float, base_lr: float, min_lr: float
) -> float:
    """Linear warm-up from 0 to base_lr over warmup_steps, then half-cosine down to min_lr."""
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    span = max(total_steps - warmup_steps, 1e-12)
    progress = min((step - warmup_steps) / span, 1.0)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def linear_decay_at(
    step: float,
    steps_per_epoch: int,
    epochs: int,
    warmup_steps: float,
    base_lr: float,
    min_lr: float,
    decay_start: float,
) -> float:
    """SBI's LinearDecayLR, per epoch: base_lr until epoch s = ⌊epochs x decay_start⌋, then at
    epoch e > s, base_lr - (base_lr - min_lr) (e - s) / (epochs - s) (SBI: min_lr 0, so its last
    epoch runs at base_lr / 25 for 100 epochs); after a linear warm-up when warmup_steps > 0."""
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    epoch = int(step // max(steps_per_epoch, 1))
    start = int(epochs * decay_start)
    if epoch <= start:
        return base_lr
    return base_lr - (base_lr - min_lr) * min(epoch - start, epochs - start) / (epochs - start)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)


@torch.no_grad()
def sam_ascend(params: list[torch.Tensor], rho: float) -> list[torch.Tensor | None]:
    """SAM's first step (Foret et al. 2021): move each parameter to w + rho g / ||g|| (the norm
    over all gradients together) and return the moves, for `sam_descend` to undo."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return [None] * len(params)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = rho / (norm + 1e-12)
    moves: list[torch.Tensor | None] = []
    for p in params:
        if p.grad is None:
            moves.append(None)
            continue
        e = p.grad * scale.to(p.grad.dtype)
        p.add_(e)
        moves.append(e)
    return moves


@torch.no_grad()
def sam_descend(params: list[torch.Tensor], moves: list[torch.Tensor | None]) -> None:
    """Back from w + e(w) to w, keeping the gradient taken there (SAM's second step, before the
    base optimizer's update)."""
    for p, e in zip(params, moves, strict=True):
        if e is not None:
            p.sub_(e)
