"""Triplet losses against pytorch-metric-learning and a brute-force loop over all triplets."""

from __future__ import annotations

import itertools

import pytest
import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners, reducers
from pytorch_metric_learning.distances import LpDistance

from dftrain.config import LossConfig
from dftrain.losses import objective, triplet_loss

MARGIN = 0.5


def _batch(n_classes: int, seed: int, n: int = 24, dim: int = 8, singleton: bool = True):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, n_classes, (n,), generator=g)
    if singleton:  # the last class has exactly one member: an anchor with no positive
        labels[labels == n_classes - 1] = 0
        labels[-1] = n_classes - 1
    emb = torch.randn(n, dim, generator=g) * 0.7
    return emb, labels


def brute_force(
    emb: torch.Tensor, labels: torch.Tensor, strategy: str, margin: float, reduction: str = "valid"
) -> float:
    n = len(labels)
    d = [[float(torch.linalg.vector_norm(emb[i] - emb[j])) for j in range(n)] for i in range(n)]
    lab = labels.tolist()
    if strategy == "batch_all":
        vals = [
            max(d[a][p] - d[a][q] + margin, 0.0)
            for a, p, q in itertools.product(range(n), repeat=3)
            if a != p and lab[a] == lab[p] and lab[a] != lab[q]
        ]
        active = [v for v in vals if v > 0]
        return sum(active) / len(active) if active else 0.0
    per_anchor = []
    for a in range(n):
        ps = [d[a][p] for p in range(n) if p != a and lab[p] == lab[a]]
        ns = [d[a][q] for q in range(n) if lab[q] != lab[a]]
        if not ps or not ns:
            continue
        dp = max(ps) if strategy == "hard" else min(ps)
        per_anchor.append(max(dp - min(ns) + margin, 0.0))
    if reduction == "batch":  # the paper's (1/B) sum over the anchors
        return sum(per_anchor) / n
    return sum(per_anchor) / len(per_anchor) if per_anchor else 0.0


def pml(emb: torch.Tensor, labels: torch.Tensor, strategy: str, margin: float) -> float:
    dist = LpDistance(normalize_embeddings=False, p=2, power=1)
    if strategy == "batch_all":
        loss = pml_losses.TripletMarginLoss(margin=margin, distance=dist)  # AvgNonZeroReducer
        return float(loss(emb, labels))
    if strategy == "hard":
        miner = miners.BatchHardMiner(distance=dist)
    else:
        miner = miners.BatchEasyHardMiner(
            pos_strategy=miners.BatchEasyHardMiner.EASY,
            neg_strategy=miners.BatchEasyHardMiner.HARD,
            distance=dist,
        )
    loss = pml_losses.TripletMarginLoss(
        margin=margin, distance=dist, reducer=reducers.MeanReducer()
    )
    return float(loss(emb, labels, miner(emb, labels)))


CASES = [(c, s) for c in (2, 3, 6) for s in range(3)]  # seed 0: the last class is a singleton


@pytest.mark.parametrize("strategy", ["batch_all", "hard", "easy_positive"])
@pytest.mark.parametrize(("n_classes", "seed"), CASES)
def test_matches_pml_and_brute_force(strategy, n_classes, seed):
    emb, labels = _batch(n_classes, seed, singleton=seed == 0)
    ours = float(triplet_loss(emb, labels, strategy, MARGIN, "valid"))
    assert ours == pytest.approx(brute_force(emb, labels, strategy, MARGIN), rel=1e-5, abs=1e-6)
    assert ours == pytest.approx(pml(emb, labels, strategy, MARGIN), rel=1e-5, abs=1e-6)
    paper = float(triplet_loss(emb, labels, strategy, MARGIN))  # the default: (1/B) sum
    assert paper == pytest.approx(
        brute_force(emb, labels, strategy, MARGIN, "batch"), rel=1e-5, abs=1e-6
    )


