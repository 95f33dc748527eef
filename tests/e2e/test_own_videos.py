"""A user's own folder of videos made by others: every container and codec a real collection has,
every file accounted for, the videos read in full (issue 23).

The files are generated here (FFmpeg in PyAV writes VP8, MPEG-4 Part 2, MPEG-2, WMV, FLV and H.264
into their usual containers; it has no Theora encoder, so the .ogv holds VP8 in Ogg): a phone
clip with a rotation matrix, a variable-frame-rate clip and a stream that starts after zero
among them, and the clutter a real folder has.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dfprep.adapters import AdapterOptions
from dfprep.cli import app as dfprep_app
from dfprep.config import Params, replace
from dfprep.core.media import VIDEO_EXTS, tree_files, video_files
from dfprep.extract import run_extract
from dfprep.manifest import build_manifest, write_manifest
from dfprep.synth import identity, make_face_video
from dfprep.synth.camera import random_path
from dfprep.synth.render import film, frame_times
from dfprep.synth.scene import build_scene
from dfprep.videoio import encode_video

SIZE = (192, 160)
# relpath -> encode_video options (5 fps, 2 s, unless said)
VIDEOS = {
    "real/interview.mp4": {},
    "real/web/clip.webm": {"codec": "libvpx"},
    "real/web/talk.ogv": {"codec": "libvpx"},  # Ogg (VP8: no Theora encoder here)
    "real/old/capture.avi": {"codec": "mpeg4"},  # MPEG-4 Part 2
    "real/old/phone.3gp": {"codec": "mpeg4"},
    "real/camcorder/00001.mts": {},
    "fake/vfr.mp4": {"times": [0, 0.1, 0.9, 1.0, 1.1, 1.9, 2.3, 2.4]},
    "fake/late.mkv": {"start": 0.85},  # the stream starts 0.85 s in
    "fake/dvd.mpg": {"codec": "mpeg2video", "fps": 25},
    "fake/old.wmv": {"codec": "wmv2"},
    "fake/flash.flv": {"codec": "flv"},
    "fake/bluray.m2ts": {},
    "fake/broadcast.ts": {},
}
PORTRAIT = "real/phone/portrait.mov"  # stored 192x160 with a rotation: displayed 160x192
NO_EXTENSION = "fake/downloaded"  # a Matroska file without an extension: found by probing
NOT_VIDEOS = {  # relpath -> why it is not taken
    "real/notes.txt": "a .txt file",
    "real/thumb.jpg": "a .jpg file",
    "fake/garbage.bin": "PyAV cannot open it as a video",
    "fake/.DS_Store": "PyAV cannot open it as a video",
    "README.md": "outside real/ and fake/",
    "other/clip.mp4": "outside real/ and fake/",
}


def _portrait(path: Path) -> None:
    """A phone's portrait clip: frames stored turned a quarter clockwise, with a display matrix
    that turns them back (the face upright only once the rotation is applied)."""
    rng = np.random.default_rng(3)
    display = (SIZE[1], SIZE[0])
    scene = build_scene(identity(3), display, 0.35, rng)
    turn = lambda frame, lms, t: np.ascontiguousarray(np.rot90(frame, -1))  # noqa: E731
    film(path, scene, random_path(rng, display, motion=0.3), 5, frame_times(5, 2.0), effect=turn,
         rotation=90)  # fmt: skip


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mine")
    for i, (rel, opts) in enumerate(VIDEOS.items()):
        opts = dict(opts)
        fps = opts.pop("fps", 5)
        make_face_video(root / rel, fps=fps, size=SIZE, seconds=2.0, seed=i,
                        identity_index=i % 5, motion=0.3, **opts)  # fmt: skip
    _portrait(root / PORTRAIT)
    make_face_video(root / "nox.mkv", fps=5, size=SIZE, seconds=2.0, seed=20)
    os.replace(root / "nox.mkv", root / NO_EXTENSION)
    for rel in NOT_VIDEOS:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / "real/notes.txt").write_text("interviews, March")
    encode_video(root / "other/clip.mp4", [np.zeros((64, 64, 3), np.uint8)] * 2, 5)
    (root / "README.md").write_text("# my videos\n")
    (root / "fake/garbage.bin").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "fake/.DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(100))
    from PIL import Image

    Image.new("RGB", (32, 32)).save(root / "real/thumb.jpg")
    return root


def test_the_extensions_of_the_issue_are_videos():
    assert {".ogv", ".ogg", ".3gp", ".ts", ".mts", ".m2ts", ".mpg", ".wmv", ".flv"} <= VIDEO_EXTS


def test_a_mixed_folder_gives_a_manifest_that_accounts_for_every_file(folder, tmp_path, caplog):
    """Before: the folder adapter took 9 of these 15 videos (no .ogv, .3gp, .mts, .m2ts, .ts, nor
    the one without an extension) and said nothing of them or of the 6 other files."""
    opts = AdapterOptions()
    with caplog.at_level(logging.WARNING):
        table = build_manifest("mine", folder, adapter="folder", opts=opts)
    rows = {Path(p).relative_to(folder).as_posix(): r for p, r in
            zip(table["path"].to_pylist(), table.to_pylist(), strict=True)}  # fmt: skip
    want = {*VIDEOS, PORTRAIT, NO_EXTENSION}
    assert set(rows) == want
    assert {rel: r["label"] for rel, r in rows.items()} == {
        rel: int(rel.startswith("fake/")) for rel in want
    }
    skipped = dict(opts.skipped)
    assert set(skipped) == set(NOT_VIDEOS)
    for rel, why in NOT_VIDEOS.items():
        assert skipped[rel].startswith(why), (rel, skipped[rel])
    every = {p.relative_to(folder).as_posix() for p in tree_files(folder)}
    assert set(rows) | set(skipped) == every and not set(rows) & set(skipped)  # all, once each
    [warning] = [r.getMessage() for r in caplog.records if "not taken" in r.getMessage()]
    assert "6 file(s) under" in warning and all(rel in warning for rel in NOT_VIDEOS)

    caplog.clear()  # the command logs it too (its handler prints warnings, -v or not)
    with caplog.at_level(logging.WARNING):
        out = CliRunner().invoke(dfprep_app, ["manifest", "-d", "mine", "--adapter", "folder",
                                              "--root", str(folder), "--out", str(tmp_path / "m.parquet")])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "wrote 15 videos" in out.output
    assert [r.getMessage() for r in caplog.records if "not taken" in r.getMessage()] == [warning]


def test_every_video_of_the_folder_is_read_in_full(folder, tmp_path):
    table = build_manifest("mine", folder, adapter="folder")
    manifest = write_manifest(table, tmp_path / "mine.parquet")
    params = replace(Params(), run=replace(Params().run, scheduler="inline"))
    s = run_extract([manifest], tmp_path / "out", params)
    videos = pq.read_table(next((tmp_path / "out/meta").glob("*.videos.parquet"))).to_pylist()
    status = {Path(v["path"]).relative_to(folder).as_posix(): v for v in videos}
    assert {rel: v["status"] for rel, v in status.items()} == dict.fromkeys(status, "ok")
    assert all(not v["error"] for v in videos), [v["error"] for v in videos if v["error"]]
    assert s.ok == 15 and s.problems == {}
    # the display size, as the boxes are (was the stored 192 x 160)
    assert (status[PORTRAIT]["width"], status[PORTRAIT]["height"]) == (160, 192)
    assert (status["real/interview.mp4"]["width"], status["real/interview.mp4"]["height"]) == SIZE
    index = pq.read_table(next((tmp_path / "out/meta").glob("*.index.parquet"))).to_pylist()
    by_video = {}
    for r in index:
        by_video.setdefault(r["video_id"], []).append(r)
    for rel, v in status.items():
        crops = by_video[v["video_id"]]
        assert len(crops) == v["frames_sampled"] and all(c["faces_in_frame"] == 1 for c in crops)
        assert v["max_faces_in_frame"] == 1 and v["multi_face_share"] == 0
        # the player's clock beside the one from the first frame: 0.85 s ahead for the late
        # stream, as far as the muxer's delay for MPEG-TS and MPEG-PS, equal for the others
        offset = crops[0]["pts_time"] - crops[0]["time"]
        if rel == "fake/late.mkv":
            assert offset == pytest.approx(0.85, abs=1e-3)
        elif rel.endswith((".ts", ".mts", ".m2ts", ".mpg")):
            assert offset > 0.1, rel
        else:
            assert offset == 0, rel
        assert [c["pts_time"] - c["time"] for c in crops] == pytest.approx([offset] * len(crops))
        if rel == PORTRAIT:
            assert all(c["bbox"][2] <= 160 + 1 and c["bbox"][3] <= 192 + 1 for c in crops)
    assert [c["time"] for c in by_video[status["fake/vfr.mp4"]["video_id"]]] == pytest.approx(
        [0.0, 1.0, 2.3],
        abs=1e-3,  # the first frame at or after each second
    )


def test_predict_and_bench_take_the_same_videos_from_a_folder(folder, caplog):
    from dftrain.predict import find_videos

    with caplog.at_level(logging.WARNING):
        found = {p.relative_to(folder).as_posix() for p in find_videos([folder])}
    assert found == {*VIDEOS, PORTRAIT, NO_EXTENSION, "other/clip.mp4"}  # was: no .ogv, .ts ...
    assert any("fake/garbage.bin" in r.getMessage() for r in caplog.records)
    files = [folder / "real/notes.txt", folder / "real/web"]  # a file is taken as given
    assert [p.relative_to(folder).as_posix() for p in video_files(files)] == [
        "real/notes.txt", "real/web/clip.webm", "real/web/talk.ogv",
    ]  # fmt: skip
