"""The paper's Table 3 (its own numbers, as published) and our runs beside it, cell by cell.

Rows are matched by name: a run evaluated with `dftrain eval --name "FSFM + BA"` is the paper's
"FSFM + BA" row (`--name SBI`: the SBI row, a `dftrain run --sbi` model). Every cell reads
`ours (paper)`. Datasets nobody evaluated, rows whose weights are stand-ins for the named
pre-training, and what our SBI row is are said under the table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dftrain.results_table import Run

# (title, path into metrics.json up to the metric, dataset it needs or "")
COLUMNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("FF++", ("datasets", "ffpp", "summary"), "ffpp"),
    ("CDF", ("datasets", "celebdf", "summary"), "celebdf"),
    ("DFDC", ("datasets", "dfdc", "summary"), "dfdc"),
    ("FakeAV", ("datasets", "fakeavceleb", "summary"), "fakeavceleb"),
    ("FNet", ("datasets", "forgerynet", "summary"), "forgerynet"),
    ("ID avg", ("scenarios", "in_distribution"), ""),
    ("DF40 FS", ("datasets", "df40", "categories", "FS"), "df40"),
    ("DF40 RE", ("datasets", "df40", "categories", "RE"), "df40"),
    ("DF40 avg", ("datasets", "df40", "summary"), "df40"),
    ("WDF", ("datasets", "wilddeepfake", "summary"), "wilddeepfake"),
    ("ITW", ("datasets", "itw", "summary"), "itw"),
    ("DF-Eval", ("datasets", "dfeval2024", "summary"), "dfeval2024"),
    ("wild avg", ("scenarios", "in_the_wild"), ""),
)
DATASETS = tuple(dict.fromkeys(c[2] for c in COLUMNS if c[2]))
SCENARIO_COLUMNS = {"in-distribution": 5, "out-of-distribution (DF40)": 8, "in the wild": 12}
# said under the table when the row is there
ROW_NOTES = {
    "SBI": "this project's SBI (`dftrain run --sbi`: pseudo-fakes blended in a face hull fitted to "
    "RetinaFace's 5 points, on this project's crops; video score = mean over frames of the max "
    "over each frame's faces): docs/train.md and docs/deviations.md list what differs from SBI's own"
}

# Table 3 of Mylonas & Papadopoulos (2025), video level, %: one value per COLUMNS entry.
AUC: dict[str, tuple[float, ...]] = {
    "SBI": (88.2, 91.0, 73.4, 99.3, 64.2, 83.2, 82.8, 56.3, 67.6, 74.8, 68.0, 54.4, 65.7),
    "ImageNet pretrained": (99.3, 100, 97.3, 100, 85.9, 96.5, 88.1, 70.4, 78.0, 91.3, 76.6, 54.3, 74.0),
    "FSFM": (96.0, 99.8, 97.8, 99.5, 88.8, 96.4, 95.0, 78.6, 85.6, 93.1, 82.8, 57.4, 77.7),
    "FSFM + BA": (96.9, 99.9, 97.0, 99.6, 89.5, 96.6, 95.3, 79.4, 86.2, 92.7, 83.7, 57.4, 77.9),
    "FSFM + HP-HN": (95.7, 99.8, 97.5, 99.4, 89.8, 96.4, 94.3, 77.2, 84.5, 92.0, 83.1, 57.5, 77.5),
    "FSFM + EP-HN": (96.8, 99.8, 96.9, 99.5, 88.9, 96.4, 95.3, 78.8, 85.9, 92.8, 83.1, 56.6, 77.5),
    "FSFM + Att_categ": (98.4, 100, 97.1, 99.9, 88.7, 96.8, 95.6, 76.4, 84.6, 91.5, 80.2, 55.9, 75.9),
    "FSFM + Att_categ + BA": (97.9, 100, 97.2, 99.9, 89.5, 96.9, 95.8, 77.8, 85.5, 91.4, 81.1, 57.5, 76.7),
    "FSFM + Att_dataset": (97.9, 100, 97.3, 100, 85.8, 96.0, 95.6, 79.4, 86.3, 91.9, 79.6, 55.8, 75.8),
    "FSFM + Att_dataset + BA": (97.5, 100, 97.6, 99.9, 87.3, 96.5, 94.5, 77.4, 84.7, 92.3, 79.4, 56.8, 76.2),
}  # fmt: skip
BACC: dict[str, tuple[float, ...]] = {
    "SBI": (70.0, 81.3, 58.8, 87.4, 57.2, 70.9, 75.3, 53.7, 63.0, 67.2, 54.9, 52.3, 58.1),
    "ImageNet pretrained": (97.1, 97.2, 91.5, 99.2, 77.8, 92.5, 70.6, 54.7, 61.5, 83.7, 63.9, 55.5, 67.7),
    "FSFM": (90.3, 97.6, 92.6, 92.4, 81.3, 90.8, 83.7, 64.3, 72.6, 85.3, 72.4, 55.6, 71.2),
    "FSFM + BA": (92.3, 98.2, 91.0, 89.4, 81.4, 90.5, 85.3, 66.1, 74.3, 83.7, 74.8, 57.3, 71.9),
    "FSFM + HP-HN": (92.0, 97.3, 91.4, 87.2, 81.3, 89.8, 84.1, 64.4, 72.9, 82.6, 72.5, 57.4, 70.8),
    "FSFM + EP-HN": (92.4, 96.7, 91.4, 90.8, 81.1, 90.5, 84.6, 64.6, 73.2, 84.4, 72.5, 57.3, 71.4),
    "FSFM + Att_categ": (95.5, 99.2, 91.2, 95.4, 80.9, 92.5, 84.3, 62.1, 71.6, 83.0, 70.3, 55.3, 69.6),
    "FSFM + Att_categ + BA": (94.7, 99.2, 91.1, 92.5, 81.6, 91.8, 85.5, 63.5, 73.0, 83.3, 71.6, 56.3, 70.4),
    "FSFM + Att_dataset": (93.4, 99.6, 92.4, 98.5, 77.7, 92.3, 76.6, 56.4, 65.1, 83.9, 68.1, 55.1, 69.0),
    "FSFM + Att_dataset + BA": (93.5, 99.6, 92.3, 95.5, 78.7, 91.9, 77.4, 58.3, 66.5, 84.5, 68.1, 56.6, 69.7),
}  # fmt: skip
PAPER = {"auc": AUC, "bacc": BACC}
ROWS = tuple(AUC)
TITLES = {
    "auc": "Video-level ROC-AUC (%)",
    "bacc": "Video-level balanced accuracy (%), threshold 0.5",
}


def value(metrics: Mapping[str, Any], path: Sequence[str], metric: str) -> float | None:
    node: Any = metrics
    for k in path:
        node = node.get(k) if isinstance(node, Mapping) else None
    v = node.get(metric) if isinstance(node, Mapping) else None
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return 100.0 * float(v)


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def ordered_rows(runs: Sequence[Run]) -> list[tuple[str, Run | None]]:
    """The paper's rows in its order (with our run where there is one), then runs it does not have."""
    by_name = {r.name: r for r in runs}
    out: list[tuple[str, Run | None]] = [(name, by_name.get(name)) for name in ROWS]
    out += [(r.name, r) for r in runs if r.name not in AUC]
    return out


