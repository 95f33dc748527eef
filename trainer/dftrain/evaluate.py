"""`dftrain eval`: a checkpoint over the test crops of extract outputs -> predictions, metrics, report.

OUT/predictions.parquet  one row per crop (ids, labels, P(fake), class probabilities): any other
                         metric can be computed later without the model
OUT/videos.parquet       one row per test video: status, crops scored, video score
OUT/metrics.json         video AUC/bACC and frame AUC/EER per dataset, method, scenario (DVC metrics);
                         `no_face`: the video metrics under both no-face policies, with the count
OUT/table.md             Table 3 of the paper for this run (`dftrain compare` joins several runs)
OUT/info.json            what was evaluated: checkpoint, data, parameters, dataset roles, timing
OUT/plots/roc.png, OUT/plots/hist.png   video-level ROC curves and score histograms per dataset
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dfprep import catalogue
from dfprep.core.atomic import write_json
from dfprep.core.errors import InputError
from dfprep.core.lock import output_lock
from dfprep.core.outputs import output_dir
from dftrain.aggregate import (
    both_policies,
    evaluation_metrics,
    in_metrics,
    resolve_aggregate,
    video_scores,
)
from dftrain.config import EvalConfig, check_eval_config
from dftrain.inference import Scorer, score_shards
from dftrain.plots import histogram_figure, roc_figure
from dftrain.results_table import SHORT_NAMES, Run, render
from dftrain.testset import Source, TestSet, parse_source, read_test_set

PREDICTION_COLUMNS = ["key", "shard", "video_id", "dataset", "split", "method", "category", "label",
                      "video_label", "sample_index", "face_index", "time"]  # fmt: skip
VIDEO_OUT_COLUMNS = ["video_id", "dataset", "split", "method", "category", "label", "status",
                     "error", "crops", "scored_crops", "default_score", "p_fake", "path"]  # fmt: skip


@dataclass
class EvalResult:
    out: Path
    metrics: dict[str, Any]
    info: dict[str, Any]
    table: str  # the Markdown of table.md
    crops: int
    videos: int
    seconds: float  # model + data time of the scoring loop


def run_name(checkpoint: Path) -> str:
    """runs/X/checkpoints/best -> X, runs/X/checkpoints/last -> X/last, other dirs -> their name."""
    if checkpoint.parent.name == "checkpoints":
        run = checkpoint.parent.parent.name
        return run if checkpoint.name == "best" else f"{run}/{checkpoint.name}"
    return checkpoint.name


def dataset_roles(path: str | Path | None) -> tuple[dict[str, str], list[str]]:
    """{dataset: role} and the catalogue's dataset order ({} and [] without a catalogue)."""
    if path is None and not catalogue.DEFAULT_PATH.is_file():
        return {}, []
    cat = catalogue.load_catalogue(path)
    return {n: e.role for n, e in cat.datasets.items()}, list(cat.datasets)


def predictions_table(
    ts: TestSet, p_fake: np.ndarray, probs: np.ndarray, classes: list[str]
) -> pa.Table:
    flat = pa.array(probs.astype(np.float32).ravel(), pa.float32())
    return (
        ts.crops.select(PREDICTION_COLUMNS)
        .append_column("p_fake", pa.array(p_fake, pa.float64()))
        .append_column("probs", pa.FixedSizeListArray.from_arrays(flat, len(classes)))
        .replace_schema_metadata({"class_names": json.dumps(classes)})
    )


