"""From crop scores to the paper's numbers: video scores, then metrics per dataset, method and scenario.

- A video's score is the mean P(fake) of its crops (P(fake) is already the sum over the fake classes
  for an attribution head). A test video without crops (no face found, or unreadable) gets
  `no_face_score` and stays in every metric; how many did is reported per dataset.
- Per method (datasets with two or more fake methods): that method's fake videos against all the
  dataset's real videos; FS / RE / all are plain averages over the methods of each category.
- A dataset's summary is its pooled video AUC/bACC, except for datasets with role `ood` (DF40),
  whose summary is the average over their methods, as the paper reports them.
- A scenario (train = in-distribution, ood, wild) averages the summaries of its datasets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dftrain.metrics import average, binary_summary, frame_summary, group_mean

SCENARIOS = {"train": "in_distribution", "ood": "out_of_distribution", "wild": "in_the_wild"}
CATEGORIES = ("FS", "RE")


def video_scores(videos: pa.Table, frames: pa.Table, no_face_score: float) -> pa.Table:
    """The test list with `p_fake` (mean over its crops), `scored_crops` and `default_score`
    (True when it had no crop and got `no_face_score`)."""
    ids, means, counts = group_mean(
        frames["video_id"].to_numpy(zero_copy_only=False), frames["p_fake"].to_numpy()
    )
    mean_of = dict(zip(ids.tolist(), means.tolist(), strict=True))
    count_of = dict(zip(ids.tolist(), counts.tolist(), strict=True))
    vids = videos["video_id"].to_pylist()
    unknown = set(mean_of) - set(vids)
    if unknown:
        raise ValueError(
            f"crop scores for video(s) not in the test list, e.g. {sorted(unknown)[0]}"
        )
    p = [mean_of.get(v, no_face_score) for v in vids]
    return (
        videos.append_column("p_fake", pa.array(p, pa.float64()))
        .append_column("scored_crops", pa.array([count_of.get(v, 0) for v in vids], pa.int32()))
        .append_column("default_score", pa.array([v not in mean_of for v in vids], pa.bool_()))
    )


def _labels_scores(t: pa.Table, label: str = "label") -> tuple[np.ndarray, np.ndarray]:
    return t[label].to_numpy().astype(np.int64), t["p_fake"].to_numpy()


def method_metrics(videos: pa.Table, threshold: float) -> tuple[dict, dict[str, str]]:
    """{method: metrics} and {method: category} over the fake methods (each vs all the reals)."""
    fake = videos.filter(pc.equal(videos["label"], 1))
    real = videos.filter(pc.equal(videos["label"], 0))
    methods = sorted(set(fake["method"].to_pylist()))
    out, cats = {}, {}
    for m in methods:
        mine = fake.filter(pc.equal(fake["method"], m))
        y, s = _labels_scores(pa.concat_tables([mine, real]))
        out[m] = binary_summary(y, s, threshold)
        mc = set(mine["category"].to_pylist())
        cats[m] = mc.pop() if len(mc) == 1 else "unknown"
    return out, cats


def dataset_metrics(
    videos: pa.Table, frames: pa.Table, threshold: float, role: str | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Metrics of one dataset (its scored videos and crops) and its methods' categories."""
    y, s = _labels_scores(videos)
    status = videos["status"].to_pylist()
    fy, fs = _labels_scores(frames)
    d: dict[str, Any] = {
        "video": binary_summary(y, s, threshold),
        "frame": frame_summary(fy, fs),
        "videos": {
            "test": len(videos),
            "ok": status.count("ok"),
            "no_face": status.count("no_face"),
            "failed": status.count("failed"),
            "default_score": int(pc.sum(videos["default_score"]).as_py() or 0),
        },
    }
    cats: dict[str, str] = {}
    summary = {"auc": d["video"]["auc"], "bacc": d["video"]["bacc"]}
    if len(set(videos.filter(pc.equal(videos["label"], 1))["method"].to_pylist())) >= 2:
        d["methods"], cats = method_metrics(videos, threshold)
        groups = {c: [m for m in d["methods"] if cats[m] == c] for c in CATEGORIES}
        groups["all"] = list(d["methods"])
        d["categories"] = {
            g: {
                "auc": average(d["methods"][m]["auc"] for m in ms),
                "bacc": average(d["methods"][m]["bacc"] for m in ms),
                "methods": len(ms),
            }
            for g, ms in groups.items()
            if ms
        }
        if role == "ood":
            summary = {k: d["categories"]["all"][k] for k in ("auc", "bacc")}
    d["summary"] = summary
    return d, cats


def evaluation_metrics(
    videos: pa.Table, frames: pa.Table, threshold: float, roles: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """metrics.json's content for scored videos and frames, and {dataset: {method: category}}.

    `roles` maps a dataset to its catalogue role; datasets without one belong to no scenario."""
    datasets: dict[str, Any] = {}
    categories: dict[str, dict[str, str]] = {}
    for ds in sorted(set(videos["dataset"].to_pylist())):
        v = videos.filter(pc.equal(videos["dataset"], ds))
        f = frames.filter(pc.equal(frames["dataset"], ds))
        datasets[ds], categories[ds] = dataset_metrics(v, f, threshold, roles.get(ds))
    scenarios = {}
    for role, name in SCENARIOS.items():
        members = [ds for ds in datasets if roles.get(ds) == role]
        if members:
            scenarios[name] = {
                "auc": average(datasets[ds]["summary"]["auc"] for ds in members),
                "bacc": average(datasets[ds]["summary"]["bacc"] for ds in members),
                "datasets": len(members),
            }
    y, s = _labels_scores(videos)
    fy, fs = _labels_scores(frames)
    return {
        "datasets": datasets,
        "scenarios": scenarios,
        "all": {"video": binary_summary(y, s, threshold), "frame": frame_summary(fy, fs)},
    }, categories