@pytest.mark.parametrize("strategy", ["hard", "easy_positive"])
def test_reductions_differ_by_the_anchors_without_a_triplet(strategy):
    """Default `batch` divides by B (the paper's (1/B) sum); `valid` by the anchors that have a
    positive and a negative. With a singleton class one anchor of 24 has no positive."""
    emb, labels = _batch(3, 0, singleton=True)
    n, valid = len(labels), n_valid_anchors(labels)
    assert valid == n - 1
    batch = float(triplet_loss(emb, labels, strategy, MARGIN, "batch"))
    mean_valid = float(triplet_loss(emb, labels, strategy, MARGIN, "valid"))
    assert batch > 0 and batch == pytest.approx(mean_valid * valid / n, rel=1e-6)
    assert float(triplet_loss(emb, labels, strategy, MARGIN)) == batch  # the default
    # batch_all has one reduction (mean over active triplets), whatever `reduction` says
    assert float(triplet_loss(emb, labels, "batch_all", MARGIN, "batch")) == float(
        triplet_loss(emb, labels, "batch_all", MARGIN, "valid")
    )
    with pytest.raises(ValueError, match="unknown reduction"):
        triplet_loss(emb, labels, strategy, MARGIN, "sum")


def n_valid_anchors(labels: torch.Tensor) -> int:
    lab = labels.tolist()
    return sum(
        1
        for a in range(len(lab))
        if any(lab[p] == lab[a] for p in range(len(lab)) if p != a)
        and any(q != lab[a] for q in lab)
    )


@pytest.mark.parametrize("strategy", ["batch_all", "hard", "easy_positive"])
def test_gradients_match_brute_force_autograd(strategy):
    emb, labels = _batch(3, 7, n=12)
    a = emb.clone().requires_grad_(True)
    triplet_loss(a, labels, strategy, MARGIN, "valid").backward()
    b = emb.clone().requires_grad_(True)
    dist = LpDistance(normalize_embeddings=False)
    if strategy == "batch_all":
        pml_losses.TripletMarginLoss(margin=MARGIN, distance=dist)(b, labels).backward()
    else:
        pos = (
            miners.BatchEasyHardMiner.HARD if strategy == "hard" else miners.BatchEasyHardMiner.EASY
        )
        miner = miners.BatchEasyHardMiner(
            pos_strategy=pos, neg_strategy=miners.BatchEasyHardMiner.HARD, distance=dist
        )
        loss = pml_losses.TripletMarginLoss(
            margin=MARGIN, distance=dist, reducer=reducers.MeanReducer()
        )
        loss(b, labels, miner(b, labels)).backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("strategy", ["batch_all", "hard", "easy_positive"])
def test_no_triplet_gives_differentiable_zero(strategy):
    emb = torch.randn(4, 5, requires_grad=True)
    for labels in (
        torch.zeros(4, dtype=torch.long),
        torch.arange(4),
    ):  # no negatives / no positives
        loss = triplet_loss(emb, labels, strategy, MARGIN)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.isfinite(emb.grad).all()


def test_duplicate_embeddings_keep_gradients_finite():
    emb = torch.randn(3, 4)
    x = torch.cat([emb, emb]).requires_grad_(True)  # zero positive distances
    labels = torch.tensor([0, 1, 1, 0, 1, 1])
    for strategy in ("batch_all", "hard", "easy_positive"):
        x.grad = None
        triplet_loss(x, labels, strategy, MARGIN).backward()
        assert torch.isfinite(x.grad).all()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown triplet strategy"):
        triplet_loss(torch.randn(4, 3), torch.zeros(4, dtype=torch.long), "semi", 0.1)
    with pytest.raises(ValueError, match="labels"):
        triplet_loss(torch.randn(4, 3), torch.zeros(5, dtype=torch.long), "hard", 0.1)


def test_objective_adds_weighted_triplet_and_takes_soft_targets():
    emb, labels = _batch(2, 1, n=8)
    logits = torch.randn(8, 2)
    cfg = LossConfig(triplet="hard", margin=MARGIN, weight=0.5)
    loss, parts = objective(logits, emb, labels, labels, cfg)
    ce = torch.nn.functional.cross_entropy(logits, labels)
    assert float(parts["ce"]) == pytest.approx(float(ce))
    assert float(loss) == pytest.approx(
        float(ce) + 0.5 * float(triplet_loss(emb, labels, "hard", MARGIN))
    )
    valid = LossConfig(triplet="hard", margin=MARGIN, weight=0.5, reduction="valid")
    assert float(objective(logits, emb, labels, labels, valid)[0]) == pytest.approx(
        float(ce) + 0.5 * float(triplet_loss(emb, labels, "hard", MARGIN, "valid"))
    )
    soft = torch.nn.functional.one_hot(labels, 2).float()
    loss_soft, parts_soft = objective(logits, emb, soft, None, LossConfig(triplet="none"))
    assert float(loss_soft) == pytest.approx(float(ce), rel=1e-6)
    assert "triplet" not in parts_soft
