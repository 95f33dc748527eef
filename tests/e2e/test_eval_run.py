"""`dftrain eval` end to end: real extract shards of small synthetic videos, a tiny random checkpoint."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from dfprep.adapters import VideoRow
from dfprep.config import Params, replace
from dfprep.core.errors import InputError
from dfprep.extract import run_extract
from dfprep.manifest import rows_to_table, write_manifest
from dfprep.shards import TarSink, iter_samples
from dfprep.synth import make_face_video
from dfprep.videoio import encode_video
from dftrain.checkpoint import checkpoint_meta, save_checkpoint
from dftrain.cli import app
from dftrain.config import EvalConfig, LabelConfig, TrainConfig
from dftrain.evaluate import evaluate
from dftrain.labels import names
from dftrain.model import create_model
from trainer_helpers import TINY

CFG = EvalConfig(workers=0, batch_size=16, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_checkpoint(path, mode: str = "binary", seed: int = 0):
    """A random tiny ViT saved through the trainer's own checkpoint code (head spread out so that
    videos get different scores)."""
    torch.manual_seed(seed)
    cfg = TrainConfig(model=TINY, labels=LabelConfig(mode=mode))
    vit = create_model(TINY, len(names(cfg.labels)))
    torch.nn.init.normal_(vit.head.weight, std=0.5)
    return save_checkpoint(path, vit, checkpoint_meta(cfg, 0, {}))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "run" / "checkpoints" / "best")


# (relative path, split, label, method, category, identity); identity None = no face, "broken" = not a video
FFPP = [
    ("real/a.mp4", "test", 0, "real", "real", 0),
    ("real/d.mp4", "test", 0, "real", "real", 3),
    ("fake/b.mp4", "test", 1, "Deepfakes", "FS", 1),
    ("fake/c.mp4", "test", 1, "Face2Face", "RE", 2),
    ("fake/nf.mp4", "test", 1, "Deepfakes", "FS", None),
    ("real/broken.mp4", "test", 0, "real", "real", "broken"),
    ("real/t.mp4", "train", 0, "real", "real", 4),
]
DF40 = [
    ("real/r.mp4", "test", 0, "real", "real", 4),
    ("simswap/s.mp4", "test", 1, "simswap", "FS", 2),
    ("fomm/f.mp4", "test", 1, "fomm", "RE", 1),
]


def _write_dataset(root, name, spec, manifest):
    for i, (rel, *_, ident) in enumerate(spec):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if ident is None:
            encode_video(p, [np.full((96, 128, 3), 90, np.uint8)] * 10, 5)
        elif ident == "broken":
            p.write_bytes(b"not a video at all")
        else:
            make_face_video(p, fps=5, size=(160, 128), seconds=2.0, seed=i, identity_index=ident)
    rows = [VideoRow(rel, split, label, method, cat) for rel, split, label, method, cat, _ in spec]
    return write_manifest(rows_to_table(name, root, rows), manifest)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """One extract output holding an ffpp and a df40 manifest (shards of 4 videos)."""
    base = tmp_path_factory.mktemp("evaldata")
    m1 = _write_dataset(base / "ffpp", "ffpp", FFPP, base / "ffpp.parquet")
    m2 = _write_dataset(base / "df40", "df40", DF40, base / "df40.parquet")
    p = Params()
    p = replace(
        p, shard=replace(p.shard, videos_per_shard=4), run=replace(p.run, scheduler="inline")
    )
    s = run_extract([m1, m2], base / "extract", p)
    assert (s.videos, s.no_face, s.failed) == (10, 1, 1)
    return base / "extract"


def _index(extract, split="test"):
    t = pq.read_table(sorted((extract / "meta").glob("*.index.parquet")))
    return [r for r in t.to_pylist() if r["split"] == split]


def test_eval_writes_every_output_and_its_numbers_recompute(extracted, checkpoint, tmp_path):
    out = tmp_path / "eval"
    r = evaluate(checkpoint, [f"ffpp={extracted}", f"df40={extracted}"], out, CFG)
    for f in ("predictions.parquet", "videos.parquet", "metrics.json", "info.json", "table.md"):
        assert (out / f).stat().st_size > 0, f
    for f in ("roc.png", "hist.png"):
        assert (out / "plots" / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every test crop scored once, nothing from the train split
    crops = _index(extracted)
    pred = pq.read_table(out / "predictions.parquet").to_pylist()
    assert sorted(p["key"] for p in pred) == sorted(c["key"] for c in crops)
    assert "ffpp-real-t" not in {p["video_id"] for p in pred}
    assert all(0.0 <= p["p_fake"] <= 1.0 for p in pred) and r.crops == len(pred)
    # video score = mean of its crops; the no-face and the unreadable video get 0.5 and are counted
    vids = {v["video_id"]: v for v in pq.read_table(out / "videos.parquet").to_pylist()}
    assert len(vids) == 9 and r.videos == 9
    for vid, v in vids.items():
        mine = [p["p_fake"] for p in pred if p["video_id"] == vid]
        assert v["p_fake"] == pytest.approx(np.mean(mine) if mine else 0.5, abs=1e-12)
        assert v["default_score"] == (not mine) and v["scored_crops"] == len(mine)
    assert (
        vids["ffpp-fake-nf"]["status"] == "no_face"
        and vids["ffpp-real-broken"]["status"] == "failed"
    )
    m = json.loads((out / "metrics.json").read_text())
    ff = m["datasets"]["ffpp"]
    assert ff["videos"] == {
        "test": 6, "ok": 4, "no_face": 1, "failed": 1, "default_score": 2, "dropped": 2,
    }  # fmt: skip
    # eval.no_face: drop (the default): the two videos without a crop are out of the video metrics
    ffv = [v for v in vids.values() if v["dataset"] == "ffpp"]
    kept = [v for v in ffv if not v["default_score"]]
    y, s = [v["label"] for v in kept], [v["p_fake"] for v in kept]
    assert ff["video"]["auc"] == pytest.approx(roc_auc_score(y, s))
    assert (ff["video"]["real"], ff["video"]["fake"]) == (2, 2)
    # both policies reported, with the count; `score` keeps them at 0.5
    both = m["no_face"]
    assert both["policy"] == "drop" and both["videos"] == 2
    ya, sa = [v["label"] for v in ffv], [v["p_fake"] for v in ffv]
    assert both["score"]["datasets"]["ffpp"]["auc"] == pytest.approx(roc_auc_score(ya, sa))
    assert both["score"]["datasets"]["ffpp"]["videos"] == 6
    assert both["drop"]["datasets"]["ffpp"] == {
        "auc": ff["summary"]["auc"], "bacc": ff["summary"]["bacc"], "videos": 4,
    }  # fmt: skip
    scored = evaluate(checkpoint, [f"ffpp={extracted}"], tmp_path / "scored",
                      replace(CFG, no_face="score"))  # fmt: skip
    sff = scored.metrics["datasets"]["ffpp"]
    assert sff["video"]["auc"] == pytest.approx(roc_auc_score(ya, sa)) and sff["video"]["n"] == 6
    assert sff["videos"]["dropped"] == 0 and scored.metrics["no_face"]["policy"] == "score"
    assert "dropped in the table" not in scored.table and "scored 0.5 in the table" in scored.table
    ffp = [p for p in pred if p["dataset"] == "ffpp"]
    assert ff["frame"]["auc"] == pytest.approx(
        roc_auc_score([p["label"] for p in ffp], [p["p_fake"] for p in ffp])
    )
    assert ff["summary"]["auc"] == ff["video"]["auc"]  # in-distribution: pooled
    df = m["datasets"]["df40"]
    assert set(df["methods"]) == {"simswap", "fomm"}
    assert df["summary"]["auc"] == df["categories"]["all"]["auc"]  # ood: averaged over methods
    assert set(m["scenarios"]) == {"in_distribution", "out_of_distribution"}
    info = json.loads((out / "info.json").read_text())
    assert info["roles"] == {"ffpp": "train", "df40": "ood"} and info["name"] == "run"
    assert info["method_categories"]["df40"] == {"fomm": "RE", "simswap": "FS"}
    table = (out / "table.md").read_text()
    assert "| run | FF++ | DF40 FS | DF40 RE | DF40 avg |" in table
    assert (
        "FF++: 2 of 6 test videos had no face crop (1 no face, 1 unreadable): dropped in the table (eval.no_face: drop)"
        in table
    )
    assert "without them (4 videos)" in table and "with them scored 0.5 (6 videos)" in table


def test_attribution_checkpoint_scores_the_summed_fake_classes(extracted, tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "attr", mode="dataset", seed=1)
    r = evaluate(ckpt, [f"df40={extracted}"], tmp_path / "out", CFG)
    t = pq.read_table(tmp_path / "out" / "predictions.parquet")
    assert json.loads(t.schema.metadata[b"class_names"]) == r.info["class_names"]
    probs = np.array(t["probs"].to_pylist())
    assert probs.shape[1] == 6  # real + the five training datasets
    p = t["p_fake"].to_numpy()
    assert p == pytest.approx(probs[:, 1:].sum(axis=1), abs=1e-6)
    assert p == pytest.approx(1 - probs[:, 0], abs=1e-6)


def test_cli_eval_then_compare(extracted, checkpoint, tmp_path):
    other = tiny_checkpoint(tmp_path / "b" / "checkpoints" / "best", seed=3)
    runner = CliRunner()
    for ck, out, progress in ((checkpoint, "e1", "--progress"), (other, "e2", "--no-progress")):
        res = runner.invoke(
            app,
            ["eval", str(ck), "--data", f"ffpp={extracted}", "--out", str(tmp_path / out),
             progress, "--workers", "0", "--device", "cpu"],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        assert "### Video-level ROC-AUC (%)" in res.stdout
        # no terminal here: the crops scored as lines in the log, or nothing with --no-progress
        assert ("crops (100%)" in res.stderr) == (progress == "--progress"), res.stderr
    res = runner.invoke(
        app,
        ["compare", str(tmp_path / "e1"), str(tmp_path / "e2"), "--out", str(tmp_path / "t.md")],
    )
    assert res.exit_code == 0, res.output
    text = (tmp_path / "t.md").read_text()
    rows = [
        ln for ln in text.splitlines() if ln.startswith(("| run ", "| b ")) and "|---" not in ln
    ]
    assert rows[0].startswith("| run | FF++ |")  # header, then the run named "run" and "b"
    for name, d in (("run", "e1"), ("b", "e2")):
        auc = json.loads((tmp_path / d / "metrics.json").read_text())["datasets"]["ffpp"][
            "summary"
        ]["auc"]
        assert f"| {name} | {100 * auc:.1f} |" in text
    res = runner.invoke(app, ["compare", str(tmp_path / "e1"), "--names", "x,y"])
    assert res.exit_code == 2 and "2 names for 1 directories" in res.output


def test_bad_data_is_named_not_skipped(extracted, checkpoint, tmp_path):
    with pytest.raises(
        InputError, match=r"no video of dataset 'celebdf'.*datasets there: df40, ffpp"
    ):
        evaluate(checkpoint, [f"celebdf={extracted}"], tmp_path / "o", CFG)
    with pytest.raises(InputError, match="no 'val' video"):
        evaluate(
            checkpoint, [f"ffpp={extracted}"], tmp_path / "o", EvalConfig(split="val", workers=0)
        )
    with pytest.raises(InputError, match="listed more than once"):
        evaluate(checkpoint, [f"ffpp={extracted}", str(extracted)], tmp_path / "o", CFG)
    with pytest.raises(InputError, match="expected NAME=EXTRACT_DIR"):
        evaluate(checkpoint, [f"={extracted}"], tmp_path / "o", CFG)
    broken = tmp_path / "partial"
    shutil.copytree(extracted, broken)
    next((broken / "meta").glob("*.stats.json")).unlink()  # an interrupted extract
    res = CliRunner().invoke(
        app,
        [
            "eval",
            str(checkpoint),
            "--data",
            str(broken),
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 2
    assert "unfinished shard (no .stats.json)" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_a_crop_missing_from_its_tar_stops_the_evaluation(extracted, checkpoint, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(extracted, copy)
    tar = sorted((copy / "shards").glob("ffpp-*.tar"))[0]
    with open(tar, "rb") as f:
        samples = list(iter_samples(f, str(tar)))
    with open(tar, "wb") as f, TarSink(f) as sink:
        for key, members in samples[1:]:  # the first crop is lost, its index row stays
            sink.write(key, members)
    with pytest.raises(
        InputError, match=rf"{tar.name}: crop {samples[0][0]} of its index is not in the tar"
    ):
        evaluate(checkpoint, [f"ffpp={copy}"], tmp_path / "o", CFG)
