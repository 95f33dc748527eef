"""The hull-IoU measurement, on a tiny hand-made sample: one face-swap video whose mask is, in
frame 0, the fitted hull itself and, in frame 1, the ellipse in the box."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from dfprep.core.errors import InputError
from dfprep.crop import crop_face
from dfprep.schema import make_video_id
from dfprep.videoio import encode_video
from dftrain.sbi.measure import app, mask_path, measure_hull_iou, summarise
from dftrain.sbi.shape import ARCFACE_TEMPLATE, ellipse_mask, face_points, hull_mask
from sbi_helpers import record, write_shard

REL = "manipulated_sequences/FaceSwap/c23/videos/000_001.mp4"
W, H = 320, 240
BOX = (110.0, 60.0, 210.0, 190.0)
LMS = ARCFACE_TEMPLATE * (100 / 112) + (110, 72)  # a frontal face in the box


@pytest.fixture
def tiny_sample(tmp_path):
    root, extract = tmp_path / "ffpp", tmp_path / "extract"
    truth = {
        "version": 1,
        "videos": {
            REL: {"fps": 25.0, "size": [W, H], "manipulated": [BOX, BOX], "others": [[], []]}
        },
    }
    root.mkdir()
    (root / "synth_truth.json").write_text(json.dumps(truth))
    masks = [hull_mask(face_points(LMS), H, W), ellipse_mask(BOX, H, W)]
    encode_video(root / mask_path(REL), [np.repeat(m[..., None] * 255, 3, 2) for m in masks], 25)
    frame = cv2.resize(np.random.default_rng(0).integers(0, 255, (30, 40, 3), np.uint8), (W, H))
    crop = crop_face(frame, BOX, 0.3, 224)
    vid = make_video_id("ffpp", REL)
    other = (10.0, 10.0, 60.0, 70.0)
    samples = [
        record(f"{vid}_s00000_0", 1, BOX, LMS, video_id=vid),
        record(f"{vid}_s00001_0", 1, BOX, LMS, video_id=vid, frame_index=1),
        record(f"{vid}_s00001_1", 1, other, LMS - 100, video_id=vid, frame_index=1),  # a bystander
        {**record("ffpp-f2f_s00000_0", 1, BOX, LMS), "method": "Face2Face"},  # not a face swap
    ]
    write_shard(extract / "shards" / "ffpp-000000.tar", [(s, crop) for s in samples])
    return extract, root


def test_the_measurement_finds_each_region_where_it_was_drawn(tiny_sample):
    result = measure_hull_iou(*tiny_sample, margin=0.3)
    rows = {r["frame_index"]: r for r in result.rows}
    assert len(result.rows) == 2 and result.skipped == {"not the manipulated face": 1}
    assert rows[0]["hull68"] > 0.95 and rows[0]["ellipse"] < rows[0]["hull68"] - 0.05
    assert rows[1]["ellipse"] > 0.95 and rows[1]["hull68"] < rows[1]["ellipse"] - 0.05
    assert rows[0]["hull81"] < rows[0]["hull68"]  # the forehead lies outside this mask
    s = summarise(result.rows)
    assert list(s) == ["FaceSwap", "all"] and s["all"]["crops"] == 2
    assert s["all"]["hull68"]["mean"] == pytest.approx(
        (rows[0]["hull68"] + rows[1]["hull68"]) / 2, abs=1e-3
    )


def test_command_line_prints_the_table_and_refuses_a_non_sample(tiny_sample, tmp_path):
    extract, root = tiny_sample
    out = tmp_path / "iou.json"
    r = CliRunner().invoke(app, [str(extract), str(root), "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "| all (2) | hull68 |" in r.output and "not the manipulated face 1" in r.output
    assert len(json.loads(out.read_text())["rows"]) == 2
    (root / "synth_truth.json").unlink()
    r = CliRunner().invoke(app, [str(extract), str(root)])
    assert r.exit_code == 2 and "synth_truth.json is missing" in r.output


def test_mask_path_is_ffpps_layout():
    assert mask_path(REL) == "manipulated_sequences/FaceSwap/masks/videos/000_001.mp4"
    with pytest.raises(InputError, match="not an FF"):
        mask_path("original_sequences/youtube/c23/videos/000.mp4")
