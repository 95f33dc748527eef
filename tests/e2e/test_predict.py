"""`dftrain predict`: extract's own crops (bit for bit), eval's score, honest output for bad videos."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from dfprep.adapters import VideoRow
from dfprep.config import Params, replace
from dfprep.core.errors import InputError
from dfprep.detect import get_detector
from dfprep.extract import resolve_threads, run_extract
from dfprep.manifest import rows_to_table, write_manifest
from dfprep.shards import iter_samples
from dfprep.synth import make_face_video
from dfprep.videoio import encode_video
from dftrain.checkpoint import checkpoint_meta, save_checkpoint
from dftrain.cli import app
from dftrain.config import EvalConfig, LabelConfig, TrainConfig
from dftrain.evaluate import evaluate
from dftrain.labels import names
from dftrain.model import create_model
from dftrain.predict import extract_crops, find_videos, predict
from trainer_helpers import TINY

CFG = EvalConfig(workers=0, batch_size=16, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(5)
    cfg = TrainConfig(model=TINY, labels=LabelConfig(mode="category"))
    vit = create_model(TINY, len(names(cfg.labels)))
    torch.nn.init.normal_(vit.head.weight, std=0.5)
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "best", vit, checkpoint_meta(cfg, 0, {})
    )


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    make_face_video(
        root / "fake" / "face.mp4", fps=5, size=(160, 128), seconds=3.0, seed=1, identity_index=1
    )
    make_face_video(
        root / "real" / "other.MOV", fps=5, size=(160, 128), seconds=2.0, seed=2, identity_index=2
    )
    encode_video(root / "noface.mp4", [np.full((96, 128, 3), 90, np.uint8)] * 10, 5)
    (root / "notes.txt").write_text("not a video")
    (root / "broken.mp4").write_bytes(b"\x00" * 64)
    return root


def test_predict_uses_extracts_crops_and_gives_evals_score(videos, checkpoint, tmp_path):
    params = replace(Params(), run=replace(Params().run, scheduler="inline"))
    rows = [VideoRow("fake/face.mp4", "test", 1, "Deepfakes", "FS")]
    manifest = write_manifest(rows_to_table("ffpp", videos, rows), tmp_path / "m.parquet")
    run_extract([manifest], tmp_path / "extract", params)
    tar = next((tmp_path / "extract" / "shards").glob("*.tar"))
    with open(tar, "rb") as f:
        shard = [(json.loads(m["json"])["time"], m["jpg"]) for _, m in iter_samples(f, str(tar))]
    cfg = resolve_threads(params.extract, params.run)
    mine = extract_crops(videos / "fake" / "face.mp4", cfg, get_detector(cfg.detect))
    assert len(shard) == 3
    assert [(row["time"], m["jpg"]) for _, m, row in mine.samples] == shard  # the same JPEG bytes

    r = evaluate(checkpoint, [str(tmp_path / "extract")], tmp_path / "eval", CFG)
    [video] = pq.read_table(r.out / "videos.parquet").to_pylist()
    [pred] = predict([videos / "fake" / "face.mp4"], checkpoint, params, CFG)
    assert pred.status == "ok" and pred.faces == 3 and pred.frames_sampled == 3
    assert (pred.frames_with_face, pred.most_faces) == (3, 1)
    assert pred.p_fake == pytest.approx(video["p_fake"], abs=1e-6)
    frames = pq.read_table(r.out / "predictions.parquet").sort_by("time")
    assert pred.scores == pytest.approx(frames["p_fake"].to_pylist(), abs=1e-6)
    assert pred.times == pytest.approx(frames["time"].to_pylist())
    assert pred.verdict == ("fake" if pred.p_fake >= 0.5 else "real")


def test_a_two_person_video_is_scored_on_both_faces_like_a_test_video(checkpoint, tmp_path):
    """predict follows the test split's label-blind rule: every face, all in the mean; eval of
    the same video extracted in the test split gives the same crops and score."""
    from two_faces import write_pair

    write_pair(tmp_path / "v", "p", swap="right", seconds=2.0, original=False)
    video = tmp_path / "v" / "fake" / "p.mp4"
    params = replace(Params(), run=replace(Params().run, scheduler="inline"))
    [pred] = predict([video], checkpoint, params, CFG)
    assert (pred.faces, pred.frames_with_face, pred.most_faces) == (4, 2, 2)
    assert pred.p_fake == pytest.approx(np.mean(pred.scores))
    rows = [VideoRow("fake/p.mp4", "test", 1, "Deepfakes", "FS")]
    manifest = write_manifest(rows_to_table("ffpp", tmp_path / "v", rows), tmp_path / "m.parquet")
    run_extract([manifest], tmp_path / "extract", params)
    r = evaluate(checkpoint, [str(tmp_path / "extract")], tmp_path / "eval", CFG)
    [v] = pq.read_table(r.out / "videos.parquet").to_pylist()
    assert v["scored_crops"] == 4 and pred.p_fake == pytest.approx(v["p_fake"], abs=1e-6)
    res = CliRunner().invoke(app, ["predict", str(checkpoint), str(video), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "most" in res.stdout and "2/2" in res.stdout


def test_find_videos_walks_folders_and_keeps_bad_paths(videos, tmp_path):
    found = find_videos([videos, tmp_path / "missing.mp4"])
    assert [p.relative_to(videos).as_posix() for p in found[:-1]] == [
        "broken.mp4", "fake/face.mp4", "noface.mp4", "real/other.MOV",
    ]  # fmt: skip
    assert found[-1] == tmp_path / "missing.mp4"  # reported as unreadable, not dropped
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no video file"):
        find_videos([tmp_path / "empty"])


def test_cli_table_json_timeline_and_exit_status(videos, checkpoint, tmp_path):
    runner = CliRunner()
    good = [str(checkpoint), str(videos / "fake" / "face.mp4"), str(videos / "real" / "other.MOV")]
    res = runner.invoke(
        app, ["predict", *good, "--timeline", str(tmp_path / "t.png"), "--device", "cpu"]
    )
    assert res.exit_code == 0, res.output
    assert "3/3" in res.stdout and "2/2" in res.stdout  # frames with a face / frames sampled
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"

    res = runner.invoke(
        app,
        ["predict", str(checkpoint), str(videos / "noface.mp4"), str(videos / "broken.mp4"),
         str(videos / "fake" / "face.mp4"), str(tmp_path / "gone.mp4"), "--json", "--threshold", "0"],
    )  # fmt: skip
    assert res.exit_code == 1  # some videos could not be scored
    data = json.loads(res.stdout)
    assert data["threshold"] == 0.0
    got = {v["path"].rsplit("/", 1)[-1]: v for v in data["videos"]}
    assert got["noface.mp4"]["verdict"] == "no face" and got["noface.mp4"]["p_fake"] is None
    assert got["noface.mp4"]["frames_sampled"] == 2 and got["noface.mp4"]["faces"] == 0
    assert got["broken.mp4"]["verdict"] == "unreadable" and got["broken.mp4"]["error"]
    assert got["gone.mp4"]["verdict"] == "unreadable" and "not found" in got["gone.mp4"]["error"]
    face = got["face.mp4"]
    assert (
        face["verdict"] == "fake" and len(face["scores"]) == len(face["times"]) == 3
    )  # threshold 0
    assert face["p_fake"] == pytest.approx(np.mean(face["scores"]))

    res = runner.invoke(app, ["predict", str(checkpoint), str(videos / "noface.mp4")])
    assert res.exit_code == 1 and "no face" in res.stdout
    res = runner.invoke(app, ["predict", str(tmp_path), str(videos / "noface.mp4")])
    assert res.exit_code == 2 and "not a dftrain checkpoint" in res.output


def test_a_publishers_tree_is_scored_without_its_mask_folders_and_with_progress(
    videos, checkpoint, tmp_path
):
    import shutil

    from dfprep.core.media import in_mask_folder

    tree = tmp_path / "FaceForensics++" / "manipulated_sequences" / "Deepfakes"
    for folder in ("c23/videos", "masks/videos"):  # FF++'s layout: a fake and its mask video
        (tree / folder).mkdir(parents=True)
        shutil.copy(videos / "fake" / "face.mp4", tree / folder / "000_003.mp4")
    assert in_mask_folder("Deepfakes/masks/videos/000_003.mp4")
    assert not in_mask_folder("masks/000_003.mp4") and not in_mask_folder("videos/masks.mp4")
    skipped: list = []
    found = find_videos([tmp_path / "FaceForensics++"], skipped)
    assert found == [tree / "c23/videos/000_003.mp4"]
    assert skipped == [tree / "masks/videos/000_003.mp4"]

    res = CliRunner().invoke(app, ["predict", str(checkpoint), str(tmp_path / "FaceForensics++")])
    assert res.exit_code == 0, res.output  # the mask video is neither scored nor a "no face" row
    assert "skipped 1 mask video(s) in 1 mask folder(s)" in res.stderr
    assert "predict: 1/1 videos (100%)" in res.stderr  # no terminal here: progress as lines
    assert "000_003.mp4" in res.stdout and "masks" not in res.stdout
    res = CliRunner().invoke(
        app, ["predict", str(checkpoint), str(tree / "c23/videos"), "--no-progress"]
    )
    assert res.exit_code == 0 and "predict:" not in res.stderr
