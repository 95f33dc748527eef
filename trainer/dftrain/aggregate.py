"""From crop scores to the paper's numbers: video scores, then metrics per dataset, method and scenario.

- A video's score is the mean P(fake) of its crops (P(fake) is already the sum over the fake classes
  for an attribution head), or with `frame_max` (SBI's protocol) the mean over its frames of the
  highest P(fake) among each frame's faces (a frame: the crops of one `sample_index`). A test video without crops (no face found, or unreadable) is, by the
  `no_face` policy, left out of the video metrics (`drop`) or kept with `no_face_score` (`score`);
  how many there were is reported per dataset, and `both_policies` gives the metrics under each.
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

from dftrain.config import NO_FACE_POLICIES
from dftrain.metrics import average, binary_summary, frame_summary, group_max_mean, group_mean

SCENARIOS = {"train": "in_distribution", "ood": "out_of_distribution", "wild": "in_the_wild"}
CATEGORIES = ("FS", "RE")


def resolve_aggregate(aggregate: str, meta: Mapping[str, Any]) -> str:
    """eval.aggregate for a checkpoint: `auto` is SBI's protocol (frame_max) for a model trained
    with train.sbi.enabled, the paper's (mean over all faces) for any other; others as given."""
    if aggregate != "auto":
        return aggregate
    sbi = (meta.get("train_config") or {}).get("sbi") or {}
    return "frame_max" if sbi.get("enabled") else "mean"


def video_scores(
    videos: pa.Table, frames: pa.Table, no_face_score: float, aggregate: str = "mean"
) -> pa.Table:
    """The test list with `p_fake` (mean over its crops, or `frame_max`: the mean over its frames
    of each frame's highest crop score), `scored_crops` and `default_score` (True when it had no
    crop and got `no_face_score`)."""
    vids_of = frames["video_id"].to_numpy(zero_copy_only=False)
    if aggregate == "frame_max":
        ids, means, counts = group_max_mean(
            vids_of, frames["sample_index"].to_numpy(), frames["p_fake"].to_numpy()
        )
    elif aggregate == "mean":
        ids, means, counts = group_mean(vids_of, frames["p_fake"].to_numpy())
    else:
        raise ValueError(f"unknown aggregate {aggregate!r} (use mean or frame_max)")
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


def in_metrics(videos: pa.Table, no_face: str) -> pa.Table:
    """The videos the video-level metrics use: all (`score`), or those with a crop (`drop`)."""
    if no_face == "score":
        return videos
    if no_face != "drop":
        raise ValueError(f"unknown no_face policy {no_face!r} (use drop or score)")
    return videos.filter(pc.invert(videos["default_score"]))


def dataset_metrics(
    videos: pa.Table, frames: pa.Table, threshold: float, role: str | None, no_face: str = "drop"
) -> tuple[dict[str, Any], dict[str, str]]:
    """Metrics of one dataset (its test videos and crops) and its methods' categories; the video
    metrics over `in_metrics(videos, no_face)`, the counts over all test videos."""
    status = videos["status"].to_pylist()
    no_crop = int(pc.sum(videos["default_score"]).as_py() or 0)
    all_videos, videos = videos, in_metrics(videos, no_face)
    y, s = _labels_scores(videos)
    fy, fs = _labels_scores(frames)
    d: dict[str, Any] = {
        "video": binary_summary(y, s, threshold),
        "frame": frame_summary(fy, fs),
        "videos": {
            "test": len(all_videos),
            "ok": status.count("ok"),
            "no_face": status.count("no_face"),
            "failed": status.count("failed"),
            "default_score": no_crop,  # test videos without a crop (no face found, or unreadable)
            "dropped": len(all_videos) - len(videos),  # left out of the video metrics
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
    videos: pa.Table,
    frames: pa.Table,
    threshold: float,
    roles: Mapping[str, str],
    no_face: str = "drop",
) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """metrics.json's content for scored videos and frames, and {dataset: {method: category}}.

    `roles` maps a dataset to its catalogue role; datasets without one belong to no scenario.
    `no_face` says what the video metrics do with test videos without a crop (`in_metrics`)."""
    datasets: dict[str, Any] = {}
    categories: dict[str, dict[str, str]] = {}
    for ds in sorted(set(videos["dataset"].to_pylist())):
        v = videos.filter(pc.equal(videos["dataset"], ds))
        f = frames.filter(pc.equal(frames["dataset"], ds))
        datasets[ds], categories[ds] = dataset_metrics(v, f, threshold, roles.get(ds), no_face)
    scenarios = {}
    for role, name in SCENARIOS.items():
        members = [ds for ds in datasets if roles.get(ds) == role]
        if members:
            scenarios[name] = {
                "auc": average(datasets[ds]["summary"]["auc"] for ds in members),
                "bacc": average(datasets[ds]["summary"]["bacc"] for ds in members),
                "datasets": len(members),
            }
    y, s = _labels_scores(in_metrics(videos, no_face))
    fy, fs = _labels_scores(frames)
    return {
        "datasets": datasets,
        "scenarios": scenarios,
        "all": {"video": binary_summary(y, s, threshold), "frame": frame_summary(fy, fs)},
    }, categories


def both_policies(
    videos: pa.Table, frames: pa.Table, threshold: float, roles: Mapping[str, str], policy: str
) -> dict[str, Any]:
    """metrics.json's `no_face` block: the policy used, the videos without a crop, and the video
    AUC/bACC (dataset summaries, scenarios, all) under each policy, with the videos each counts."""
    out: dict[str, Any] = {
        "policy": policy,
        "videos": int(pc.sum(videos["default_score"]).as_py() or 0),
    }
    for p in NO_FACE_POLICIES:
        m, _ = evaluation_metrics(videos, frames, threshold, roles, p)
        out[p] = {
            "datasets": {
                ds: {
                    "auc": d["summary"]["auc"],
                    "bacc": d["summary"]["bacc"],
                    "videos": d["videos"]["test"] - d["videos"]["dropped"],
                }
                for ds, d in m["datasets"].items()
            },
            "scenarios": {k: {"auc": v["auc"], "bacc": v["bacc"]} for k, v in m["scenarios"].items()},
            "all": {"auc": m["all"]["video"]["auc"], "bacc": m["all"]["video"]["bacc"],
                    "videos": m["all"]["video"]["n"]},
        }  # fmt: skip
    return out
