"""Table-1-style statistics of the pool and of the selected set: JSON (DVC metrics), Markdown, PNG.

Per split and dataset and class: videos, crops in the pool and selected, real:fake ratio and
crops per video (min / median / max); plus the extract outcome (ok / no face / failed videos and
the most common error messages). Everything is computed from the indexes, never the images.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dfprep.schema import LABEL_NAMES, SPLITS, STATUSES

CLASSES = ("real", "fake")
ALL = "all"


def _per_video(table: pa.Table) -> dict[tuple, dict]:
    """(split, dataset, class) and (split, ALL, class) -> videos, crops, crops per video."""
    if len(table) == 0:
        return {}
    pv = table.group_by(["split", "dataset", "label", "video_id"]).aggregate(
        [("video_id", "count")]
    )
    out: dict[tuple, dict] = {}
    for by in (["split", "dataset", "label"], ["split", "label"]):
        agg = pv.group_by(by).aggregate([("video_id_count", "list")])
        for row in agg.to_pylist():
            counts = np.asarray(row["video_id_count_list"])
            key = (row["split"], row.get("dataset", ALL), LABEL_NAMES[row["label"]])
            out[key] = {
                "videos": int(counts.size),
                "crops": int(counts.sum()),
                "per_video": {
                    "min": int(counts.min()),
                    "median": float(np.median(counts)),
                    "max": int(counts.max()),
                },
            }
    return out


def _methods(index: pa.Table, selection, split: str) -> dict:
    """Crops per manipulation method (what the method caps act on)."""
    out: dict[str, dict] = {}
    tables = [("pool_crops", index)]
    if selection is not None and split in selection.plans:
        tables.append(("selected_crops", selection.table))
    for name, t in tables:
        t = t.filter(pc.equal(t["split"], split))
        for row in (
            t.group_by("method")
            .aggregate([("key", "count"), ("video_id", "count_distinct")])
            .to_pylist()
        ):
            m = out.setdefault(row["method"], {"videos": row["video_id_count_distinct"]})
            m[name] = row["key_count"]
    return dict(sorted(out.items()))


def _ratio(real: int, fake: int) -> float | None:
    return round(real / fake, 4) if fake else None


def error_summary(videos: pa.Table, top: int = 20) -> dict:
    """Video outcomes per dataset and the most common messages (paths replaced by <path>)."""
    per_ds: dict[str, dict[str, int]] = {}
    for row in (
        videos.group_by(["dataset", "status"]).aggregate([("video_id", "count")]).to_pylist()
    ):
        per_ds.setdefault(row["dataset"], dict.fromkeys(STATUSES, 0))[row["status"]] = row[
            "video_id_count"
        ]
    totals = {s: sum(d.get(s, 0) for d in per_ds.values()) for s in STATUSES}
    msgs: Counter = Counter()
    with_error = videos.filter(pc.not_equal(pc.fill_null(videos["error"], ""), ""))
    for status, error in zip(
        with_error["status"].to_pylist(), with_error["error"].to_pylist(), strict=True
    ):
        msgs[(status, re.sub(r"/\S+", "<path>", error))] += 1
    return {
        "videos": totals,
        "datasets": dict(sorted(per_ds.items())),
        "errors": [{"status": s, "message": m, "videos": c} for (s, m), c in msgs.most_common(top)],
    }


def compute_stats(pool, selection, cfg, reference: dict[str, dict[str, int]] | None = None) -> dict:
    """stats.json: shaped like the paper's Table 1, per split and dataset (and `all`).

    `reference`: Table 1's training samples per dataset and class (the catalogue's `samples`),
    shown beside the selected train split in stats.md."""
    before = _per_video(pool.index.select(["split", "dataset", "label", "video_id"]))
    after = (
        _per_video(selection.table.select(["split", "dataset", "label", "video_id"]))
        if selection
        else {}
    )
    splits: dict = {}
    for split in SPLITS:
        datasets = sorted({k[1] for k in before if k[0] == split and k[1] != ALL})
        if not datasets:
            continue
        rows = {}
        for ds in [ALL, *datasets]:
            row: dict = {}
            for c in CLASSES:
                b = before.get((split, ds, c), {"videos": 0, "crops": 0, "per_video": None})
                a = after.get((split, ds, c))
                row[c] = {
                    "videos": b["videos"],
                    "pool_crops": b["crops"],
                    "pool_per_video": b["per_video"],
                }
                if selection is not None and split in selection.plans:
                    row[c].update(
                        selected_videos=a["videos"] if a else 0,
                        selected_crops=a["crops"] if a else 0,
                        per_video=a["per_video"] if a else None,
                    )
            sel = [row[c].get("selected_crops", row[c]["pool_crops"]) for c in CLASSES]
            row["ratio"] = _ratio(*sel)
            rows[ds] = row
        entry: dict = {"datasets": rows, "methods": _methods(pool.index, selection, split)}
        if selection is not None and split in selection.plans:
            entry["plan"] = asdict(selection.plans[split])
        splits[split] = entry
    out = {
        "splits": splits,
        "extract": {
            "shards": len(pool.sources),
            "incomplete_shards": len(pool.skipped),
            "incomplete_examples": [Path(p).name for p in pool.skipped[:20]],
            "params_hashes": pool.params_hashes,
            "crop": pool.crops,  # the crops' geometry, as the shards record it
            **error_summary(pool.videos),
        },
    }
    if cfg is not None:
        out["params"] = asdict(cfg)
    if reference:
        out["table1"] = {d: dict(v) for d, v in reference.items()}
    return out


def _table1_lines(stats: dict, entry: dict) -> list[str]:
    """The train split's selected crops per dataset beside Table 1's training samples."""
    ref = stats.get("table1") or {}
    if not ref or "plan" not in entry:
        return []
    rows = entry["datasets"]
    lines = [
        "",
        "Beside the paper's Table 1 (training samples; this run's scope: "
        f"{entry['plan'].get('scope', 'global')}):",
        "",
        "| dataset | real crops | Table 1 real | fake crops | Table 1 fake | real:fake | Table 1 real:fake |",
        "|---|---|---|---|---|---|---|",
    ]
    for ds, want in ref.items():
        got = rows.get(ds)
        sel = [got[c]["selected_crops"] if got else None for c in CLASSES]
        ratio = "-" if not got or got["ratio"] is None else f"{got['ratio']:.2f}"
        paper = f"{want['real'] / want['fake']:.2f}" if want.get("fake") else "-"
        lines.append(
            f"| {ds} | {_fmt(sel[0])} | {_fmt(want.get('real'))} | {_fmt(sel[1])} | "
            f"{_fmt(want.get('fake'))} | {ratio} | {paper} |"
        )
    return lines


def _fmt(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _pv(pv: dict | None) -> str:
    return "-" if not pv else f"{pv['min']} / {pv['median']:g} / {pv['max']}"


def stats_markdown(stats: dict) -> str:
    lines = ["# Training set statistics", ""]
    for split, entry in stats["splits"].items():
        balanced = "plan" in entry
        lines += [f"## {split}" + ("" if balanced else " (not balanced: evaluated whole)"), ""]
        head = [
            "dataset",
            "real videos",
            "fake videos",
            "real crops",
            "fake crops",
            "real:fake",
            "real crops/video (min/med/max)",
            "fake crops/video (min/med/max)",
        ]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for ds, row in entry["datasets"].items():
            r, f = row["real"], row["fake"]
            if balanced:
                crops = [f"{_fmt(x['pool_crops'])} → {_fmt(x['selected_crops'])}" for x in (r, f)]
                pvs = [_pv(x["per_video"]) for x in (r, f)]
            else:
                crops = [_fmt(x["pool_crops"]) for x in (r, f)]
                pvs = [_pv(x["pool_per_video"]) for x in (r, f)]
            ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
            name = f"**{ds}**" if ds == ALL else ds
            lines.append(
                f"| {name} | {_fmt(r['videos'])} | {_fmt(f['videos'])} | {crops[0]} | {crops[1]} | "
                f"{ratio} | {pvs[0]} | {pvs[1]} |"
            )
        if balanced:
            plan = entry["plan"]
            lines += [
                "",
                f"Requested total: {plan['total'] or 'as many as the ratio allows'}; "
                f"selected {plan['selected']['real'] + plan['selected']['fake']:,} crops in "
                f"{plan['shards']} shards.",
            ]
            lines += [f"- **note:** {n}" for n in plan["notes"]]
            if split == "train":
                lines += _table1_lines(stats, entry)
        methods = entry.get("methods", {})
        if methods:
            lines += ["", "| method | videos | crops |", "|---|---|---|"]
            for m, c in methods.items():
                crops = _fmt(c.get("pool_crops", 0))
                if balanced:
                    crops += f" → {_fmt(c.get('selected_crops', 0))}"
                lines.append(f"| {m} | {_fmt(c['videos'])} | {crops} |")
        lines.append("")
    ex = stats["extract"]
    lines += [
        "## Extract outcome",
        "",
        "| dataset | " + " | ".join(STATUSES) + " |",
        "|---|" + "---|" * len(STATUSES),
    ]
    for ds, counts in ex["datasets"].items():
        lines.append(f"| {ds} | " + " | ".join(_fmt(counts.get(s, 0)) for s in STATUSES) + " |")
    lines.append("| **all** | " + " | ".join(_fmt(ex["videos"].get(s, 0)) for s in STATUSES) + " |")
    if ex["incomplete_shards"]:
        lines += [
            "",
            f"- **note:** {ex['incomplete_shards']} incomplete shard(s) skipped (no stats file), "
            f"e.g. {', '.join(ex['incomplete_examples'][:5])}",
        ]
    if ex["errors"]:
        lines += ["", "| videos | status | message |", "|---|---|---|"]
        lines += [
            f"| {e['videos']} | {e['status']} | {e['message'].replace('|', '/')} |"
            for e in ex["errors"]
        ]
    return "\n".join(lines) + "\n"


def plot_stats(stats: dict, path: str | Path) -> Path:
    """Bars of real and fake crops per dataset, pool (light) and selected (solid), one panel per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = list(stats["splits"].items())
    fig, axes = plt.subplots(
        1, max(1, len(splits)), figsize=(5 * max(1, len(splits)), 4), squeeze=False
    )
    colors = {"real": "tab:blue", "fake": "tab:red"}
    for ax, (split, entry) in zip(axes[0], splits, strict=False):
        names = [d for d in entry["datasets"] if d != ALL]
        x = np.arange(len(names))
        for j, c in enumerate(CLASSES):
            pool = [entry["datasets"][d][c]["pool_crops"] for d in names]
            off = x + (j - 0.5) * 0.4
            ax.bar(off, pool, 0.4, color=colors[c], alpha=0.3, label=f"{c} pool")
            if "plan" in entry:
                sel = [entry["datasets"][d][c]["selected_crops"] for d in names]
                ax.bar(off, sel, 0.4, color=colors[c], label=f"{c} selected")
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.8)  # bars start at 1 crop, not at the smallest bar
        ratio = entry["datasets"][ALL]["ratio"]
        balanced = "balanced" if "plan" in entry else "pool only"
        ax.set_title(f"{split}, {balanced}" + (f", real:fake {ratio:.2f}" if ratio else ""))
        ax.set_ylabel("crops")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path
