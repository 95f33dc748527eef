"""dfprep extract end to end: geometry, sampling, bad inputs, labels, determinism, resume."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dfprep.adapters import VideoRow
from dfprep.config import Params, replace
from dfprep.extract import crop_label, plan_jobs, run_extract
from dfprep.manifest import rows_to_table, write_manifest
from dfprep.shards import iter_samples
from dfprep.synth import make_face_video
from faults import audio_only, image_as_video


def _params(**shard) -> Params:
    p = Params()
    return replace(p, shard=replace(p.shard, **shard), run=replace(p.run, scheduler="inline"))


def _manifest(root: Path, rels: list[str], out: Path, label=1) -> Path:
    rows = [
        VideoRow(r, "test", label, "m" if label else "real", "FS" if label else "real")
        for r in rels
    ]
    return write_manifest(rows_to_table("t", root, rows), out)


def _samples(out: Path) -> dict[str, dict]:
    found = {}
    for tar in sorted((out / "shards").glob("*.tar")):
        with open(tar, "rb") as f:
            for key, members in iter_samples(f, str(tar)):
                found[key] = members
    return found


def _digests(out: Path) -> dict[str, str]:
    """The bytes of every tar (shards/) and table (meta/: crop index, video table, dropped faces)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for d in (out / "shards", out / "meta")
        if d.is_dir()
        for p in sorted(d.iterdir())
        if p.suffix in (".tar", ".parquet")
    }


def test_crop_geometry_face_centred_at_known_scale(tmp_path):
    track = make_face_video(tmp_path / "v/face.mp4", fps=25, size=(1280, 720), seconds=3.0, seed=3)
    m = _manifest(tmp_path / "v", ["face.mp4"], tmp_path / "m.parquet")
    s = run_extract([m], tmp_path / "out", _params())
    assert (s.ok, s.crops) == (1, 3)
    for key, members in _samples(tmp_path / "out").items():
        meta = json.loads(members["json"])
        i = int(np.argmin(np.abs(track.times - meta["time"])))
        truth = track.boxes[i]
        got = np.array(meta["bbox"])
        side = max(truth[2] - truth[0], truth[3] - truth[1])
        # the detector's box is the ground truth up to a few percent of the face size
        assert np.abs(got - truth).max() < 0.08 * side, (key, got, truth)
        # in the 224 crop the true face is centred and its longer side is 224 / 1.3
        cx, cy = (truth[0] + truth[2]) / 2, (truth[1] + truth[3]) / 2
        gside = 1.3 * max(got[2] - got[0], got[3] - got[1])
        gx, gy = (got[0] + got[2]) / 2, (got[1] + got[3]) / 2
        in_crop = ((cx - gx) / gside * 224 + 112, (cy - gy) / gside * 224 + 112)
        assert abs(in_crop[0] - 112) < 6 and abs(in_crop[1] - 112) < 6
        assert side / gside * 224 == pytest.approx(224 / 1.3, rel=0.08)
        assert Image.open(io.BytesIO(members["jpg"])).size == (224, 224)
        assert members["cls"] == b"1" and "." not in key


@pytest.mark.parametrize("fps, seconds, expected", [(25, 3.0, 3), (30, 2.5, 3), (29.97, 4.0, 4)])
def test_one_crop_per_second(tmp_path, fps, seconds, expected):
    make_face_video(tmp_path / "v/a.mp4", fps=fps, size=(320, 240), seconds=seconds, seed=1)
    m = _manifest(tmp_path / "v", ["a.mp4"], tmp_path / "m.parquet")
    run_extract([m], tmp_path / "out", _params())
    idx = pq.read_table(next((tmp_path / "out/meta").glob("*.index.parquet"))).to_pylist()
    assert [r["sample_index"] for r in idx] == list(range(expected))
    assert [round(r["time"]) for r in idx] == list(range(expected))
    assert all(r["time"] >= r["sample_index"] - 1e-6 for r in idx)


