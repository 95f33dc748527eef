"""A face hull from RetinaFace's 5 points: a mean 68-point face fitted by a similarity.

SBI draws its blending mask as the convex hull of 68 (or 81) dlib landmarks; the shards carry only
the detector's 5 points (the subject's right eye, left eye, nose tip, right and left mouth corner).
The mean shape is insightface's `meanshape_68.pkl` (iBUG 68 order: 0-16 jaw, 17-26 brows, 27-35
nose with 30 the tip, 36-41 the subject's right eye, 42-47 the left, 48 and 54 the mouth corners),
a 3-D shape of which x, y are used. Each face gets the least-squares similarity (rotation, scale,
translation) that maps the shape's eye centres and mouth corners onto the detector's; the nose is
left out of the fit because the shape's nose tip, a 3-D point, lies higher than where 2-D
annotations put it (y 64.6 in ArcFace's 112-pixel frame, against 71.7 for RetinaFace's mean point,
the ArcFace template, and 73.7 for dlib's). Checked against OpenFace's published 2-D mean
of dlib's 68 points placed by the same 4 points: hull IoU 0.93 (0.92 fitting all 5). Pose beyond
roll is not modelled. SBI's 81-point hull adds 13 forehead points (the hairline); `forehead`
builds them as an arc over the brows (see `forehead_points`).

Points are (x, y) in pixel coordinates with the origin at the image's corner (pixel i spans
[i, i + 1)), the convention of the detector's boxes and `dfprep.crop.box_in_crop`.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import pickle
from pathlib import Path

import cv2
import numpy as np

from dfprep.core.errors import InputError
from dfprep.crop import square_box

__all__ = [
    "ARCFACE_TEMPLATE",
    "FIT",
    "FIVE_POINTS",
    "crop_landmarks",
    "ellipse_mask",
    "face_points",
    "fit_similarity",
    "five_points",
    "forehead_points",
    "hull_mask",
    "mean_shape",
    "valid_landmarks",
]

# ArcFace's 112 x 112 alignment template (insightface.utils.face_align.arcface_dst; a test checks),
# in the detector's order: the subject's right eye, left eye, nose tip, right and left mouth corner.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
# The 68-point indices that correspond to the detector's 5 points (a range: its centre).
FIVE_POINTS = (range(36, 42), range(42, 48), range(30, 31), range(48, 49), range(54, 55))
MEANSHAPE = ("insightface", "data/objects/meanshape_68.pkl")
FIT = (0, 1, 3, 4)  # of the 5 points, those the similarity is fitted to: eyes and mouth corners
FOREHEAD_POINTS = 13  # as SBI's 81-point model (68 + 13)


def _package_file(package: str, rel: str) -> Path:
    """A data file of an installed package, found without importing the package (insightface's
    import loads ONNX Runtime: seconds and memory in every loader worker)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"package {package!r} is not installed (needed for {rel})")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / rel
        if path.is_file():
            return path
    raise InputError(f"{package}: {rel} is missing from the installed package")


