"""Cross-entropy + online-mined triplet losses on a batch's embeddings, vectorised (no loop over triplets).

Valid triplets (a, p, n): y_a == y_p, a != p, y_a != y_n; distances are Euclidean.
  batch_all      every valid triplet, mean over the active ones (loss > 0); 0 when none is active
  hard           per anchor the farthest positive and the nearest negative
  easy_positive  per anchor the nearest positive and the nearest negative
For hard and easy_positive, `reduction` "batch" is the paper's (1/B) sum over the B anchors (an
anchor without a positive or a negative adds 0 and still counts); "valid" is the mean over the
anchors that have both (pytorch-metric-learning's MeanReducer over the mined triplets).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dftrain.config import LossConfig

STRATEGIES = ("batch_all", "hard", "easy_positive")
REDUCTIONS = ("batch", "valid")


def pairwise_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Exact Euclidean distances (no Gram-matrix cancellation; zero gradient at distance 0)."""
    return torch.cdist(embeddings, embeddings, compute_mode="donot_use_mm_for_euclid_dist")


def triplet_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    strategy: str,
    margin: float,
    reduction: str = "batch",
) -> torch.Tensor:
    """Scalar triplet loss of one batch; 0 (still differentiable) when the batch has no triplet."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown triplet strategy {strategy!r} (use {', '.join(STRATEGIES)})")
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r} (use {', '.join(REDUCTIONS)})")
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"need embeddings [B, D] and labels [B], got {tuple(embeddings.shape)} and {tuple(labels.shape)}"
        )
    d = pairwise_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same

    if strategy == "batch_all":
        valid = pos[:, :, None] & neg[:, None, :]
        losses = F.relu(d[:, :, None] - d[:, None, :] + margin) * valid
        return losses.sum() / (losses > 0).sum().clamp(min=1)

    # A finite stand-in larger than every real distance keeps masked rows free of inf/NaN.
    big = d.detach().max() + margin + 1.0
    d_neg = d.masked_fill(~neg, big).min(dim=1).values
    if strategy == "hard":
        d_pos = d.masked_fill(~pos, 0.0).max(dim=1).values
    else:
        d_pos = d.masked_fill(~pos, big).min(dim=1).values
    has = pos.any(dim=1) & neg.any(dim=1)
    losses = torch.where(has, F.relu(d_pos - d_neg + margin), torch.zeros_like(d_pos))
    if reduction == "batch":
        return losses.sum() / len(labels)
    return losses.sum() / has.sum().clamp(min=1)


def objective(
    logits: torch.Tensor,
    embeddings: torch.Tensor,
    targets: torch.Tensor,
    triplet_labels: torch.Tensor | None,
    cfg: LossConfig,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """CE (hard class indices, or soft targets [B, C] from mixup) + weight x triplet, in fp32.
    With a triplet loss `cfg.weight` must be a number (`loss.weight: auto` is resolved when the
    run starts)."""
    logits = logits.float()
    if targets.ndim == 2:
        ce = torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()
    else:
        ce = F.cross_entropy(logits, targets, label_smoothing=cfg.label_smoothing)
    parts = {"ce": ce.detach()}
    loss = ce
    if cfg.triplet != "none" and isinstance(cfg.weight, str):
        raise ValueError(
            f"loss.weight {cfg.weight!r} is resolved when the run starts (train.setup)"
        )
    if cfg.triplet != "none" and cfg.weight > 0:
        if triplet_labels is None:
            raise ValueError("a triplet loss needs the batch's labels")
        tl = triplet_loss(
            embeddings.float(), triplet_labels, cfg.triplet, cfg.margin, cfg.reduction
        )
        loss = loss + cfg.weight * tl
        parts["triplet"] = tl.detach()
    return loss, parts
