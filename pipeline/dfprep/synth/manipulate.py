"""The project's own simple manipulations, so that the sample dataset's labels mean something.

Face swap (FS): another identity's face, aligned by its 5 landmarks with a similarity, colour
corrected and blended in with a feathered mask.
  - Deepfakes: the source face passes through a 96-px "autoencoder" bottleneck (so it is softer
    than its surroundings), an oval mask with a wide feather, Lab mean/std colour transfer.
  - FaceSwap: the source face at full resolution, a landmark-polygon mask with a narrow feather,
    RGB mean shift.
Reenactment (RE): the target keeps its identity, its expression is driven over time by the
source's `Drive` (a few sine parameters): the mouth opens and the eyes squint.
  - Face2Face: mouth opening and eye squint, a dark mouth interior.
  - NeuralTextures: mouth only, speech-like bursts, the mouth region re-rendered smoother.
Every change stays inside a region around the face: the rest of the frame is untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from dfprep.synth.faces import TEMPLATE, apply_affine, similarity

FS_METHODS = ("Deepfakes", "FaceSwap")
RE_METHODS = ("Face2Face", "NeuralTextures")
METHODS = (*FS_METHODS, *RE_METHODS)

_BOTTLENECK = 96
_FIELD_STEP = 4
# Mask outlines in ArcFace template space (112 px).
_POLYGON = np.array(
    [[22, 38], [90, 38], [96, 76], [84, 104], [56, 114], [28, 104], [16, 76]], np.float64
)


def _roi(points: np.ndarray, shape: tuple[int, ...], pad: float) -> tuple[int, int, int, int]:
    """Integer x0, y0, x1, y1 around points, padded, clipped to the image."""
    h, w = shape[:2]
    x0, y0 = np.floor(points.min(0) - pad).astype(int)
    x1, y1 = np.ceil(points.max(0) + pad).astype(int)
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _shifted(m: np.ndarray, x0: int, y0: int) -> np.ndarray:
    out = np.array(m, np.float64)
    out[:, 2] -= (x0, y0)
    return out


def _lab_transfer(src: np.ndarray, dst: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """src recoloured so its Lab mean/std over `sel` match dst's."""
    a = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    b = cv2.cvtColor(dst, cv2.COLOR_RGB2LAB).astype(np.float32)
    ma, sa = a[sel].mean(0), a[sel].std(0) + 1e-3
    mb, sb = b[sel].mean(0), b[sel].std(0) + 1e-3
    out = (a - ma) * (sb / sa) + mb
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def _mean_shift(src: np.ndarray, dst: np.ndarray, sel: np.ndarray) -> np.ndarray:
    shift = dst[sel].astype(np.float32).mean(0) - src[sel].astype(np.float32).mean(0)
    return np.clip(src.astype(np.float32) + shift, 0, 255).astype(np.uint8)


