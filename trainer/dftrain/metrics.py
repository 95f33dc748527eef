"""Detection metrics as pure functions of labels (0 real, 1 fake) and scores (P(fake)).

The paper's protocol: a video's score is the mean P(fake) of its face crops; video-level ROC-AUC and
balanced accuracy at a threshold (a score >= threshold is called fake, as in training's validation);
frame-level AUC and EER on the crops themselves. AUC and bACC are scikit-learn's. A metric that
needs both classes is NaN when one is missing, never an exception or a silent 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def _arrays(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray):
    y = np.asarray(labels, dtype=np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return y, s


def both_classes(labels) -> bool:
    y = np.asarray(labels)
    return bool((y == 0).any() and (y == 1).any())


def roc_auc(labels, scores) -> float:
    """ROC-AUC (ties count one half); NaN unless both classes are present."""
    y, s = _arrays(labels, scores)
    return float(roc_auc_score(y, s)) if both_classes(y) else math.nan


def balanced_accuracy(labels, scores, threshold: float = 0.5) -> float:
    """Mean of the real and fake recalls with `score >= threshold` called fake.

    With one class present it is that class's recall (scikit-learn's definition); NaN when empty.
    """
    y, s = _arrays(labels, scores)
    if y.size == 0:
        return math.nan
    pred = (s >= threshold).astype(np.int64)
    recalls = [float((pred[y == c] == c).mean()) for c in (0, 1) if (y == c).any()]
    return float(np.mean(recalls))


def eer(labels, scores) -> float:
    """Equal error rate: where the false-positive and false-negative rates of the (linearly
    interpolated) ROC curve cross. NaN unless both classes are present."""
    y, s = _arrays(labels, scores)
    if not both_classes(y):
        return math.nan
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    gap = (1.0 - tpr) - fpr  # fnr - fpr: starts at 1, ends at -1, never increases
    i = int(np.argmax(gap <= 0))  # first point at or past the crossing (i >= 1)
    g0, g1 = gap[i - 1], gap[i]
    t = g0 / (g0 - g1) if g0 != g1 else 0.0
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def group_mean(groups, values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unique groups sorted, mean value per group, count per group)."""
    g = np.asarray(groups)
    v = np.asarray(values, dtype=np.float64)
    if g.shape != v.shape:
        raise ValueError(f"{len(g)} groups but {len(v)} values")
    uniq, inverse, counts = np.unique(g, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse.ravel(), weights=v, minlength=len(uniq))
    return uniq, sums / np.maximum(counts, 1), counts


def group_max_mean(groups, frames, values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unique groups sorted, per group the mean over its frames of each frame's max value, count
    of values per group): SBI's video score, the max over a frame's faces, then the mean over frames."""
    g = np.asarray(groups)
    f = np.asarray(frames)
    v = np.asarray(values, dtype=np.float64)
    if not (g.shape == f.shape == v.shape):
        raise ValueError(f"{len(g)} groups, {len(f)} frames, {len(v)} values")
    uniq, gi, counts = np.unique(g, return_inverse=True, return_counts=True)
    gi = gi.ravel()
    pairs, pi = np.unique(np.stack([gi, np.unique(f, return_inverse=True)[1].ravel()], 1), axis=0,
                          return_inverse=True)  # fmt: skip
    peak = np.full(len(pairs), -np.inf)
    np.maximum.at(peak, pi.ravel(), v)
    sums = np.bincount(pairs[:, 0], weights=peak, minlength=len(uniq))
    n_frames = np.bincount(pairs[:, 0], minlength=len(uniq))
    return uniq, sums / np.maximum(n_frames, 1), counts


def binary_summary(labels, scores, threshold: float = 0.5) -> dict[str, float]:
    """AUC, bACC and the class counts of one set (videos or frames)."""
    y, s = _arrays(labels, scores)
    return {
        "auc": roc_auc(y, s),
        "bacc": balanced_accuracy(y, s, threshold),
        "n": int(y.size),
        "real": int((y == 0).sum()),
        "fake": int((y == 1).sum()),
    }


def frame_summary(labels, scores) -> dict[str, float]:
    """Frame-level AUC and EER (the crops themselves, no aggregation)."""
    y, s = _arrays(labels, scores)
    return {"auc": roc_auc(y, s), "eer": eer(y, s), "n": int(y.size)}


def average(values) -> float:
    """Plain mean; NaN when empty or when any member is NaN (an average with a hole is not reported
    as if it were complete)."""
    v = np.asarray(list(values), dtype=np.float64)
    return float(v.mean()) if v.size and np.isfinite(v).all() else math.nan
