"""Frames of different sizes in one batch (letterboxed to a common canvas) give the faces each
frame gives alone, within the tolerance measured here; the letterbox geometry itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dfprep.config import DecodeConfig, DetectConfig
from dfprep.decode import open_sampled
from dfprep.detect import Face, get_detector
from dfprep.detectors.base import resize_for_detection
from dfprep.detectors.letterbox import MEAN_RGB, canvas_for, letterbox, prepare
from dfprep.detectors.retinaface_net import STRIDE, to_network_input
from dfprep.detectors.retinaface_torch import BatchedDetector

# Letterboxed against the ONNX backend on the frame alone, in DETECTION pixels (source pixels /
# the frame's scale), padded to the batch's largest size rounded up to 32 or to 640x640. On this
# test's 63 frames (81 faces): boxes at most 0.056 px (p99 0.05, median 0.003), landmarks 0.040
# px, scores 5.4e-4. On a 126-video copy of the sample (567 frames, 404 faces) the same, except
# where two overlapping anchors score within ~1e-4 of each other: the padding's effect on the
# scores (at most 6.6e-4) can make NMS keep the other one, and the box then moves by up to 1.53
# px, its landmarks by up to 2.02 px (2 faces in 405, both far from any padding).
LB_BOX_TOL = 2.0  # px, detection pixels
LB_BOX_P99 = 0.1  # px: the typical face moves by far less
LB_LANDMARK_TOL = 2.5  # px
LB_SCORE_TOL = 2e-3
EXACT_TOL = 1e-3  # px, source pixels: see tests/test_detect_torch.py


@pytest.fixture(scope="module")
def mixed_frames(sample_root) -> list[np.ndarray]:
    """The sampled frames of the sample's originals (five frame sizes), in an order that mixes
    sizes within every batch."""
    frames = []
    for path in sorted((sample_root / "original_sequences").rglob("*.mp4")):
        with open_sampled(path, DecodeConfig()) as (_info, sampled):
            frames += [f.image for f in sampled]
    order = np.random.default_rng(0).permutation(len(frames))
    return [frames[i] for i in order]


@pytest.fixture(scope="module")
def alone(mixed_frames) -> list[list[Face]]:
    return get_detector(DetectConfig()).detect(mixed_frames)


def differences_in_detection_pixels(frames, a, b) -> np.ndarray:
    """(n faces, 3): box px, landmark px, score; the face counts must agree frame by frame."""
    assert [len(f) for f in a] == [len(f) for f in b]
    rows = []
    for image, fa, fb in zip(frames, a, b, strict=True):
        scale = prepare(image, DetectConfig().max_size).scale[0]
        for x, y in zip(fa, fb, strict=True):
            rows.append(
                (
                    np.abs(np.subtract(x.box, y.box)).max() / scale,
                    np.abs(np.subtract(x.landmarks, y.landmarks)).max() / scale,
                    abs(x.score - y.score),
                )
            )
    return np.array(rows)


# --- the geometry -------------------------------------------------------------------------------


def test_the_canvas_holds_every_frame_at_the_networks_stride():
    assert canvas_for([(640, 360)], STRIDE) == (640, 384)
    assert canvas_for([(640, 360), (360, 640), (500, 280)], STRIDE) == (640, 640)
    assert canvas_for([(33, 64)], STRIDE) == (64, 64)
    with pytest.raises(ValueError, match="no sizes"):
        canvas_for([], STRIDE)


def test_frames_sit_top_left_on_the_networks_mean_colour():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (64, 30, 3), dtype=np.uint8)
    batch = letterbox([a, b], (96, 64))
    assert batch.shape == (2, 64, 96, 3) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch[0, :40, :70], a)
    np.testing.assert_array_equal(batch[1, :64, :30], b)
    pad = np.ones((2, 64, 96), bool)
    pad[0, :40, :70] = pad[1, :, :30] = False
    assert (batch[pad] == MEAN_RGB).all()
    # the fill is exactly zero where the network sees it (BGR minus its training mean)
    x = to_network_input(torch.from_numpy(batch))
    assert x.shape == (2, 3, 64, 96)
    assert (x[0, :, 40:, :] == 0).all() and (x[1, :, :, 30:] == 0).all()
    out = np.zeros((2, 64, 96, 3), np.uint8)
    assert letterbox([a, b], (96, 64), out=out) is out
    np.testing.assert_array_equal(out, batch)
    with pytest.raises(ValueError, match=r"image 1 is 30x64, larger than the 96x32 canvas"):
        letterbox([a[:32], b], (96, 32))
    with pytest.raises(ValueError, match=r"out is \(1, 64, 96, 3\)"):
        letterbox([a, b], (96, 64), out=out[:1])


def test_prepare_scales_as_every_backend_does():
    image = np.random.default_rng(2).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    p = prepare(image, 640)
    assert p.size == (640, 360) and p.source == (1920, 1080) and p.scale == (3.0, 3.0)
    np.testing.assert_array_equal(p.image, resize_for_detection(image, (640, 360)))
    small = image[:300, :500]
    assert prepare(small, 640).image is small and prepare(small, 640).scale == (1.0, 1.0)


# --- detection on a canvas vs on the frame alone --------------------------------------------------


@pytest.mark.parametrize("canvas", ["batch", (640, 640)])
def test_letterboxed_frames_give_the_faces_of_the_frame_alone(mixed_frames, alone, canvas):
    detector = BatchedDetector(DetectConfig(), "cpu", canvas=canvas, batch_size=8)
    boxed = detector.detect(mixed_frames)
    assert sum(map(len, alone)) >= len(mixed_frames)
    d = differences_in_detection_pixels(mixed_frames, alone, boxed)
    assert d[:, 0].max() <= LB_BOX_TOL and d[:, 1].max() <= LB_LANDMARK_TOL, d.max(axis=0)
    assert d[:, 2].max() <= LB_SCORE_TOL, d.max(axis=0)
    assert np.percentile(d[:, 0], 99) <= LB_BOX_P99


def test_a_fixed_canvas_makes_a_frames_faces_independent_of_its_batch(mixed_frames):
    frames = mixed_frames[:12]
    detector = BatchedDetector(DetectConfig(), "cpu", canvas=(640, 640), batch_size=12)
    together = detector.detect(frames)
    for image, faces in zip(frames, together, strict=True):
        [own] = detector.detect([image])
        assert len(own) == len(faces)
        for x, y in zip(own, faces, strict=True):
            np.testing.assert_allclose(x.box, y.box, atol=EXACT_TOL)
            np.testing.assert_allclose(x.landmarks, y.landmarks, atol=EXACT_TOL)


def test_prepared_frames_give_what_source_frames_give(mixed_frames):
    frames = mixed_frames[:6]
    detector = BatchedDetector(DetectConfig(), "cpu", canvas="batch")
    prepared = [prepare(image, detector.cfg.max_size) for image in frames]
    assert detector.detect_prepared(prepared) == detector.detect(frames)
    assert detector.detect_prepared([]) == []
