"""A still scene for the camera to film: a portrait composited over a smooth made-up background.

The canvas is drawn at the output frame's pixel scale and is 1.6x the frame each way, so the
camera's pan and zoom never show its edge; the face centre is the canvas centre (the anchor).
Smooth backgrounds keep the files small (the whole sample dataset stays a few MB).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dfprep.synth.faces import Portrait, apply_affine

CANVAS_FACTOR = 1.6


@dataclass(frozen=True)
class Scene:
    canvas: np.ndarray  # RGB uint8
    box: np.ndarray  # face box x1, y1, x2, y2 in canvas pixels
    landmarks: np.ndarray  # (5, 2) in canvas pixels
    anchor: tuple[float, float]  # the face centre
    size: tuple[int, int]  # w, h of the frames it is made for


def background(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A soft room-like backdrop: a vertical two-colour gradient with a few blurred blocks and discs."""
    h, w = shape
    sh, sw = max(8, h // 8), max(8, w // 8)
    top, bottom = rng.uniform(60, 210, 3), rng.uniform(40, 180, 3)
    top, bottom = 0.6 * top + 0.4 * top.mean(), 0.6 * bottom + 0.4 * bottom.mean()  # muted
    ramp = np.linspace(0.0, 1.0, sh, dtype=np.float32)[:, None, None]
    small = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (sh, sw, 3)).copy()
    for _ in range(int(rng.integers(4, 9))):
        c = rng.uniform(30, 225, 3)
        colour = tuple(float(v) for v in 0.6 * c + 0.4 * c.mean())
        x, y = int(rng.integers(0, sw)), int(rng.integers(0, sh))
        if rng.random() < 0.5:
            cv2.rectangle(
                small,
                (x, y),
                (
                    x + int(rng.integers(sw // 10, sw // 3)),
                    y + int(rng.integers(sh // 10, sh // 2)),
                ),
                colour,
                -1,
            )
        else:
            cv2.circle(small, (x, y), int(rng.integers(sh // 12, sh // 4)), colour, -1)
    small = cv2.GaussianBlur(small, (0, 0), 1.5)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(
        np.uint8
    )


def build_scene(
    portrait: Portrait, size: tuple[int, int], face_frac: float, rng: np.random.Generator
) -> Scene:
    """Place the portrait so its face box is `face_frac` of the frame height, centred in the canvas."""
    w, h = size
    cw, ch = int(np.ceil(CANVAS_FACTOR * w)), int(np.ceil(CANVAS_FACTOR * h))
    canvas = background(rng, (ch, cw))
    x1, y1, x2, y2 = portrait.box
    s = face_frac * h / (y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    m = np.array([[s, 0, cw / 2 - s * cx], [0, s, ch / 2 - s * cy]], np.float64)
    box, landmarks = paste(canvas, portrait, m)
    return Scene(canvas, box, landmarks, (cw / 2, ch / 2), (w, h))


def paste(canvas: np.ndarray, portrait: Portrait, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In place: composite the portrait through the scale-and-shift `m` (portrait -> canvas pixels)
    over the canvas; returns the face box (x1, y1, x2, y2) and landmarks (5, 2) in canvas pixels."""
    ch, cw = canvas.shape[:2]
    # composite only where the portrait lands (keeps 1080p canvases cheap)
    ph, pw = portrait.rgb.shape[:2]
    corners = apply_affine(m, np.array([[0, 0], [pw, ph]], np.float64))
    rx0, ry0 = (max(0, int(np.floor(v)) - 1) for v in corners[0])
    rx1, ry1 = min(cw, int(np.ceil(corners[1][0])) + 1), min(ch, int(np.ceil(corners[1][1])) + 1)
    if rx1 > rx0 and ry1 > ry0:
        mr = m.copy()
        mr[:, 2] -= (rx0, ry0)
        roi = (rx1 - rx0, ry1 - ry0)
        rgb = cv2.warpAffine(portrait.rgb, mr, roi, flags=cv2.INTER_CUBIC).astype(np.float32)
        alpha = cv2.warpAffine(portrait.alpha, mr, roi, flags=cv2.INTER_LINEAR)[..., None]
        under = canvas[ry0:ry1, rx0:rx1].astype(np.float32)
        canvas[ry0:ry1, rx0:rx1] = np.clip(under * (1 - alpha) + rgb * alpha + 0.5, 0, 255).astype(
            np.uint8
        )
    box = np.concatenate(
        [apply_affine(m, portrait.box[:2])[0], apply_affine(m, portrait.box[2:])[0]]
    )
    return box, apply_affine(m, portrait.landmarks)
