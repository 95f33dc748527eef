"""PNG figures: ROC curves and score histograms (`dftrain eval`), score timelines (`dftrain predict`).

matplotlib's Agg backend, no display needed; files carry no timestamp, so reruns write the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    _pyplot().close(fig)
    return path


def roc_figure(
    sets: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str
) -> Path:
    """One ROC curve per named (labels, scores) set; sets with a single class are listed, not drawn."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--")
    for name, (y, s) in sets.items():
        if len(set(np.asarray(y).tolist())) < 2:
            ax.plot([], [], " ", label=f"{name} (one class only)")
            continue
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, lw=1.5, label=f"{name} (AUC {100 * roc_auc_score(y, s):.1f})")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate",
           title=title)  # fmt: skip
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _save(fig, Path(path))


def histogram_figure(
    sets: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    threshold: float,
    title: str,
) -> Path:
    """Real and fake score histograms per named set, one panel each, with the threshold marked."""
    plt = _pyplot()
    n = max(1, len(sets))
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    bins = np.linspace(0, 1, 21)
    for ax, (name, (y, s)) in zip(axes.ravel(), sets.items(), strict=False):
        y, s = np.asarray(y), np.asarray(s)
        for label, colour, text in ((0, "tab:blue", "real"), (1, "tab:red", "fake")):
            ax.hist(
                s[y == label],
                bins=bins,
                alpha=0.6,
                color=colour,
                label=f"{text} ({(y == label).sum()})",
            )
        ax.axvline(threshold, color="k", lw=1, ls="--")
        ax.set(title=name, xlabel="P(fake)", ylabel="count", xlim=(0, 1))
        ax.legend(fontsize=8)
    for ax in axes.ravel()[len(sets) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, Path(path))


def timeline_figure(
    series: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str | Path, threshold: float
) -> Path:
    """P(fake) of each face crop against its time in the video, one line per video."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for name, t, p in series:
        ax.plot(t, p, marker="o", ms=3, lw=1.2, label=name)
    ax.axhline(threshold, color="k", lw=1, ls="--")
    ax.set(ylim=(-0.02, 1.02), xlabel="time (s)", ylabel="P(fake)", title="per-second scores")
    if series:
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return _save(fig, Path(path))
