"""`eval.aggregate`: a video's score as the paper's mean over all its faces, or SBI's mean over
frames of each frame's highest face score; `auto` picks SBI's for a model trained with --sbi."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from dfprep.core.errors import ConfigError
from dftrain.aggregate import resolve_aggregate, video_scores
from dftrain.bench.synthetic import write_synthetic_extract
from dftrain.checkpoint import checkpoint_meta, save_checkpoint
from dftrain.config import EvalConfig, LossConfig, ModelConfig, TrainConfig, load_eval_params
from dftrain.evaluate import evaluate
from dftrain.metrics import group_max_mean
from dftrain.model import create_model
from dftrain.sbi import SBIConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_frame_max_takes_each_frames_highest_face_then_averages_the_frames():
    ids, scores, counts = group_max_mean(
        ["a", "a", "a", "b", "b", "c"], [0, 0, 1, 5, 6, 0], [0.2, 0.9, 0.1, 0.3, 0.5, 0.7]
    )
    assert ids.tolist() == ["a", "b", "c"] and counts.tolist() == [3, 2, 1]
    assert scores.tolist() == pytest.approx([0.5, 0.4, 0.7])  # a: (0.9 + 0.1) / 2
    with pytest.raises(ValueError, match="3 groups, 2 frames"):
        group_max_mean(["a"] * 3, [0, 1], [0.1] * 3)


def test_video_scores_under_each_aggregate_with_two_faces_a_frame():
    videos = pa.Table.from_pylist(
        [{"video_id": v, "dataset": "x", "label": y, "method": "m", "category": "FS", "status": "ok"}
         for v, y in (("two", 1), ("one", 0), ("none", 0))]
    )  # fmt: skip
    frames = pa.Table.from_pylist(
        [{"video_id": v, "sample_index": f, "face_index": k, "p_fake": p}
         for v, f, k, p in (("two", 0, 0, 0.1), ("two", 0, 1, 0.9), ("two", 1, 0, 0.3),
                            ("two", 2, 0, 0.2), ("two", 2, 1, 0.4), ("one", 0, 0, 0.6))]
    )  # fmt: skip
    mean = dict(zip(*[video_scores(videos, frames, 0.5)[c].to_pylist() for c in ("video_id", "p_fake")],
                    strict=True))  # fmt: skip
    top = video_scores(videos, frames, 0.5, "frame_max")
    got = dict(zip(top["video_id"].to_pylist(), top["p_fake"].to_pylist(), strict=True))
    assert mean == pytest.approx({"two": 0.38, "one": 0.6, "none": 0.5})
    assert got == pytest.approx({"two": (0.9 + 0.3 + 0.4) / 3, "one": 0.6, "none": 0.5})
    assert top["scored_crops"].to_pylist() == [5, 1, 0]
    with pytest.raises(ValueError, match="unknown aggregate"):
        video_scores(videos, frames, 0.5, "median")


def test_auto_is_sbis_protocol_for_an_sbi_model_and_the_papers_otherwise(tmp_path):
    sbi = {"train_config": {"sbi": {"enabled": True}}}
    assert resolve_aggregate("auto", sbi) == "frame_max"
    assert resolve_aggregate("auto", {"train_config": {"sbi": {"enabled": False}}}) == "mean"
    assert resolve_aggregate("auto", {"train_config": {}}) == "mean"  # a checkpoint before SBI
    assert resolve_aggregate("mean", sbi) == "mean"
    with pytest.raises(
        ConfigError, match=r"eval.aggregate: 'max' is not one of auto, mean, frame_max"
    ):
        EvalConfig(aggregate="max")
    p = tmp_path / "params.yaml"
    p.write_text("eval: {aggregate: frame_max}\n")
    assert load_eval_params(p).aggregate == "frame_max"


def test_eval_of_an_sbi_checkpoint_records_the_protocol_it_used(tmp_path):
    write_synthetic_extract(tmp_path / "extract", shards=1, videos_per_shard=4, crops_per_video=3,
                            size=32, distinct=4)  # fmt: skip
    model = ModelConfig(name="resnet10t", img_size=32, drop_path=0.0, init="none")
    cfg = TrainConfig(model=model, loss=LossConfig(triplet="none"), sbi=SBIConfig(enabled=True))
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "sbi" / "checkpoints" / "best", create_model(model, 2),
                           checkpoint_meta(cfg, 0, {}))  # fmt: skip
    ecfg = EvalConfig(workers=0, batch_size=8, device="cpu")
    auto = evaluate(ckpt, [str(tmp_path / "extract")], tmp_path / "e1", ecfg, name="SBI")
    assert auto.info["aggregate"] == "frame_max"
    assert json.loads((tmp_path / "e1" / "info.json").read_text())["aggregate"] == "frame_max"
    frames = pq.read_table(tmp_path / "e1" / "predictions.parquet").to_pylist()
    videos = pq.read_table(tmp_path / "e1" / "videos.parquet").to_pylist()
    for v in videos:  # the recorded scores recompute from the crops by SBI's rule
        mine = [r for r in frames if r["video_id"] == v["video_id"]]
        per_frame = {}
        for r in mine:
            per_frame[r["sample_index"]] = max(per_frame.get(r["sample_index"], 0.0), r["p_fake"])
        assert v["p_fake"] == pytest.approx(sum(per_frame.values()) / len(per_frame))
    forced = evaluate(ckpt, [str(tmp_path / "extract")], tmp_path / "e2",
                      EvalConfig(workers=0, batch_size=8, device="cpu", aggregate="mean"))  # fmt: skip
    assert forced.info["aggregate"] == "mean"