def swap_face(
    target: np.ndarray,
    target_lms: np.ndarray,
    source: np.ndarray,
    source_lms: np.ndarray,
    method: str,
) -> np.ndarray:
    """`target` (RGB) with its face replaced by the face of `source`; a new array."""
    if method not in FS_METHODS:
        raise ValueError(f"unknown face-swap method {method!r} (use {', '.join(FS_METHODS)})")
    to_target = similarity(TEMPLATE, target_lms)
    unit = math.sqrt(abs(np.linalg.det(to_target[:, :2])))  # target pixels per template pixel
    if method == "Deepfakes":
        outline = cv2.ellipse2Poly((56, 72), (34, 44), 0, 0, 360, 5).astype(np.float64)
        feather, shrink = 6.0 * unit, 0.92
    else:
        outline, feather, shrink = _POLYGON, 2.5 * unit, 0.96
    outline = (outline - (56, 72)) * shrink + (56, 72)
    x0, y0, x1, y1 = _roi(apply_affine(to_target, outline), target.shape, 3 * feather + 2)
    size = (x1 - x0, y1 - y0)
    roi = target[y0:y1, x0:x1]
    if method == "Deepfakes":
        k = _BOTTLENECK / 112.0
        face = cv2.warpAffine(
            source,
            similarity(source_lms, TEMPLATE * k),
            (_BOTTLENECK, _BOTTLENECK),
            flags=cv2.INTER_AREA,
            borderMode=cv2.BORDER_REPLICATE,
        )
        warped = cv2.warpAffine(
            face,
            _shifted(similarity(TEMPLATE * k, target_lms), x0, y0),
            size,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    else:
        warped = cv2.warpAffine(
            source,
            _shifted(similarity(source_lms, target_lms), x0, y0),
            size,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    mask = np.zeros(roi.shape[:2], np.float32)
    poly = apply_affine(_shifted(to_target, x0, y0), outline)
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    # only where the source photo has pixels (a small photo must not smear its border in)
    valid = cv2.warpAffine(
        np.ones(source.shape[:2], np.float32),
        _shifted(similarity(source_lms, target_lms), x0, y0),
        size,
        flags=cv2.INTER_LINEAR,
        borderValue=0.0,
    )
    mask *= cv2.erode(valid, np.ones((3, 3), np.uint8), iterations=max(1, round(feather)))
    sel = mask > 0.5
    if not sel.any():  # the face is outside the image: nothing to swap
        return target.copy()
    warped = (
        _lab_transfer(warped, roi, sel) if method == "Deepfakes" else _mean_shift(warped, roi, sel)
    )
    mask = cv2.GaussianBlur(mask, (0, 0), feather)[..., None]
    out = target.copy()
    out[y0:y1, x0:x1] = np.clip(roi * (1 - mask) + warped * mask + 0.5, 0, 255).astype(np.uint8)
    return out


@dataclass(frozen=True)
class Drive:
    """The source actor's expression over time, as a few sine parameters."""

    freq: float  # mouth cycles per second
    phase: float
    mouth: float  # largest lower-lip drop, in eye-to-mouth distances
    squint: float  # largest relative eye narrowing
    eye_freq: float


def random_drive(rng: np.random.Generator) -> Drive:
    return Drive(
        freq=float(rng.uniform(0.6, 1.4)),
        phase=float(rng.uniform(0, 2 * math.pi)),
        mouth=float(rng.uniform(0.16, 0.24)),
        squint=float(rng.uniform(0.5, 0.8)),
        eye_freq=float(rng.uniform(0.3, 0.7)),
    )


def _face_axes(lms: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Unit 'right' and 'down' vectors of the (possibly rolled) face, and the eye-to-mouth length."""
    eyes, mouth = lms[:2].mean(0), lms[3:5].mean(0)
    right = lms[1] - lms[0]
    right = right / (np.linalg.norm(right) + 1e-9)
    down = np.array([-right[1], right[0]])
    if np.dot(down, mouth - eyes) < 0:
        down = -down
    return right, down, float(np.linalg.norm(mouth - eyes))


def _displacement(
    roi: tuple[int, int, int, int], lms: np.ndarray, u: float, drop: float, squint: float, sa: float
) -> tuple[np.ndarray, np.ndarray]:
    """Backward displacement (dx, dy) over the ROI: output pixel p samples the input at p + d.

    Computed on a grid 4x coarser and resized: the field is smooth, and this is 10x cheaper.
    """
    x0, y0, x1, y1 = roi
    right, down, _ = _face_axes(lms)
    step = _FIELD_STEP
    gx, gy = np.meshgrid(
        np.arange(x0, x1 + step, step, dtype=np.float32),
        np.arange(y0, y1 + step, step, dtype=np.float32),
    )
    mouth = lms[3:5].mean(0)
    a = (gx - mouth[0]) * right[0] + (gy - mouth[1]) * right[1]
    b = (gx - mouth[0]) * down[0] + (gy - mouth[1]) * down[1]
    gate = 1.0 / (1.0 + np.exp(-np.clip(b / (0.06 * u), -30, 30)))
    along = (
        -drop * np.exp(-(a**2) / (2 * sa**2) - (b - 0.3 * u) ** 2 / (2 * (0.35 * u) ** 2)) * gate
    )
    if squint > 0:
        eye_dist = float(np.linalg.norm(lms[1] - lms[0]))
        for eye in lms[:2]:
            ea = (gx - eye[0]) * right[0] + (gy - eye[1]) * right[1]
            eb = (gx - eye[0]) * down[0] + (gy - eye[1]) * down[1]
            along += (
                squint
                * eb
                * np.exp(
                    -(ea**2) / (2 * (0.3 * eye_dist) ** 2) - eb**2 / (2 * (0.2 * eye_dist) ** 2)
                )
            )
    # resize so that coarse sample k lands on pixel k * step exactly
    h, w = y1 - y0, x1 - x0
    along = along.astype(np.float32)
    full = cv2.resize(
        along, (along.shape[1] * step, along.shape[0] * step), interpolation=cv2.INTER_LINEAR
    )
    shift = (step - 1) / 2  # resize puts coarse sample k at (k + 0.5) * step - 0.5
    full = cv2.warpAffine(
        full,
        np.array([[1, 0, -shift], [0, 1, -shift]], np.float32),
        (w, h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return (full * down[0]).astype(np.float32), (full * down[1]).astype(np.float32)


def _blend_ellipse(
    roi: np.ndarray,
    centre: np.ndarray,
    axes: tuple[float, float],
    angle: float,
    sigma: float,
    colour_or_image,
    weight: float,
) -> None:
    """In place: blend a feathered ellipse of a colour (or of an image the ROI's shape) into roi."""
    h, w = roi.shape[:2]
    r = int(max(axes) + 3 * sigma + 2)
    cx, cy = round(centre[0]), round(centre[1])
    bx0, by0, bx1, by1 = max(0, cx - r), max(0, cy - r), min(w, cx + r), min(h, cy + r)
    if bx1 <= bx0 or by1 <= by0:
        return
    m = np.zeros((by1 - by0, bx1 - bx0), np.float32)
    cv2.ellipse(
        m,
        (cx - bx0, cy - by0),
        (max(1, round(axes[0])), max(1, round(axes[1]))),
        angle,
        0,
        360,
        1.0,
        -1,
        cv2.LINE_AA,
    )
    m = cv2.GaussianBlur(m, (0, 0), sigma)[..., None] * weight
    patch = roi[by0:by1, bx0:bx1].astype(np.float32)
    other = (
        colour_or_image(roi, (bx0, by0, bx1, by1)) if callable(colour_or_image) else colour_or_image
    )
    roi[by0:by1, bx0:bx1] = np.clip(patch * (1 - m) + other * m + 0.5, 0, 255).astype(np.uint8)


def reenact(frame: np.ndarray, lms: np.ndarray, t: float, drive: Drive, method: str) -> np.ndarray:
    """`frame` with the face's expression at time t driven by `drive`; a new array."""
    if method not in RE_METHODS:
        raise ValueError(f"unknown reenactment method {method!r} (use {', '.join(RE_METHODS)})")
    lms = np.asarray(lms, np.float64)
    right, down, u = _face_axes(lms)
    if method == "Face2Face":
        opening = 0.5 - 0.5 * math.cos(2 * math.pi * drive.freq * t + drive.phase)
        squint = drive.squint * (
            0.5 - 0.5 * math.cos(2 * math.pi * drive.eye_freq * t + drive.phase)
        )
    else:
        opening = abs(math.sin(math.pi * drive.freq * 1.7 * t + drive.phase)) ** 1.5
        squint = 0.0
    drop = opening * drive.mouth * u
    width = float(np.linalg.norm(lms[4] - lms[3]))
    box = _roi(lms, frame.shape, 1.6 * u)
    x0, y0, x1, y1 = box
    if x1 - x0 < 4 or y1 - y0 < 4:
        return frame.copy()
    sa = (0.55 if method == "Face2Face" else 0.45) * width
    dx, dy = _displacement(box, lms, u, drop, squint, sa)
    gx, gy = np.meshgrid(np.arange(x1 - x0, dtype=np.float32), np.arange(y1 - y0, dtype=np.float32))
    out = frame.copy()
    roi = cv2.remap(
        frame[y0:y1, x0:x1], gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    mouth = lms[3:5].mean(0) - (x0, y0)
    angle = math.degrees(math.atan2(right[1], right[0]))
    if drop > 1.0:
        # the opened gap between the lips: dark (Face2Face) or a lighter rendered one
        colour = np.array((55, 18, 24) if method == "Face2Face" else (95, 45, 50), np.float32)
        centre = mouth + down * (0.05 * u + drop / 2)
        _blend_ellipse(
            roi, centre, (0.36 * width, drop / 2), angle, max(0.8, 0.02 * u), colour, 0.85
        )
    if method == "NeuralTextures":

        def smoothed(img: np.ndarray, b: tuple[int, int, int, int]) -> np.ndarray:
            sigma = max(1.0, 0.015 * u)
            p = int(3 * sigma + 1)
            px0, py0 = max(0, b[0] - p), max(0, b[1] - p)
            blur = cv2.GaussianBlur(img[py0 : b[3] + p, px0 : b[2] + p], (0, 0), sigma)
            return blur[b[1] - py0 : b[3] - py0, b[0] - px0 : b[2] - px0].astype(np.float32)

        _blend_ellipse(roi, mouth, (0.9 * width, 0.5 * u), angle, max(1.0, 0.08 * u), smoothed, 1.0)
    out[y0:y1, x0:x1] = roi
    return out