def table(runs: Sequence[Run], metric: str) -> str:
    paper = PAPER[metric]
    lines = [
        "| model | " + " | ".join(c[0] for c in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for name, run in ordered_rows(runs):
        ref = paper.get(name)
        cells = []
        for i, (_, path, _) in enumerate(COLUMNS):
            ours = _fmt(value(run.metrics, path, metric)) if run is not None else "not run"
            cells.append(ours if ref is None else f"{ours} ({ref[i]:g})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _init_note(run: Run) -> str | None:
    init = str(run.info.get("init") or "")
    kind = init.split(":", 1)[0]
    want = (
        "fsfm" if run.name.startswith("FSFM")
        else "timm" if run.name.startswith("ImageNet") or run.name == "SBI" else ""
    )  # fmt: skip
    if not want or kind == want:
        return None
    named = {"fsfm": "FSFM's checkpoint-400.pth", "timm": "ImageNet ViT-B/16 weights"}[want]
    if run.name == "SBI":
        named = "ImageNet EfficientNet-B4 weights"
    what = "random initialisation" if kind in ("", "none") else f"`{init}`"
    return f"{run.name}: {what} stands in for {named} (model {run.info.get('model', '?')}): not the paper's weights"


def notes(runs: Sequence[Run]) -> list[str]:
    out = [
        f"{name}: {ROW_NOTES[name]}"
        for name, run in ordered_rows(runs)
        if run and name in ROW_NOTES
    ]
    seen = {ds for r in runs for ds in r.metrics.get("datasets", {})}
    missing = [ds for ds in DATASETS if ds not in seen]
    if missing:
        out.append(
            "not evaluated (no data given): " + ", ".join(missing) + "; their cells are dashes and "
            "the scenario averages are over the datasets present"
        )
    for name, run in ordered_rows(runs):
        if run is None:
            out.append(f"{name}: not run (no configuration of this name)")
    out += [n for r in runs if (n := _init_note(r))]
    return out


def render_paper(runs: Sequence[Run], metrics: Sequence[str] = ("auc", "bacc")) -> str:
    parts = ["Each cell: ours (the paper's Table 3).", ""]
    for m in metrics:
        parts += [f"### {TITLES[m]}", "", table(runs, m), ""]
    parts += ["Notes:", ""] + [f"- {n}" for n in notes(runs)] + [""]
    return "\n".join(parts)


def scenario_figure(runs: Sequence[Run], path: str | Path, metric: str = "auc") -> Path:
    """Per scenario, one bar pair per configuration: ours (solid) and the paper's (outlined)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = ordered_rows(runs)
    fig, axes = plt.subplots(
        1,
        len(SCENARIO_COLUMNS),
        figsize=(4.2 * len(SCENARIO_COLUMNS), 0.45 * len(rows) + 1.6),
        sharey=True,
    )
    ys = list(range(len(rows)))
    for ax, (title, col) in zip(axes, SCENARIO_COLUMNS.items(), strict=True):
        ours = [
            value(r.metrics, COLUMNS[col][1], metric) if r is not None else None for _, r in rows
        ]
        ref = [PAPER[metric].get(n, [None] * len(COLUMNS))[col] for n, _ in rows]
        ax.barh(
            [y - 0.2 for y in ys],
            [v or 0 for v in ours],
            height=0.4,
            color="tab:blue",
            label="ours",
        )
        ax.barh(
            [y + 0.2 for y in ys],
            [v or 0 for v in ref],
            height=0.4,
            fill=False,
            edgecolor="tab:gray",
            label="paper",
        )
        for y, v in zip(ys, ours, strict=True):
            ax.text((v or 0) + 0.5, y - 0.2, _fmt(v), va="center", fontsize=7)
        ax.axvline(50, color="k", lw=0.5, ls=":")
        ax.set_xlim(0, 105)
        ax.set_title(f"{title}: {COLUMNS[col][0]}", fontsize=9)
        ax.set_xlabel(TITLES[metric], fontsize=8)
    axes[0].set_yticks(ys, [n for n, _ in rows], fontsize=8)
    axes[0].invert_yaxis()
    axes[-1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
