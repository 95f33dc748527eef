"""The sample dataset's two-person scenes, its FF++-style masks and its ground-truth file."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import av
import numpy as np
import pytest

from dfprep.config import DetectConfig, SynthConfig
from dfprep.core.errors import ConfigError, InputError
from dfprep.detect import get_detector
from dfprep.manifest import build_manifest
from dfprep.schema import make_video_id
from dfprep.synth import synth_ffpp
from dfprep.synth.ffpp import plan_multi
from dfprep.synth.truth import (
    box_iou,
    crop_is_manipulated,
    is_multi_person,
    load_truth,
    manipulated_share,
)

# 2 single-person originals (000, 001) and 2 two-person ones (002 "smaller", 003 "crossing")
MULTI = SynthConfig(originals=2, multi_person=2, seconds=1.6, sizes=("640x360", "854x480"))
METHODS = ("Deepfakes", "FaceSwap", "Face2Face", "NeuralTextures")
ORIG = "original_sequences/youtube/c23/videos/{}.mp4"
FAKE = "manipulated_sequences/{}/c23/videos/{}.mp4"
MASK = "manipulated_sequences/{}/masks/videos/{}.mp4"
TWO = ("002_003", "003_002")


@pytest.fixture(scope="module")
def multi(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("multi")
    return root, synth_ffpp(root, MULTI)


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _h(box) -> float:
    return box[3] - box[1]


def _grown(box, grow: float) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, grow * (x2 - x1) / 2, grow * (y2 - y1) / 2
    return round(cx - hw), round(cy - hh), round(cx + hw), round(cy + hh)


def _mean_in(a: np.ndarray, box) -> float:
    x1, y1, x2, y2 = (max(0, v) for v in box)
    return float(a[y1:y2, x1:x2].mean())


def test_two_person_videos_are_written_and_listed(multi):
    root, out = multi
    recs = {r["relpath"]: r for r in out["records"]}
    assert out["videos"] == (MULTI.originals + MULTI.multi_person) * 5
    for vid in ("002", "003"):
        assert recs[ORIG.format(vid)]["faces"] == 2
    for stem in TWO:
        for method in METHODS:
            rec = recs[FAKE.format(method, stem)]
            assert rec["faces"] == 2 and rec["label"] == 1
    # the adapter sees the videos only: neither the masks nor the truth file are data
    table = build_manifest("ffpp", root).to_pylist()
    assert len(table) == out["videos"]
    assert not any("masks" in r["path"] or r["path"].endswith(".json") for r in table)
    split_of = {Path(r["path"]).stem: r["split"] for r in table}
    assert split_of["002"] == split_of["003"] == split_of["002_003"] == split_of["003_002"]


def test_only_one_face_is_manipulated(multi):
    """Decoded fake vs decoded original: the manipulated face differs, the other one shows codec
    noise only (before encoding it is unchanged: see the masks test, which finds no changed pixel
    on it)."""
    root, _ = multi
    truth = load_truth(root)
    for stem in TWO:
        orig = _frames(root / ORIG.format(stem[:3]))
        for method in METHODS:
            rel = FAKE.format(method, stem)
            fake = _frames(root / rel)
            assert len(fake) == len(orig)
            inside, other = [], []
            for k in range(0, len(fake), 3):
                diff = np.abs(fake[k].astype(np.int16) - orig[k].astype(np.int16)).mean(axis=2)
                inside.append(_mean_in(diff, _grown(truth[rel]["manipulated"][k], 1.0)))
                other.append(_mean_in(diff, _grown(truth[rel]["others"][k][0], 1.2)))
            assert max(other) < 2.5, rel  # x264 noise on a textured face (measured up to 1.6)
            assert np.median(inside) > 2 * np.median(other) + 1.0, rel


def test_smaller_and_crossing_cases_exist(multi):
    root, _ = multi
    truth = load_truth(root)
    smaller = crossing = 0
    for v in truth.values():
        if not is_multi_person(v):
            assert all(o == [] for o in v["others"])
            continue
        ratio = [_h(m) / _h(o[0]) for m, o in zip(v["manipulated"], v["others"], strict=True)]
        if max(ratio) < 0.8:
            smaller += 1  # the manipulated face is the smaller one throughout
        elif ratio[0] < 0.8 and ratio[-1] > 1.2:
            crossing += 1  # it starts smaller and ends larger
    assert smaller == crossing == len(METHODS)  # 002_003 and 003_002


def test_both_faces_are_detected(multi):
    root, _ = multi
    truth = load_truth(root)
    detector = get_detector(DetectConfig())
    tried = found = 0
    for stem in TWO:
        for method in ("Deepfakes", "Face2Face"):
            rel = FAKE.format(method, stem)
            frames = _frames(root / rel)
            for k in range(0, len(frames), 8):
                tried += 1
                faces = detector.detect([frames[k]])[0]
                want = [truth[rel]["manipulated"][k], truth[rel]["others"][k][0]]
                hit = [any(box_iou(f.box, b) > 0.5 and f.score >= 0.9 for f in faces) for b in want]
                found += all(hit)
    assert found == tried


def test_masks_mark_the_manipulated_face(multi):
    root, out = multi
    truth = load_truth(root)
    assert out["masks"] == len(truth) == 4 * len(METHODS)
    for rel, v in truth.items():
        method, stem = rel.split("/")[1], Path(rel).stem
        masks = _frames(root / MASK.format(method, stem))
        fake = _frames(root / rel)
        assert len(masks) == len(fake) and masks[0].shape == fake[0].shape
        lit = 0
        for k, m in enumerate(masks):
            white = m[..., 0] > 128
            if not white.any():
                continue
            lit += 1
            box = _grown(v["manipulated"][k], 1.6)
            assert _mean_in(white, box) * _area(box, white.shape) >= 0.99 * white.sum(), rel
            for o in v["others"][k]:
                assert _mean_in(white, _grown(o, 1.0)) == 0.0, rel
            if method in ("Deepfakes", "FaceSwap"):
                ys, xs = np.nonzero(white)
                x1, y1, x2, y2 = v["manipulated"][k]
                assert x1 < xs.mean() < x2 and y1 < ys.mean() < y2, rel
        assert lit >= (0.95 if method in ("Deepfakes", "FaceSwap") else 0.5) * len(masks), rel


def _area(box, shape) -> int:
    x1, y1, x2, y2 = box
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(shape[1], x2), min(shape[0], y2)
    return max(0, x2 - x1) * max(0, y2 - y1)


def test_single_person_videos_do_not_change(multi, tmp_path):
    """Adding two-person scenes leaves the single-person videos byte for byte as they were."""
    root, _ = multi
    synth_ffpp(tmp_path, dataclasses.replace(MULTI, multi_person=0))

    def digest(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest()

    alone = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.mp4"))
    assert len(alone) == 2 * (5 + 4)
    for rel in alone:
        assert digest(tmp_path / rel) == digest(root / rel), rel
    assert len(load_truth(tmp_path)) == 2 * len(METHODS)


def test_truth_helpers(multi):
    root, _ = multi
    truth = load_truth(root)
    rel = FAKE.format("FaceSwap", TWO[0])
    v = truth[rel]
    manip, other = v["manipulated"][3], v["others"][3][0]
    assert crop_is_manipulated(v, 3, manip)
    assert not crop_is_manipulated(v, 3, other)
    shifted = [manip[0] + 0.6 * _h(manip), manip[1], manip[2] + 0.6 * _h(manip), manip[3]]
    assert not crop_is_manipulated(v, 3, shifted)
    assert crop_is_manipulated(v, 3, shifted, iou=0.1)
    with pytest.raises(ValueError, match="outside"):
        crop_is_manipulated(v, len(v["manipulated"]), manip)
    single = FAKE.format("Deepfakes", "000_001")
    vid = make_video_id("ffpp", rel)
    rows = [
        {"video_id": vid, "dataset": "ffpp", "frame_index": 3, "bbox": manip, "label": 1},
        {"video_id": vid, "dataset": "ffpp", "frame_index": 3, "bbox": other, "label": 1},
        {"video_id": vid, "dataset": "ffpp", "frame_index": 3, "bbox": other, "label": 0},
        {
            "video_id": make_video_id("ffpp", single),
            "dataset": "ffpp",
            "frame_index": 0,
            "bbox": truth[single]["manipulated"][0],
            "label": 1,
        },
        {
            "video_id": "ffpp-unknown",
            "dataset": "ffpp",
            "frame_index": 0,
            "bbox": manip,
            "label": 1,
        },
    ]
    assert manipulated_share(rows, truth) == (3, 2)
    two_person = [r for r, t in truth.items() if is_multi_person(t)]
    assert manipulated_share(rows, truth, videos=two_person) == (2, 1)
    by_path = [{**r, "path": str(root.resolve() / rel)} for r in rows[:2]]
    assert manipulated_share(by_path, truth, root) == (2, 1)


def test_truth_file_is_checked(tmp_path):
    with pytest.raises(InputError, match="missing"):
        load_truth(tmp_path)
    (tmp_path / "synth_truth.json").write_text(json.dumps({"version": 9, "videos": {}}))
    with pytest.raises(InputError, match="version 1"):
        load_truth(tmp_path)


def test_too_many_ids_are_refused():
    with pytest.raises(ConfigError, match=r"synth\.multi_person"):
        plan_multi(SynthConfig(originals=990, multi_person=20, sizes=("640x360",)))
    with pytest.raises(ConfigError, match=r"synth\.multi_person"):
        SynthConfig(multi_person=3)


def test_the_adapter_pairs_every_sample_fake_with_its_original_and_mask(multi):
    root, out = multi
    table = build_manifest("ffpp", root).to_pylist()
    by_id = {r["video_id"]: r for r in table}
    fakes = [r for r in table if r["label"] == 1]
    assert len(fakes) == out["masks"] == 4 * (MULTI.originals + MULTI.multi_person)
    for r in fakes:
        stem = Path(r["path"]).stem
        assert by_id[r["original_id"]]["path"].endswith(ORIG.format(stem[:3]))
        assert r["mask_path"] == str(root.resolve() / MASK.format(r["method"], stem))
        assert Path(r["mask_path"]).is_file()
