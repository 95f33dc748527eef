"""The paper's Table 3 as Markdown: one row per run, columns = datasets grouped by scenario.

In-distribution datasets, then out-of-distribution ones (DF40: FS, RE and the average over its
methods), then in-the-wild ones; a scenario with two or more datasets gets an average column.
Numbers are percentages; a cell that cannot be computed (one class only, dataset not evaluated)
shows as a dash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dftrain.aggregate import SCENARIOS

SHORT_NAMES = {
    "ffpp": "FF++", "celebdf": "CDF", "dfdc": "DFDC", "fakeavceleb": "FAVC", "forgerynet": "FNet",
    "df40": "DF40", "wilddeepfake": "WDF", "dfeval2024": "DFE-2024", "itw": "ITW",
}  # fmt: skip
SCENARIO_SHORT = {"in_distribution": "ID", "out_of_distribution": "OOD", "in_the_wild": "wild"}
METRIC_TITLES = {"auc": "Video-level ROC-AUC (%)", "bacc": "Video-level balanced accuracy (%)"}


@dataclass(frozen=True)
class Run:
    name: str
    metrics: Mapping[str, Any]  # metrics.json
    info: Mapping[str, Any]  # info.json: roles (dataset -> role), dataset_order, threshold


@dataclass(frozen=True)
class Column:
    title: str
    path: tuple[str, ...]  # keys into metrics.json, ending before the metric name


def columns(runs: list[Run]) -> list[Column]:
    """The union of the runs' columns in Table 3's order."""
    roles: dict[str, str] = {}
    order: list[str] = []
    ood_split: set[str] = set()
    for r in runs:
        for ds in r.info.get("dataset_order", sorted(r.metrics["datasets"])):
            if ds not in roles:
                roles[ds] = r.info.get("roles", {}).get(ds, "")
                order.append(ds)
            cats = r.metrics["datasets"].get(ds, {}).get("categories", {})
            if roles[ds] == "ood" and any(c in cats for c in ("FS", "RE")):
                ood_split.add(ds)
    out: list[Column] = []
    for role in (*SCENARIOS, ""):
        members = [ds for ds in order if (roles[ds] if roles[ds] in SCENARIOS else "") == role]
        for ds in members:
            short = SHORT_NAMES.get(ds, ds)
            if ds in ood_split:
                out += [
                    Column(f"{short} {c}", ("datasets", ds, "categories", c)) for c in ("FS", "RE")
                ]
                out.append(Column(f"{short} avg", ("datasets", ds, "summary")))
            else:
                out.append(Column(short, ("datasets", ds, "summary")))
        if role and len(members) >= 2:
            name = SCENARIOS[role]
            out.append(Column(f"{SCENARIO_SHORT[name]} avg", ("scenarios", name)))
    return out


def cell(metrics: Mapping[str, Any], col: Column, metric: str) -> str:
    node: Any = metrics
    for k in col.path:
        node = node.get(k) if isinstance(node, Mapping) else None
    value = node.get(metric) if isinstance(node, Mapping) else None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.1f}"


def markdown_table(runs: list[Run], metric: str = "auc") -> str:
    cols = columns(runs)
    lines = [
        "| run | " + " | ".join(c.title for c in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for r in runs:
        lines.append(f"| {r.name} | " + " | ".join(cell(r.metrics, c, metric) for c in cols) + " |")
    return "\n".join(lines)


def _pct(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def no_face_notes(runs: list[Run]) -> list[str]:
    """One line per run and dataset whose test list has videos without a face crop: how many, what
    the table did with them (eval.no_face), and the AUC / bACC under both policies."""
    notes = []
    for r in runs:
        both = r.metrics.get("no_face") or {}
        policy = both.get("policy", r.info.get("no_face", "score"))
        score = r.info.get("no_face_score", 0.5)
        for ds, d in r.metrics["datasets"].items():
            v = d.get("videos", {})
            if not v.get("default_score"):
                continue
            line = (
                f"{r.name}: {SHORT_NAMES.get(ds, ds)}: {v['default_score']} of {v['test']} test "
                f"videos had no face crop ({v['no_face']} no face, {v['failed']} unreadable)"
            )
            if not both:  # an older metrics.json: one policy, scored
                notes.append(f"{line} and were scored {score}")
                continue
            dropped = both["drop"]["datasets"].get(ds, {})
            scored = both["score"]["datasets"].get(ds, {})
            done = "dropped" if policy == "drop" else f"scored {score}"
            notes.append(
                f"{line}: {done} in the table (eval.no_face: {policy}). AUC / bACC: "
                f"{_pct(dropped.get('auc'))} / {_pct(dropped.get('bacc'))} without them "
                f"({dropped.get('videos', 0)} videos), {_pct(scored.get('auc'))} / "
                f"{_pct(scored.get('bacc'))} with them scored {score} ({scored.get('videos', 0)} videos)"
            )
    return notes


def render(runs: list[Run], metrics: tuple[str, ...] = ("auc", "bacc")) -> str:
    """Markdown document: one table per metric, then the no-face notes."""
    thresholds = sorted({r.info.get("threshold", 0.5) for r in runs})
    parts = []
    for m in metrics:
        title = METRIC_TITLES[m]
        if m == "bacc":
            title += f", threshold {', '.join(f'{t:g}' for t in thresholds)}"
        parts += [f"### {title}", "", markdown_table(runs, m), ""]
    notes = no_face_notes(runs)
    if notes:
        parts += ["Test videos without a face crop:", ""]
        parts += [f"- {n}" for n in notes] + [""]
    return "\n".join(parts)