def five_points(shape: np.ndarray) -> np.ndarray:
    """The detector's 5 points of a 68-point shape: eye centres, nose tip, mouth corners."""
    return np.array([shape[list(r)].mean(0) for r in FIVE_POINTS])


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares similarity (no reflection) mapping points src onto dst, as a 2 x 3 matrix.

    Closed form (Umeyama's, written with complex numbers): a = sum(dst' conj(src')) / sum|src'|^2
    over the centred points is scale times rotation, and the translation maps centroid to centroid.
    """
    z = np.asarray(src, np.float64) @ (1, 1j)
    w = np.asarray(dst, np.float64) @ (1, 1j)
    zc, wc = z - z.mean(), w - w.mean()
    norm = float(np.sum(np.abs(zc) ** 2))
    if not norm > 0:
        raise ValueError("cannot fit a similarity to points that all coincide")
    a = np.sum(wc * np.conj(zc)) / norm
    b = w.mean() - a * z.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(pts, np.float64) @ m[:, :2].T + m[:, 2]


@functools.cache
def _mean_shape() -> np.ndarray:
    with open(_package_file(*MEANSHAPE), "rb") as f:
        shape3d = np.asarray(pickle.load(f), np.float64)  # an installed package's own data file
    if shape3d.shape != (68, 3):
        raise InputError(f"{MEANSHAPE[1]}: expected 68 x 3 points, got {shape3d.shape}")
    # in ArcFace's template frame, so that lengths read in a familiar unit (112-pixel faces)
    five = five_points(shape3d[:, :2])[list(FIT)]
    shape = _apply(fit_similarity(five, ARCFACE_TEMPLATE[list(FIT)]), shape3d[:, :2])
    shape.setflags(write=False)
    return shape


def mean_shape() -> np.ndarray:
    """The 68-point mean face (68 x 2, read-only), in ArcFace's 112-pixel template frame."""
    return _mean_shape()


def forehead_points(shape: np.ndarray, height: float) -> np.ndarray:
    """13 points on an arc over the forehead, from jaw point 0 to jaw point 16 (SBI's 81-point
    model traces the hairline with 13). The arc is the upper half of an ellipse through the two
    jaw ends whose top lies `height` brow-to-nose lengths (brow line to nose base, point 33)
    above the brows: 1 is the face's rule of thirds, a hairline as high above the brows as the
    nose base is below them. Built in the mean shape's upright frame, then fitted with it."""
    left, right = shape[0], shape[16]
    centre = (left + right) / 2
    brow = shape[17:27, 1].mean()
    top = brow - height * (shape[33, 1] - brow)
    a, b = (right[0] - left[0]) / 2, max(centre[1] - top, 0.0)
    theta = np.linspace(math.pi, 2 * math.pi, FOREHEAD_POINTS + 2)[1:-1]
    return np.stack([centre[0] + a * np.cos(theta), centre[1] + b * np.sin(theta)], 1)


def valid_landmarks(landmarks: object) -> bool:
    """Whether a crop's landmarks can place a face: 10 finite numbers whose eyes and mouth
    corners are not one point (a publisher's shipped face crop has zeros)."""
    try:
        pts = np.asarray(landmarks, np.float64).reshape(5, 2)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(pts).all() and np.ptp(pts[list(FIT)], 0).max() > 0)


def _five(landmarks: object) -> np.ndarray:
    if not valid_landmarks(landmarks):
        raise InputError(
            f"landmarks {np.asarray(landmarks).ravel().tolist()}: expected 5 finite points (x, y), eyes and mouth apart"
        )
    return np.asarray(landmarks, np.float64).reshape(5, 2)


def face_points(landmarks: object, forehead: float = 0.0) -> np.ndarray:
    """The mean face fitted to 5 detected points (10 numbers, the detector's order): 68 x 2, or
    81 x 2 with the forehead arc when `forehead` > 0 (its height, see `forehead_points`)."""
    shape = mean_shape()
    if forehead > 0:
        shape = np.concatenate([shape, forehead_points(shape, forehead)])
    fit = list(FIT)
    m = fit_similarity(five_points(mean_shape())[fit], _five(landmarks)[fit])
    return _apply(m, shape)


def hull_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """The filled convex hull of points (pixel-corner coordinates) as a uint8 0/1 mask, with
    1/16-pixel vertex precision; whatever lies outside the image is cut off."""
    mask = np.zeros((height, width), np.uint8)
    pts = np.asarray(points, np.float64) - 0.5  # cv2 puts integer coordinates at pixel centres
    if not np.isfinite(pts).all():
        raise InputError("face hull: non-finite points")
    big = 4 * max(height, width)  # far outside the image, still within cv2's int range at shift 4
    fixed = np.round(np.clip(pts, -big, big) * 16).astype(np.int32)
    hull = cv2.convexHull(fixed)
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=4)
    return mask


def ellipse_mask(box: tuple[float, float, float, float], height: int, width: int) -> np.ndarray:
    """The ellipse inscribed in a box (x1, y1, x2, y2): the landmark-free baseline face region."""
    x1, y1, x2, y2 = box
    mask = np.zeros((height, width), np.uint8)
    centre = (round((x1 + x2) / 2 * 16 - 8), round((y1 + y2) / 2 * 16 - 8))
    axes = (max(0, round((x2 - x1) / 2 * 16)), max(0, round((y2 - y1) / 2 * 16)))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, thickness=-1, lineType=cv2.LINE_8, shift=4)
    return mask


def crop_landmarks(
    bbox: tuple[float, float, float, float], landmarks: object, margin: float, size: int
) -> np.ndarray:
    """A crop's 5 landmarks (source-frame pixels, as its .json holds them) in the crop's pixels:
    the crop is the square `dfprep.crop.square_box(bbox, margin)` resized to size x size."""
    x0, y0, side = square_box(tuple(float(v) for v in bbox), margin)
    return (_five(landmarks) - (x0, y0)) * (size / side)
