"""A slow hand-held camera over a still scene: pan, zoom and a small shake as smooth functions of time.

The camera never rotates, so a face box maps to the frame exactly (its corners go to the corners
of the new box). `shoot` renders a view as an integer crop plus a resize and returns the matrix it
really applied (the ideal one snapped to whole canvas pixels): that is the exact ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CameraPath:
    """Canvas -> frame mapping over time; the scene's anchor point lands near `anchor` in the frame."""

    scale: float  # canvas pixels -> frame pixels at rest
    anchor: tuple[float, float]  # frame position of the canvas anchor at rest
    zoom_amp: float  # relative zoom swing
    zoom_freq: float  # Hz
    pan_amp: tuple[float, float]  # frame pixels
    pan_freq: tuple[float, float]
    shake_amp: float  # frame pixels
    shake_freq: float
    phases: tuple[float, ...]  # 5 phases: zoom, pan x, pan y, shake x, shake y


def random_path(
    rng: np.random.Generator, size: tuple[int, int], scale: float = 1.0, motion: float = 1.0
) -> CameraPath:
    """A path whose anchor stays well inside a frame of `size` (w, h); `motion` scales every swing."""
    w, h = size
    return CameraPath(
        scale=scale,
        anchor=(w / 2 + rng.uniform(-0.08, 0.08) * w, h / 2 + rng.uniform(-0.04, 0.04) * h),
        zoom_amp=motion * rng.uniform(0.04, 0.10),
        zoom_freq=rng.uniform(0.08, 0.2),
        pan_amp=(motion * rng.uniform(0.03, 0.07) * w, motion * rng.uniform(0.02, 0.04) * h),
        pan_freq=(rng.uniform(0.1, 0.25), rng.uniform(0.1, 0.25)),
        shake_amp=motion * rng.uniform(0.002, 0.005) * h,
        shake_freq=rng.uniform(2.0, 4.0),
        phases=tuple(float(p) for p in rng.uniform(0, 2 * math.pi, 5)),
    )


def camera_matrix(path: CameraPath, t: float, canvas_anchor: tuple[float, float]) -> np.ndarray:
    """2x3 matrix taking canvas pixels to frame pixels at time t (seconds)."""
    pz, px, py, sx, sy = path.phases
    tau = 2 * math.pi * t
    z = path.scale * (1.0 + path.zoom_amp * math.sin(tau * path.zoom_freq + pz))
    fx = path.anchor[0] + path.pan_amp[0] * math.sin(tau * path.pan_freq[0] + px)
    fy = path.anchor[1] + path.pan_amp[1] * math.sin(tau * path.pan_freq[1] + py)
    fx += path.shake_amp * math.sin(tau * path.shake_freq + sx)
    fy += path.shake_amp * math.sin(tau * path.shake_freq * 1.37 + sy)
    ax, ay = canvas_anchor
    return np.array([[z, 0.0, fx - z * ax], [0.0, z, fy - z * ay]], np.float64)


def map_box(m: np.ndarray, box: np.ndarray) -> np.ndarray:
    """x1, y1, x2, y2 through a rotation-free affine."""
    x1, y1 = m[:, :2] @ box[:2] + m[:, 2]
    x2, y2 = m[:, :2] @ box[2:] + m[:, 2]
    return np.array([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)])


def shoot(
    canvas: np.ndarray, m: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """One frame (h, w, 3) of the canvas seen through m, and the matrix that was really applied.

    A rotation-free view is an integer crop and a resize (4x cheaper than warpAffine); the crop's
    origin snaps to whole canvas pixels, so the returned matrix, not m, is the exact ground truth.
    """
    w, h = size
    ch, cw = canvas.shape[:2]
    z = float(m[0, 0])
    crop_w, crop_h = max(2, round(w / z)), max(2, round(h / z))
    if crop_w > cw or crop_h > ch:
        frame = cv2.warpAffine(
            canvas, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        return frame, np.asarray(m, np.float64)
    x0 = min(max(round(-m[0, 2] / z), 0), cw - crop_w)
    y0 = min(max(round(-m[1, 2] / z), 0), ch - crop_h)
    frame = cv2.resize(
        canvas[y0 : y0 + crop_h, x0 : x0 + crop_w], size, interpolation=cv2.INTER_LINEAR
    )
    # cv2.resize samples source x at (x_dst + 0.5) * s - 0.5
    sx, sy = crop_w / w, crop_h / h
    real = np.array([[1 / sx, 0.0, (0.5 - x0) / sx - 0.5], [0.0, 1 / sy, (0.5 - y0) / sy - 0.5]])
    return frame, real
