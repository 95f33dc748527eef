"""The sample FaceForensics++-layout dataset generator (dfprep.synth)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from dfprep.config import DetectConfig, SynthConfig
from dfprep.core.errors import ConfigError, InputError
from dfprep.detect import get_detector
from dfprep.manifest import build_manifest
from dfprep.synth import align_face, make_face_video, plan, synth_ffpp

SMALL = SynthConfig(originals=4, multi_person=0, seconds=2.0, sizes=("640x360", "854x480"))
METHODS = {"Deepfakes": "FS", "FaceSwap": "FS", "Face2Face": "RE", "NeuralTextures": "RE"}
ORIG = "original_sequences/youtube/c23/videos/{}.mp4"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("ffpp")
    return root, synth_ffpp(root, SMALL)


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _frame(path: Path, k: int) -> np.ndarray:
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == k:
                return f.to_ndarray(format="rgb24")
    raise IndexError(f"{path} has no frame {k}")


def _by_path(out: dict) -> dict[str, dict]:
    return {v["relpath"]: v for v in out["records"]}


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _detect_640(frame: np.ndarray) -> list[tuple[float, tuple[float, ...]]]:
    """(score, box in frame pixels) of the faces the default detector finds (at 640 px, score >= 0.5)."""
    detector = get_detector(DetectConfig(max_size=640, score_threshold=0.5))
    return [(f.score, f.box) for f in detector.detect([frame])[0]]


def test_layout_and_splits(sample):
    root, out = sample
    ids = [f"{i:03d}" for i in range(SMALL.originals)]
    assert sorted(p.name for p in (root / "original_sequences/youtube/c23/videos").iterdir()) == [
        f"{i}.mp4" for i in ids
    ]
    pairs = {
        s: json.loads((root / "splits" / f"{s}.json").read_text()) for s in ("train", "val", "test")
    }
    listed = [v for ps in pairs.values() for p in ps for v in p]
    assert sorted(listed) == ids  # every original in exactly one pair
    assert all(isinstance(p, list) and len(p) == 2 for ps in pairs.values() for p in ps)
    expected = sorted(
        f"{a}_{b}.mp4" for ps in pairs.values() for x, y in ps for a, b in ((x, y), (y, x))
    )
    for method in METHODS:
        vdir = root / "manipulated_sequences" / method / "c23" / "videos"
        assert sorted(p.name for p in vdir.iterdir()) == expected
    files = [p for p in root.rglob("*") if p.is_file()]
    # + one mask per fake, the 3 split files, the truth file and the marker
    assert len(files) == out["files"] == SMALL.originals * (5 + 4) + 5
    assert out["masks"] == SMALL.originals * 4
    assert out["videos"] == SMALL.originals * 5
    assert sum(p.stat().st_size for p in files) == out["bytes"]


def test_ffpp_adapter_reads_it(sample):
    root, out = sample
    table = build_manifest("ffpp", root).to_pylist()
    assert len(table) == SMALL.originals * 5
    split_of = {v: s for s, ps in out["splits"].items() for p in ps for v in p}
    counts = Counter((r["method"], r["category"], r["label"]) for r in table)
    assert counts[("real", "real", 0)] == SMALL.originals
    for method, category in METHODS.items():
        assert counts[(method, category, 1)] == SMALL.originals
    for r in table:
        stem = Path(r["path"]).stem
        target = stem.split("_")[0]
        assert r["split"] == split_of[target]
        assert r["source_id"] == target
        if r["label"] == 1:
            source = stem.split("_")[1]
            assert split_of[source] == split_of[target]
    # the generator's own record agrees with the adapter
    recs = _by_path(out)
    for r in table:
        rel = Path(r["path"]).relative_to(root.resolve()).as_posix()
        assert (recs[rel]["split"], recs[rel]["label"], recs[rel]["method"]) == (
            r["split"],
            r["label"],
            r["method"],
        )


def test_default_plan():
    cfg = SynthConfig()
    specs, splits = plan(cfg)
    assert len(specs) == 10
    assert [len(splits[s]) for s in ("train", "val", "test")] == [3, 1, 1]
    assert (1920, 1080) in {s.size for s in specs}
    assert len({s.size for s in specs}) >= 4
    assert {s.fps for s in specs} == {Fraction(25), Fraction(30), Fraction(30000, 1001)}
    assert all(abs(s.seconds - cfg.seconds) <= 0.1 * cfg.seconds + 1e-9 for s in specs)
    assert len({round(s.seconds, 3) for s in specs}) > 1
    # partners are different people (identity i is base face i % 8)
    assert all(s.index % 8 != s.partner % 8 for s in specs)


def test_rates_and_durations(sample):
    root, out = sample
    recs = _by_path(out)
    checked = set()
    for rel, rec in sorted(recs.items()):
        key = (rec["method"] == "real", rec["rate"])
        if key in checked:
            continue
        checked.add(key)
        with av.open(str(root / rel)) as c:
            stream = c.streams.video[0]
            times = [f.time for f in c.decode(video=0)]
            assert stream.codec_context.name == "h264"
            assert stream.average_rate == Fraction(rec["rate"])
            assert (stream.width, stream.height) == (rec["width"], rec["height"])
        assert len(times) == rec["frames"] == round(rec["seconds"] * float(Fraction(rec["rate"])))
        assert abs(rec["seconds"] - SMALL.seconds) <= 0.1 * SMALL.seconds + 1 / rec["fps"]
        assert times[-1] == pytest.approx((rec["frames"] - 1) / rec["fps"], abs=1e-3)
        target = recs[ORIG.format(rec["target"])]
        assert (rec["frames"], rec["rate"], rec["width"]) == (
            target["frames"],
            target["rate"],
            target["width"],
        )
    assert {r for _, r in checked} == {"25", "30", "30000/1001"}


def test_faces_detected_where_the_ground_truth_says(sample):
    root, out = sample
    found = 0
    tried = 0
    for rec in out["records"]:
        frames = _frames(root / rec["relpath"])
        for k in range(0, len(frames), 20):
            tried += 1
            faces = [(s, b) for s, b in _detect_640(frames[k]) if s >= 0.9]
            if len(faces) == 1 and _iou(faces[0][1], rec["boxes"][k]) > 0.5:
                found += 1
    assert found >= 0.95 * tried


def _face_crop(root: Path, rec: dict, k: int) -> np.ndarray:
    """The inner face (eyes to mouth) of frame k, aligned by its ground-truth landmarks, normalised."""
    lms = np.asarray(rec["landmarks"][k]).reshape(5, 2)
    face = align_face(_frame(root / rec["relpath"], k), lms)
    g = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.float64)[40:100, 30:82]
    return (g - g.mean()) / (g.std() + 1e-9)


def test_face_swaps_show_the_source_face(sample):
    root, out = sample
    recs = _by_path(out)
    for rec in out["records"]:
        if rec["category"] != "FS":
            continue
        k = rec["frames"] // 2
        fake = _face_crop(root, rec, k)
        source = _face_crop(root, recs[ORIG.format(rec["source"])], k)
        target = _face_crop(root, recs[ORIG.format(rec["target"])], k)
        # normalised cross-correlation: the fake's face is the source's, not the target's
        assert (fake * source).mean() > (fake * target).mean() + 0.3, rec["relpath"]


def _outside(box, shape, grow: float) -> np.ndarray:
    """Mask of the pixels outside the box scaled by `grow` about its centre."""
    x1, y1, x2, y2 = box
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, grow * (x2 - x1) / 2, grow * (y2 - y1) / 2
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (np.abs(xx - cx) > hw) | (np.abs(yy - cy) > hh)


@pytest.mark.parametrize("method", ["Face2Face", "NeuralTextures", "Deepfakes"])
def test_fakes_change_only_the_face(sample, method):
    root, out = sample
    for rec in out["records"]:
        if rec["method"] != method:
            continue
        fake = _frames(root / rec["relpath"])
        orig = _frames(root / ORIG.format(rec["target"]))
        inside, outside = [], []
        for k in range(0, len(fake), 5):
            diff = np.abs(fake[k].astype(np.int16) - orig[k].astype(np.int16)).mean(axis=2)
            out_mask = _outside(rec["boxes"][k], diff.shape, 2.2)
            x1, y1, x2, y2 = (round(v) for v in rec["boxes"][k])
            inside.append(diff[y1:y2, x1:x2].mean())
            outside.append(diff[out_mask].mean())
        assert max(outside) < 1.0, rec["relpath"]  # codec noise only
        assert max(inside) > 3 * max(outside) + 1.0, rec["relpath"]
        if method in ("Face2Face", "NeuralTextures"):
            assert np.ptp(inside) > 1.5  # the expression changes over time


def test_same_seed_same_bytes(tmp_path):
    cfg = SynthConfig(originals=2, multi_person=0, seconds=0.6, sizes=("320x180",))

    def digests(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    synth_ffpp(tmp_path / "a", cfg)
    synth_ffpp(tmp_path / "b", dataclasses.replace(cfg, workers=1))
    synth_ffpp(tmp_path / "c", dataclasses.replace(cfg, seed=1))
    a, b, c = digests(tmp_path / "a"), digests(tmp_path / "b"), digests(tmp_path / "c")
    assert len(a) == 2 * (5 + 4) + 5
    assert a == b
    assert a.keys() == c.keys() and a[ORIG.format("000")] != c[ORIG.format("000")]


def test_make_face_video_ground_truth(tmp_path):
    times = [0.0, 0.04, 0.1, 0.13, 0.2, 0.27, 0.3, 0.4, 0.45, 0.5, 0.61, 0.7, 0.72, 0.8, 0.9, 1.0]
    path = tmp_path / "vfr.mp4"
    track = make_face_video(path, 25, (640, 360), identity_index=3, gop=4, times=times)
    assert len(track) == len(times) and track.boxes.shape == (len(times), 4)
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    assert [f.time for f in frames] == pytest.approx(times, abs=1e-4)
    assert [i for i, f in enumerate(frames) if f.key_frame] == list(range(0, len(times), 4))
    moved = np.abs(track.boxes - track.boxes[0]).max()
    assert moved > 2.0  # the camera moves the face
    for k in (0, 7, 15):
        faces = _detect_640(frames[k].to_ndarray(format="rgb24"))
        assert len(faces) == 1 and faces[0][0] >= 0.9
        assert _iou(faces[0][1], track.boxes[k]) > 0.7


def test_make_face_video_constant_rate(tmp_path):
    track = make_face_video(tmp_path / "cfr.mp4", 29.97, (320, 240), seconds=0.5, motion=0.0)
    with av.open(str(tmp_path / "cfr.mp4")) as c:
        assert c.streams.video[0].average_rate == Fraction(30000, 1001)
        n = sum(1 for _ in c.decode(video=0))
    assert n == len(track) == 15
    assert np.allclose(track.boxes, track.boxes[0], atol=0.6)  # motion=0: a still camera


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"synth\.originals"):
        plan(SynthConfig(originals=5))
    with pytest.raises(ConfigError, match=r"synth\.sizes: '1280by720'"):
        plan(SynthConfig(sizes=("1280by720",)))
    with pytest.raises(ConfigError, match=r"synth\.rates"):
        plan(SynthConfig(rates=(0.0,)))
    with pytest.raises(ConfigError, match="make_face_video: times"):
        make_face_video(tmp_path / "x.mp4", times=[0.0, 0.5, 0.5])


def test_rerun_replaces_only_a_previous_sample(tmp_path):
    small = SynthConfig(originals=4, multi_person=0, seconds=0.2, sizes=("320x180",))
    synth_ffpp(tmp_path, small)
    out = synth_ffpp(tmp_path, dataclasses.replace(small, originals=2))
    assert len(build_manifest("ffpp", tmp_path)) == 10 == out["videos"]
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"notes\.txt"):
        synth_ffpp(tmp_path, small)
    # a real download (no marker) is never touched
    real = tmp_path / "real"
    (real / "original_sequences").mkdir(parents=True)
    with pytest.raises(InputError, match="holds no sample dataset"):
        synth_ffpp(real, small)
    assert (tmp_path / "notes.txt").read_text() == "mine" and (real / "original_sequences").is_dir()


def test_default_dataset_fits_the_budget(sample_synth):
    out = sample_synth
    print(f"default sample dataset: {out['bytes'] / 1e6:.2f} MB in {out['elapsed_s']:.1f} s")
    assert out["bytes"] < 20e6
    assert out["videos"] == 50 + 20  # + 4 two-person originals and their 16 fakes
    assert out["masks"] == 40 + 16
    assert sum(v["faces"] == 2 for v in out["records"]) == 20
    assert any((v["width"], v["height"]) == (1920, 1080) for v in out["records"])
    assert Counter(v["split"] for v in out["records"] if v["label"] == 0) == {
        "train": 6 + 2,
        "val": 2,
        "test": 2 + 2,
    }


def test_cli_synth_shows_its_progress_in_a_log_and_none_when_asked(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from dfprep.cli import app

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"synth": {
        "originals": 2, "multi_person": 0, "seconds": 0.2, "sizes": ["320x180"]}}))  # fmt: skip
    res = CliRunner().invoke(app, ["synth", str(tmp_path / "s"), "--params", str(params)])
    assert res.exit_code == 0, res.output
    assert "synth: 0/2 originals (0%)" in res.stderr  # each original filmed with its fakes
    assert "synth: 2/2 originals (100%)" in res.stderr and "done in" in res.stderr
    res = CliRunner().invoke(
        app, ["synth", str(tmp_path / "s"), "--params", str(params), "--no-progress"]
    )
    assert res.exit_code == 0 and "synth:" not in res.stderr
