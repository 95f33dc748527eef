"""The face hull from 5 points: the mean shape's order, the similarity fit, crop geometry."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from dfprep.core.errors import InputError
from dfprep.crop import box_in_crop, crop_face
from dftrain.sbi.shape import (
    ARCFACE_TEMPLATE,
    FIT,
    crop_landmarks,
    ellipse_mask,
    face_points,
    fit_similarity,
    five_points,
    forehead_points,
    hull_mask,
    mean_shape,
    valid_landmarks,
)


def similarity(scale: float, degrees: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(degrees)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]])


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def test_mean_shape_is_in_ibug_order_and_matches_the_detector_points():
    m = mean_shape()
    assert m.shape == (68, 2) and not m.flags.writeable
    x, y = m[:, 0], m[:, 1]
    assert x[0] < x[8] < x[16]  # jaw from the subject's right (image left) to the left
    assert int(np.argmax(y)) == 8  # the chin is the lowest point
    right_eye, left_eye = m[36:42].mean(0), m[42:48].mean(0)
    assert (
        right_eye[0] < left_eye[0]
    )  # the subject's right eye is image-left, as RetinaFace's first
    assert m[17:27, 1].max() < min(right_eye[1], left_eye[1])  # brows above the eyes
    assert max(right_eye[1], left_eye[1]) < y[30] < min(y[48], y[54])  # eyes, nose tip, mouth
    assert abs(x[30] - (x[0] + x[16]) / 2) < 1.5  # the nose tip on the midline
    assert x[48] < x[54]
    # placed on ArcFace's template by eyes and mouth corners: each within 1.5 px (of 112)
    five = five_points(m)
    assert np.abs(five[list(FIT)] - ARCFACE_TEMPLATE[list(FIT)]).max() < 1.5


def test_arcface_template_is_insightfaces():
    from insightface.utils.face_align import arcface_dst

    np.testing.assert_allclose(ARCFACE_TEMPLATE, arcface_dst, atol=1e-4)


@pytest.mark.parametrize(
    "params", [(1.0, 0.0, 0.0, 0.0), (2.7, 31.0, 120.5, -40.25), (0.31, -170.0, 5.0, 9.0)]
)
def test_fit_similarity_recovers_a_known_transform(params):
    m = similarity(*params)
    src = np.random.default_rng(1).uniform(-50, 50, (7, 2))
    np.testing.assert_allclose(fit_similarity(src, apply(m, src)), m, atol=1e-9)


def test_face_points_recover_the_transformed_mean_face():
    m = similarity(1.9, 12.0, 40.0, 25.0)
    landmarks = apply(m, five_points(mean_shape()))
    pts = face_points(landmarks.ravel().tolist())  # 10 numbers, as a crop's .json holds them
    np.testing.assert_allclose(pts, apply(m, mean_shape()), atol=1e-9)
    with_forehead = face_points(landmarks, forehead=1.0)
    assert with_forehead.shape == (81, 2)
    np.testing.assert_allclose(with_forehead[:68], pts, atol=1e-9)
    np.testing.assert_allclose(
        with_forehead[68:], apply(m, forehead_points(mean_shape(), 1.0)), atol=1e-9
    )


def test_forehead_arc_rises_over_the_brows_by_its_height():
    m = mean_shape()
    brow = m[17:27, 1].mean()
    for height in (0.5, 1.0, 2.0):
        arc = forehead_points(m, height)
        assert arc.shape == (13, 2)
        assert m[0, 0] < arc[:, 0].min() and arc[:, 0].max() < m[16, 0]  # between the jaw ends
        top = brow - height * (m[33, 1] - brow)
        assert top <= arc[:, 1].min() < top + 1.0  # the middle point is at the top


@pytest.mark.parametrize(
    "bad",
    [[0.0] * 10, [1.0, 2.0] * 5, [float("nan")] + [1.0] * 9, [1.0] * 8, "abc", None],
)
def test_unusable_landmarks_are_refused_in_one_line(bad):
    assert not valid_landmarks(bad)
    with pytest.raises(InputError) as e:
        face_points(bad)
    assert "\n" not in str(e.value) and "landmarks" in str(e.value)


def test_crop_landmarks_land_where_the_crop_puts_the_pixels():
    frame = np.zeros((300, 400, 3), np.uint8)
    pixels = np.array([[150, 120], [210, 118], [181, 150], [160, 181], [205, 183]])
    for x, y in pixels:
        frame[y - 1 : y + 2, x - 1 : x + 2] = 255  # 3 x 3 dots centred on the pixel
    bbox = (130.0, 95.0, 232.0, 215.0)
    lms = crop_landmarks(bbox, (pixels + 0.5).ravel(), 0.3, 224)  # pixel centres
    crop = crop_face(frame, bbox, 0.3, 224)[..., 0].astype(np.float64)
    _, labels = cv2.connectedComponents((crop > 20).astype(np.uint8))
    for p in lms:
        blob = labels == labels[int(p[1]), int(p[0])]
        w = crop * blob
        ys, xs = np.indices(crop.shape)
        centroid = np.array([(w * xs).sum(), (w * ys).sum()]) / w.sum() + 0.5
        assert np.abs(centroid - p).max() < 0.35
    # the box's corners, given as points, go where box_in_crop puts them
    corners = [bbox[0], bbox[1], bbox[2], bbox[3], bbox[0], bbox[3], bbox[2], bbox[1], 150, 150]
    got = crop_landmarks(bbox, corners, 0.3, 224)
    np.testing.assert_allclose(got[:2].ravel(), box_in_crop(bbox, 0.3, 224), atol=1e-9)


def test_hull_and_ellipse_masks():
    square = np.array([[10, 20], [60, 20], [60, 70], [10, 70], [35, 45]])  # a point inside too
    mask = hull_mask(square, 100, 100)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    # pixel-corner coordinates: the pixels inside, and OpenCV's edge pixels (at most one more)
    ys, xs = np.nonzero(mask)
    assert (
        mask[20:70, 10:60].all()
        and xs.min() >= 10
        and xs.max() <= 60
        and ys.min() >= 20
        and ys.max() <= 70
    )
    # a hull leaving the image is cut off, not wrapped or refused
    cut = hull_mask(square + np.array([80, 0]), 100, 100)
    assert cut[20:70, 90:].all() and not cut[:, :89].any()
    assert not hull_mask(square + 1000, 100, 100).any()
    e = ellipse_mask((20.0, 10.0, 80.0, 90.0), 100, 100)
    area = math.pi * 30 * 40  # and the edge pixels, as for the hull: 2 % more here
    assert area <= e.sum() < 1.04 * area
    assert e[50, 50] == 1 and e[5, 50] == 0 and e[50, 15] == 0
