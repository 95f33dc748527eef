"""PNG figures: ROC curves and score histograms (`dftrain eval`), score timelines (`dftrain predict`),
training curves (`dftrain run`: an image `dvc plots show` embeds, drawn with no network).

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


# the panels of the training curves: title -> the dvclive series (`OUT/dvclive/plots/metrics/`)
CURVE_PANELS = {
    "loss": ("train/loss", "train/ce", "train/triplet", "val/loss"),
    "validation": ("val/auc", "val/acc"),
    "learning rate": ("train/lr",),
}


def _series(tsv: Path) -> tuple[list[float], list[float]]:
    import csv

    with tsv.open(newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if len(rows) < 2 or "step" not in rows[0]:
        return [], []
    i, j = rows[0].index("step"), 1 - rows[0].index("step")
    pts = [(float(r[i]), float(r[j])) for r in rows[1:] if len(r) == 2]
    return [p[0] for p in pts], [p[1] for p in pts]


def curves_figure(metrics_dir: str | Path, path: str | Path, title: str = "") -> Path:
    """The training curves (CURVE_PANELS) from dvclive's TSV files, against the step."""
    plt = _pyplot()
    metrics_dir = Path(metrics_dir)
    fig, axes = plt.subplots(1, len(CURVE_PANELS), figsize=(4.2 * len(CURVE_PANELS), 3.6))
    for ax, (panel, names) in zip(axes, CURVE_PANELS.items(), strict=True):
        for name in names:
            tsv = metrics_dir / f"{name}.tsv"
            x, y = _series(tsv) if tsv.is_file() else ([], [])
            if x:
                ax.plot(x, y, marker="o" if name.startswith("val/") else None, ms=3, lw=1.3,
                        label=name)  # fmt: skip
        ax.set(title=panel, xlabel="step")
        if panel == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        if ax.lines:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))