def _json_safe(x: Any) -> Any:
    """NaN -> null (JSON has no NaN), numpy scalars -> Python numbers."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def _write_json(path: Path, data: Any) -> None:
    write_json(path, _json_safe(data), sort_keys=False, allow_nan=False)


def _plot_sets(t: pa.Table, label: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for ds in sorted(set(t["dataset"].to_pylist())):
        d = t.filter(pc.equal(t["dataset"], ds))
        out[SHORT_NAMES.get(ds, ds)] = (d[label].to_numpy().astype(int), d["p_fake"].to_numpy())
    return out


def evaluate(
    checkpoint: str | Path,
    sources: list[str | Source],
    out: str | Path,
    cfg: EvalConfig | None = None,
    *,
    name: str | None = None,
    catalogue_path: str | Path | None = None,
    progress: bool | str = False,
) -> EvalResult:
    """Score every test crop of `sources` (NAME=DIR specs) with `checkpoint` and write OUT (see above)."""
    cfg = check_eval_config(cfg or EvalConfig())
    out = output_dir(out)
    with output_lock(out, "dftrain eval"):
        return _evaluate(checkpoint, sources, out, cfg, name, catalogue_path, progress)


def _evaluate(checkpoint, sources, out: Path, cfg: EvalConfig, name, catalogue_path, progress):
    roles, order = dataset_roles(catalogue_path)
    srcs = [parse_source(s) for s in sources]
    ts = read_test_set(srcs, cfg.split)
    scorer = Scorer(checkpoint, cfg.device, cfg.amp)
    keys = ts.crops["key"].to_pylist()
    index = {k: i for i, k in enumerate(keys)}
    t0 = time.perf_counter()
    with _progress(progress, len(keys)) as advance:
        p_fake, probs, found = score_shards(
            scorer, ts.jobs(), index, cfg.batch_size, cfg.workers, advance
        )
    seconds = time.perf_counter() - t0
    if not found.all():
        lost = np.flatnonzero(~found)
        shard = ts.crops["shard_path"][int(lost[0])].as_py()
        raise InputError(
            f"{shard}: crop {keys[lost[0]]} of its index is not in the tar "
            f"({len(lost)} crop(s) missing in all)"
        )
    frames = predictions_table(ts, p_fake, probs, scorer.class_names)
    aggregate = resolve_aggregate(cfg.aggregate, scorer.meta)
    videos = video_scores(ts.videos, frames, cfg.no_face_score, aggregate)
    metrics, method_categories = evaluation_metrics(
        videos, frames, cfg.threshold, roles, cfg.no_face
    )
    metrics["no_face"] = both_policies(videos, frames, cfg.threshold, roles, cfg.no_face)
    used = in_metrics(videos, cfg.no_face)
    present = sorted(
        metrics["datasets"], key=lambda d: (order.index(d) if d in order else len(order), d)
    )
    info = {
        "name": name or run_name(scorer.path),
        "checkpoint": str(scorer.path),
        "epoch": scorer.meta.get("epoch"),
        "model": scorer.meta["model"].get("name"),
        "init": scorer.meta["model"].get("init"),
        "class_names": scorer.class_names,
        "data": [str(s) for s in srcs],
        "eval": dataclasses.asdict(cfg),
        "threshold": cfg.threshold,
        "no_face": cfg.no_face,
        "no_face_score": cfg.no_face_score,
        "aggregate": aggregate,  # how a video's score came from its crops (eval.aggregate, resolved)
        "roles": {d: roles.get(d, "") for d in present},
        "dataset_order": present,
        "method_categories": method_categories,
        "device": str(scorer.device),
        "crops": len(frames),
        "videos": len(videos),
        "seconds": round(seconds, 3),
        "crops_per_s": round(len(frames) / seconds, 2) if seconds > 0 else None,
    }
    table = render([Run(info["name"], _json_safe(metrics), info)])
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(frames, out / "predictions.parquet")
    pq.write_table(videos.select(VIDEO_OUT_COLUMNS), out / "videos.parquet")
    roc_figure(
        _plot_sets(used, "label"), out / "plots" / "roc.png", f"{info['name']}: video-level ROC"
    )
    histogram_figure(_plot_sets(used, "label"), out / "plots" / "hist.png", cfg.threshold,
                     f"{info['name']}: video scores")  # fmt: skip
    (out / "table.md").write_text(f"## {info['name']}\n\n{table}")
    _write_json(out / "info.json", info)
    _write_json(out / "metrics.json", metrics)  # last: a complete OUT has it
    return EvalResult(out, metrics, info, table, len(frames), len(videos), seconds)


class _progress:
    """Crops scored, shown on stderr (`dfprep.core.progress`), or nothing."""

    def __init__(self, mode: bool | str, total: int):
        self.mode, self.total, self.bar = mode, total, None

    def __enter__(self):
        if self.mode in (False, "off"):
            return None
        from dfprep.core.progress import Reporter

        self.bar = Reporter("eval", "crops", mode=self.mode, transient=True).start(self.total)
        return self.bar.advance

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