def test_bad_inputs_are_recorded_and_the_rest_of_the_shard_is_written(tmp_path):
    v = tmp_path / "v"
    make_face_video(v / "good1.mp4", fps=25, size=(320, 240), seconds=2, seed=1)
    make_face_video(v / "good2.mp4", fps=30, size=(320, 240), seconds=2, seed=2)
    (v / "empty.mp4").write_bytes(b"")
    good = (v / "good1.mp4").read_bytes()
    (v / "truncated.mp4").write_bytes(good[: len(good) // 3])
    (v / "text.mp4").write_text("this is not a video\n" * 50)
    audio_only(v / "audio.mp4")
    image_as_video(v / "image.mp4")
    from dfprep.videoio import encode_video

    encode_video(v / "noface.mp4", [np.full((120, 160, 3), 90, np.uint8)] * 50, 25)
    names = [
        "good1.mp4",
        "empty.mp4",
        "truncated.mp4",
        "text.mp4",
        "audio.mp4",
        "image.mp4",
        "noface.mp4",
        "good2.mp4",
        "gone.mp4",
    ]
    (v / "gone.mp4").write_bytes(good)
    m = _manifest(v, names, tmp_path / "m.parquet")
    (v / "gone.mp4").unlink()  # disappears between manifest and extract
    s = run_extract([m], tmp_path / "out", _params(videos_per_shard=len(names)))
    status = {
        r["video_id"].split("-", 1)[1]: r
        for r in pq.read_table(next((tmp_path / "out/meta").glob("*.videos.parquet"))).to_pylist()
    }
    assert status["good1"]["status"] == status["good2"]["status"] == "ok"
    assert status["noface"]["status"] == "no_face" and status["noface"]["frames_sampled"] == 2
    for name, pattern in [
        ("empty", "empty"),
        ("text", "not a video"),
        ("audio", "no video stream"),
        ("gone", "not found"),
    ]:
        assert status[name]["status"] == "failed", name
        assert pattern in status[name]["error"].lower(), (name, status[name]["error"])
    assert status["truncated"]["status"] in ("failed", "ok", "no_face")
    assert status["truncated"]["status"] != "ok" or status["truncated"]["crops"] >= 1
    assert status["image"]["status"] in ("failed", "no_face")
    for r in status.values():
        assert "\n" not in r["error"]
    assert s.videos == len(names) and s.ok + s.no_face + s.failed == len(names)
    keys = _samples(tmp_path / "out")
    assert {k.split("_s")[0] for k in keys} >= {"t-good1", "t-good2"}


def test_same_inputs_give_byte_identical_shards_and_resume_skips(tmp_path):
    v = tmp_path / "v"
    for i in range(3):
        make_face_video(v / f"{i}.mp4", fps=25, size=(320, 240), seconds=2, seed=i)
    m = _manifest(v, ["0.mp4", "1.mp4", "2.mp4"], tmp_path / "m.parquet")
    p = _params(videos_per_shard=2)
    a = run_extract([m], tmp_path / "a", p)
    b = run_extract([m], tmp_path / "b", p)
    assert (a.ok, a.crops) == (b.ok, b.crops) == (3, 6)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b") and a.jobs == 2
    again = run_extract([m], tmp_path / "a", p)
    assert (again.skipped, again.done) == (2, 0)
    stats = next((tmp_path / "a/meta").glob("*-000000.stats.json"))
    before = stats.stat().st_mtime_ns
    redo = run_extract([m], tmp_path / "a", p, overwrite=True)
    assert (redo.skipped, redo.done) == (0, 2) and stats.stat().st_mtime_ns != before
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    # a changed output param redoes the shards; an execution-only one does not
    p2 = replace(p, crop=replace(p.crop, jpeg_quality=80))
    assert run_extract([m], tmp_path / "a", p2).done == 2
    p3 = replace(p2, decode=replace(p2.decode, threads=2))
    assert run_extract([m], tmp_path / "a", p3).skipped == 2


def test_stale_shards_of_an_older_plan_are_removed(tmp_path):
    v = tmp_path / "v"
    for i in range(3):
        make_face_video(v / f"{i}.mp4", fps=25, size=(160, 120), seconds=1, seed=i)
    m = _manifest(v, ["0.mp4", "1.mp4", "2.mp4"], tmp_path / "m.parquet")
    run_extract([m], tmp_path / "o", _params(videos_per_shard=1))
    assert len(list((tmp_path / "o/shards").glob("*.tar"))) == 3
    s = run_extract([m], tmp_path / "o", _params(videos_per_shard=2))
    assert len(list((tmp_path / "o/shards").glob("*.tar"))) == 2 and s.videos == 3


def test_plan_is_deterministic_and_checks_ids(tmp_path):
    v = tmp_path / "v"
    v.mkdir()
    for n in "cab":
        (v / f"{n}.mp4").write_bytes(b"")
    m = _manifest(v, ["c.mp4", "a.mp4", "b.mp4"], tmp_path / "m.parquet")
    jobs = plan_jobs([m], tmp_path / "o", Params().extract)
    assert [r["video_id"] for r in jobs[0].videos] == ["t-a", "t-b", "t-c"]
    m2 = _manifest(v, ["a.mp4"], tmp_path / "other" / "m2.parquet")
    from dfprep.core.errors import InputError

    with pytest.raises(InputError, match="is in both"):
        plan_jobs([m, m2], tmp_path / "o", Params().extract)


def test_crop_label_follows_fake_segments():
    row = {"label": 1, "fake_segments": [{"start": 2.0, "end": 4.0}]}
    assert [crop_label(row, t) for t in (0.0, 1.99, 2.0, 3.5, 4.0)] == [0, 0, 1, 1, 0]
    assert crop_label({"label": 1, "fake_segments": None}, 9.0) == 1
    assert crop_label({"label": 0, "fake_segments": None}, 1.0) == 0


def test_sample_dataset_labels_reach_the_shards(sample_manifest, tmp_path):
    s = run_extract([sample_manifest], tmp_path / "out", _params(videos_per_shard=16))
    assert s.failed == 0 and s.ok >= 0.95 * s.videos
    idx = pq.read_table(list((tmp_path / "out/meta").glob("*.index.parquet"))).to_pylist()
    man = {r["video_id"]: r for r in pq.read_table(sample_manifest).to_pylist()}
    for r in idx:
        src = man[r["video_id"]]
        assert (r["label"], r["category"], r["method"], r["split"]) == (
            src["label"],
            src["category"],
            src["method"],
            src["split"],
        )
    assert {r["method"] for r in idx} == {
        "real",
        "Deepfakes",
        "FaceSwap",
        "Face2Face",
        "NeuralTextures",
    }


def test_frame_folders_of_face_crops_go_through_extract(tmp_path):
    """DF40 / WildDeepfake ship face crops: a face filling the image is still found; a folder
    without faces is `no_face`, never cropped blindly."""
    import cv2
    import skimage.data

    from dfprep.detect import get_detector

    root = tmp_path / "frames"
    photo = skimage.data.astronaut()
    face = get_detector(Params().detect).detect([photo])[0][0]
    x1, y1, x2, y2 = (int(v) for v in face.box)
    tight = cv2.resize(photo[y1:y2, x1:x2], (224, 224))  # the face fills the whole image
    (root / "faces").mkdir(parents=True)
    for i in range(12):
        Image.fromarray(np.roll(tight, i, axis=1)).save(root / "faces" / f"{i}.png")
    (root / "noface").mkdir()
    for i in range(3):
        Image.fromarray(skimage.data.coffee()).save(root / "noface" / f"{i}.png")
    rows = [
        VideoRow("faces", "test", 1, "m", "FS", kind="frames", frame_stride=5),
        VideoRow("noface", "test", 0, "real", "real", kind="frames", frame_stride=1),
    ]
    m = write_manifest(rows_to_table("t", root, rows), tmp_path / "m.parquet")
    s = run_extract([m], tmp_path / "out", _params())
    status = {
        r["video_id"]: r
        for r in pq.read_table(next((tmp_path / "out/meta").glob("*.videos.parquet"))).to_pylist()
    }
    assert (status["t-faces"]["status"], status["t-faces"]["strategy"]) == ("ok", "frames")
    assert status["t-faces"]["frames_sampled"] == 3  # images 0, 5, 10 (stride 5, natural order)
    assert status["t-noface"]["status"] == "no_face" and status["t-noface"]["crops"] == 0
    idx = pq.read_table(next((tmp_path / "out/meta").glob("*.index.parquet"))).to_pylist()
    assert [r["frame_index"] for r in idx] == [0, 5, 10] and s.crops == 3


def test_shipped_faces_are_resized_as_they_are(tmp_path):
    """faces: shipped (WildDeepfake, DF40): every kept image is the crop, resized to 224, no margin
    and no detection, even where a detector finds nothing (here: colour gradients, no face)."""
    import cv2

    root = tmp_path / "frames"
    yy, xx = np.mgrid[0:140, 0:100]
    images = [
        np.stack([xx * 2 + 20 * i, yy + 30 * i, 255 - yy], -1).clip(0, 255).astype(np.uint8)
        for i in range(4)
    ]
    (root / "seq").mkdir(parents=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(root / "seq" / f"{i}.png")
    (root / "v").mkdir()
    make_face_video(root / "v/a.mp4", fps=25, size=(320, 240), seconds=2.0, seed=1)
    rows = [
        VideoRow("seq", "test", 1, "m", "FS", kind="frames", frame_stride=2),
        VideoRow("v/a.mp4", "test", 0, "real", "real"),
    ]
    table = rows_to_table("t", root, rows, faces="shipped")
    assert dict(zip(table["video_id"].to_pylist(), table["faces"].to_pylist(), strict=True)) == {
        "t-seq": "shipped",
        "t-v-a": "detect",
    }  # a video in a shipped dataset is still detected
    m = write_manifest(table, tmp_path / "m.parquet")
    s = run_extract([m], tmp_path / "out", _params())
    assert (s.ok, s.no_face) == (2, 0)
    samples = {k: v for k, v in _samples(tmp_path / "out").items() if k.startswith("t-seq")}
    assert len(samples) == 2  # images 0 and 2 (stride 2)
    for members in samples.values():
        meta = json.loads(members["json"])
        assert (meta["bbox"], meta["score"], meta["landmarks"]) == (
            [0, 0, 100, 140],
            1.0,
            [0.0] * 10,
        )
        got = np.asarray(Image.open(io.BytesIO(members["jpg"])).convert("RGB"), dtype=np.float32)
        want = cv2.resize(images[meta["frame_index"]], (224, 224), interpolation=cv2.INTER_CUBIC)
        assert (
            got.shape == (224, 224, 3) and np.abs(got - want).mean() < 2
        )  # the whole image, stretched
    detected = run_extract(
        [write_manifest(rows_to_table("t", root, rows), tmp_path / "d.parquet")],
        tmp_path / "out-detect",
        _params(),
    )
    assert detected.no_face == 1  # the same images through the detector: no face in a gradient


def test_partly_fake_video_labels_each_crop_by_its_fake_segments(tmp_path):
    make_face_video(tmp_path / "v/part.mp4", fps=25, size=(320, 240), seconds=4.0, seed=5)
    rows = [VideoRow("part.mp4", "train", 1, "class-05", "RE", fake_segments=[(1.5, 3.0)])]
    m = write_manifest(rows_to_table("fn", tmp_path / "v", rows), tmp_path / "m.parquet")
    run_extract([m], tmp_path / "out", _params())
    samples = _samples(tmp_path / "out")
    got = [
        (
            json.loads(s["json"])["sample_index"],
            s["cls"],
            json.loads(s["json"])["label"],
            json.loads(s["json"])["video_label"],
        )
        for s in samples.values()
    ]
    assert got == [(0, b"0", 0, 1), (1, b"0", 0, 1), (2, b"1", 1, 1), (3, b"0", 0, 1)]


def test_interrupt_watch_remembers_a_ctrl_c_and_restores_the_handler():
    import os
    import signal
    import time

    from dfprep.core.signals import interrupt_watch

    before = signal.getsignal(signal.SIGINT)
    with interrupt_watch() as seen:
        assert not seen()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        assert seen()
    assert signal.getsignal(signal.SIGINT) is before


def test_ctrl_c_that_surfaces_as_another_error_is_an_interrupt_not_a_failed_job(
    tmp_path, monkeypatch
):
    """A Ctrl-C inside a C extension's import surfaces as e.g. `ImportError: initialization
    failed`: extract reports the run interrupted (exit 130), never a failed shard job."""
    import os
    import signal
    import time

    from dfprep.extract import driver

    make_face_video(tmp_path / "v" / "a.mp4", fps=5, size=(160, 120), seconds=1, seed=0)
    m = _manifest(tmp_path / "v", ["a.mp4"], tmp_path / "m.parquet")

    def interrupted_import(*a, **k):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            raise ImportError("initialization failed") from None

    monkeypatch.setattr(driver, "run_shard_job", interrupted_import)
    summary = run_extract([m], tmp_path / "out", _params())
    assert summary.interrupted and not summary.failed_jobs
