"""How many faces each frame had, recorded per crop and per video; an unpaired training fake with
several faces flagged as a possible label-noise source, named by extract's summary and the
report (issue 23)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dfprep.adapters import VideoRow
from dfprep.balance.report import run_report
from dfprep.cli import app
from dfprep.config import Params, ReportConfig, replace
from dfprep.extract import run_extract
from dfprep.manifest import rows_to_table, write_manifest
from dfprep.problems import PROBLEMS_FILE
from dfprep.verify import verify_output
from test_extract import _samples
from two_faces import write_pair

SPLIT_SCREEN = "t-fake-split"  # original left, deepfake right, no original given: flagged


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("faces")
    v = root / "v"
    write_pair(v, "split", swap="right", seed=0, original=False)  # the left face is larger
    write_pair(v, "pair", swap="right", seed=1)  # the same, with its original
    write_pair(v, "one", swap="left", seed=3, people=1, original=False)
    shutil.copy(v / "fake/split.mp4", v / "fake/split_test.mp4")
    shutil.copy(v / "fake/split.mp4", v / "real/two.mp4")  # a real video with two people
    rows = [
        VideoRow("fake/split.mp4", "train", 1, "Deepfakes", "FS"),
        VideoRow("fake/split_test.mp4", "test", 1, "Deepfakes", "FS"),
        VideoRow("fake/pair.mp4", "train", 1, "Deepfakes", "FS", original="real/pair.mp4"),
        VideoRow("real/pair.mp4", "train", 0, "real", "real"),
        VideoRow("fake/one.mp4", "train", 1, "Deepfakes", "FS"),
        VideoRow("real/two.mp4", "train", 0, "real", "real"),
    ]
    m = write_manifest(rows_to_table("t", v, rows), root / "t.parquet")
    params = replace(Params(), run=replace(Params().run, scheduler="inline"))
    summary = run_extract([m], root / "out", params)
    return root / "out", m, summary


def _videos(out: Path) -> dict[str, dict]:
    return {
        r["video_id"]: r
        for f in sorted((out / "meta").glob("*.videos.parquet"))
        for r in pq.read_table(f).to_pylist()
    }


def _index(out: Path) -> list[dict]:
    return [r for f in sorted((out / "meta").glob("*.index.parquet")) for r in pq.read_table(f).to_pylist()]  # fmt: skip


def test_each_crop_and_video_records_the_faces_of_its_frames(out):
    out, m, _ = out
    videos = _videos(out)
    for vid, n in (("t-fake-split", 2), ("t-fake-one", 1), ("t-real-two", 2), ("t-real-pair", 2)):
        assert videos[vid]["max_faces_in_frame"] == n, vid
        assert videos[vid]["multi_face_share"] == (1.0 if n == 2 else 0.0), vid
    samples = _samples(out)
    for r in _index(out):
        want = videos[r["video_id"]]["max_faces_in_frame"]
        assert r["faces_in_frame"] == want
        assert json.loads(samples[r["key"]]["json"])["faces_in_frame"] == want
    assert verify_output(out, [m]).ok


def test_an_unpaired_training_fake_with_several_faces_is_flagged_and_nothing_else(out):
    out, _, _ = out
    flags = {vid: v["flags"] for vid, v in _videos(out).items()}
    assert flags == {
        SPLIT_SCREEN: "multi_face_fake",
        "t-fake-split_test": "",  # test videos are scored, not learnt from
        "t-fake-pair": "",  # its original says which face was manipulated
        "t-real-pair": "",
        "t-fake-one": "",  # one person
        "t-real-two": "",  # a real video's faces are all real
    }
    # the flag changes no crop: the flagged video's crops are the test copy's largest faces, byte
    # for byte (the test copy, label-blind, keeps every face: detect.test_max_faces 0)
    samples = _samples(out)
    flagged = sorted(
        (k.split("_s")[1], s["jpg"])
        for k, s in samples.items()
        if k.startswith(f"{SPLIT_SCREEN}_s")
    )
    copy = sorted((k.split("_s")[1], s["jpg"]) for k, s in samples.items() if k.startswith("t-fake-split_test_s"))  # fmt: skip
    assert flagged == [c for c in copy if c[0].endswith("_0")] and flagged
    assert len(copy) == 2 * len(flagged)  # two people in every frame of the test copy


def test_extract_names_the_videos_to_check(out, tmp_path):
    out, m, summary = out
    assert summary.problems == {"multi_face_fake": 1, "multi_face": 4}
    named = {(r["video_id"], r["problem"]) for r in summary.problem_videos}
    assert (SPLIT_SCREEN, "multi_face_fake") in named
    [reason] = [r["reason"] for r in summary.problem_videos if r["video_id"] == SPLIT_SCREEN]
    assert "unpaired train fake" in reason and "100% of its" in reason
    table = pq.read_table(out / PROBLEMS_FILE).to_pylist()
    assert {(r["video_id"], r["problem"]) for r in table} == {
        (SPLIT_SCREEN, "multi_face_fake"),
        ("t-fake-split_test", "multi_face"),
        ("t-fake-pair", "multi_face"),
        ("t-real-pair", "multi_face"),
        ("t-real-two", "multi_face"),
    }
    assert json.loads((out / "extract.json").read_text())["problems"] == summary.problems
    res = CliRunner().invoke(
        app, ["extract", str(m), "--out", str(out), "--no-progress", "--scheduler", "inline"]
    )  # fmt: skip  (resumed: all done)
    assert res.exit_code == 0, res.output
    assert "videos to check: 1 multi_face_fake, 4 multi_face" in res.output
    assert f"multi_face_fake: {SPLIT_SCREEN}: unpaired train fake" in res.output.replace("\n", " ")


def test_the_report_names_them_with_their_reasons(out, tmp_path):
    out, _, _ = out
    rep = run_report([out], tmp_path / "rep", ReportConfig(rows=2, cols=4, thumb=32))
    md = rep.markdown.read_text()
    section = md[md.index("## Videos to check") :]
    assert f"| {SPLIT_SCREEN} | t | train | fake | unpaired train fake" in section
    assert (
        "**multi_face_fake** (1 video(s))" in section and "**multi_face** (4 video(s))" in section
    )
    assert rep.problems == tmp_path / "rep" / PROBLEMS_FILE
    assert len(pq.read_table(rep.problems)) == 5
