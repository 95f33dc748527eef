"""Face crops: the square around a detected box, as the paper (and FF++'s tooling) defines it.

The square has side (1 + margin) * max(w, h), centred on the box centre. Pixels outside the frame
are black, so the face stays centred in the crop even at the frame border (FF++'s code clips the
box instead, which shifts and shrinks border faces).
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def square_box(box: tuple[float, float, float, float], margin: float) -> tuple[int, int, int]:
    """(x0, y0, side) in integer source pixels of the enlarged square around box=(x1, y1, x2, y2)."""
    x1, y1, x2, y2 = box
    side = (1.0 + margin) * max(x2 - x1, y2 - y1)
    side_px = max(1, round(side))
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    x0 = math.floor(cx - side_px / 2.0 + 0.5)
    y0 = math.floor(cy - side_px / 2.0 + 0.5)
    return x0, y0, side_px


def cut_square(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """image[y0:y0+side, x0:x0+side] with black fill where the square leaves the frame."""
    h, w = image.shape[:2]
    out = np.zeros((side, side, image.shape[2]), dtype=image.dtype)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def crop_face(
    image: np.ndarray, box: tuple[float, float, float, float], margin: float, size: int
) -> np.ndarray:
    """The size x size RGB crop of one face (area interpolation down, cubic up)."""
    x0, y0, side = square_box(box, margin)
    patch = cut_square(image, x0, y0, side)
    if side == size:
        return patch
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(patch, (size, size), interpolation=interp)


def box_in_crop(
    box: tuple[float, float, float, float], margin: float, size: int
) -> tuple[float, float, float, float]:
    """Where box lands inside its own crop (for checks and visualisation)."""
    x0, y0, side = square_box(box, margin)
    s = size / side
    x1, y1, x2, y2 = box
    return ((x1 - x0) * s, (y1 - y0) * s, (x2 - x0) * s, (y2 - y0) * s)
