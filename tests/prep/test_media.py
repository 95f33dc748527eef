"""The media rule (dfprep.core.media): which files are videos, at what cost, and the word said
about every file that is not (issue 23)."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

import dfprep.core.media as media
from dfprep.adapters import AdapterOptions
from dfprep.core.errors import InputError
from dfprep.core.media import MAX_NAMED, not_taken, scan_tree, video_files, why_not_video
from dfprep.manifest import build_manifest
from dfprep.videoio import encode_video
from faults import audio_only, image_as_video


def _clip(path, **kw):
    return encode_video(path, [np.full((48, 64, 3), 90, np.uint8)] * 3, 5, **kw)


def test_a_known_extension_is_enough_and_anything_else_is_probed(tmp_path):
    assert why_not_video(_clip(tmp_path / "a.mp4")) == ""
    _clip(tmp_path / "b.mkv").rename(tmp_path / "b")  # no extension: PyAV opens it as a video
    assert why_not_video(tmp_path / "b") == ""
    _clip(tmp_path / "c.mkv").rename(tmp_path / "c.clip")
    assert why_not_video(tmp_path / "c.clip") == ""
    (tmp_path / "d.dat").write_bytes(b"\1" * 1000)
    assert why_not_video(tmp_path / "d.dat").startswith("PyAV cannot open it as a video")
    audio_only(tmp_path / "e.audio")
    assert why_not_video(tmp_path / "e.audio") == "no video stream (audio-only file)"
    image_as_video(tmp_path / "f.still")  # a PNG: a still image is no video
    assert why_not_video(tmp_path / "f.still").startswith("a still image")
    (tmp_path / "g.txt").write_text("x")
    assert why_not_video(tmp_path / "g.txt") == "a .txt file"


def test_files_of_known_other_kinds_are_never_opened(tmp_path, monkeypatch):
    """The cost of a large tree: a listing, not a read per file, for documents and images."""
    opened = []
    monkeypatch.setattr(media, "probe_video", lambda p: opened.append(p) or "probed")
    for name in ("a.txt", "b.json", "c.jpg", "d.PNG", "e.csv", "f.parquet", "g.wav", "h.srt"):
        (tmp_path / name).write_bytes(b"x")
    scan = scan_tree(tmp_path)
    assert scan.videos == [] and len(scan.skipped) == 8 and opened == []
    (tmp_path / "odd").write_bytes(b"x")
    assert why_not_video(tmp_path / "odd") == "probed" and opened == [tmp_path / "odd"]


def test_a_probe_reads_a_bounded_prefix_with_a_time_limit(tmp_path, monkeypatch):
    import av

    seen = {}
    real_open = av.open

    def spy(*args, **kw):
        seen.update(kw)
        return real_open(*args, **kw)

    monkeypatch.setattr(av, "open", spy)
    (tmp_path / "big").write_bytes(np.random.default_rng(0).bytes(4 << 20))
    assert why_not_video(tmp_path / "big") != ""
    assert seen["timeout"] == media.PROBE_SECONDS
    assert seen["options"]["probesize"] == str(media.PROBE_BYTES)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_fifos_and_links_are_counted_not_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.mp4")  # opening it would block
    (tmp_path / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    (tmp_path / "loop").symlink_to(tmp_path)  # followed, it would never end
    scan = scan_tree(tmp_path)
    assert scan.videos == []
    assert dict(scan.skipped) == {
        tmp_path / "gone.mp4": "a broken link",
        tmp_path / "pipe.mp4": "not a regular file",
        tmp_path / "loop": "a link to a folder, not followed",
    }


def test_the_warning_names_up_to_n_files_then_counts():
    skipped = [(media.Path(f"/r/f{i:02d}.txt"), "a .txt file") for i in range(MAX_NAMED + 3)]
    msg = not_taken(skipped, media.Path("/r"))
    assert msg.startswith(f"{MAX_NAMED + 3} file(s) under /r not taken as videos: f00.txt (a .txt")
    assert f"f{MAX_NAMED - 1:02d}.txt" in msg and f"f{MAX_NAMED:02d}.txt" not in msg
    assert msg.endswith("and 3 more") and not_taken([]) == ""


def test_video_files_takes_files_as_given_and_refuses_a_folder_without_videos(tmp_path, caplog):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/readme.txt").write_text("x")
    with pytest.raises(
        InputError,
        match=r"docs: no video file in this folder \(1 file\(s\) not taken as videos: .*readme",
    ):
        video_files([tmp_path / "docs"])
    _clip(tmp_path / "v/a.ogv", codec="libvpx")
    (tmp_path / "v/b.txt").write_text("x")
    with caplog.at_level(logging.WARNING):
        got = video_files([tmp_path / "docs/readme.txt", tmp_path / "v"], "bench")
    assert got == [tmp_path / "docs/readme.txt", tmp_path / "v/a.ogv"]
    assert [r.getMessage() for r in caplog.records] == [
        f"bench: 1 file(s) under {tmp_path / 'v'} not taken as videos: b.txt (a .txt file)"
    ]


def test_publisher_layouts_say_which_files_they_leave_out(tmp_path, caplog):
    """FF++'s folders hold videos only; anything else there is named, not silently dropped."""
    from test_adapters_pairing import _ffpp_tree

    root = tmp_path / "ffpp"
    _ffpp_tree(root)
    videos = root / "original_sequences/youtube/c23/videos"
    (videos / "Thumbs.db").write_bytes(b"x")
    opts = AdapterOptions()
    with caplog.at_level(logging.WARNING):
        build_manifest("ffpp", root, opts=opts)
    assert opts.skipped == [("original_sequences/youtube/c23/videos/Thumbs.db", "a .db file")]
    assert any("Thumbs.db (a .db file)" in r.getMessage() for r in caplog.records)


def test_bench_takes_folders_by_the_same_rule(tmp_path, monkeypatch):
    import dfprep.bench as bench
    from dfprep.config import Params

    _clip(tmp_path / "v/a.ogv", codec="libvpx")
    _clip(tmp_path / "v/b.3gp", codec="mpeg4")
    (tmp_path / "v/notes.txt").write_text("x")
    got = []
    monkeypatch.setattr(bench, "run_stages", lambda videos, *a: got.append(videos))
    bench.run_case([tmp_path / "v"], Params(), bench.BenchConfig.for_case("stages"))
    assert got == [[tmp_path / "v/a.ogv", tmp_path / "v/b.3gp"]]
