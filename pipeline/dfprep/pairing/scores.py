"""Which faces of a fake frame were manipulated: scores against its original or its mask (pure).

Diff score (the default source): both frames are brought to the same small grey image (longer
side `pair.compare_size`, a light Gaussian blur), and a face's score is the mean absolute grey
difference inside its box divided by the mean difference over the rest of the frame (outside
every face box), floored at `pair.noise_floor` grey levels. Re-encoding noise raises both alike
(score ~1); a swapped or re-enacted face raises its box alone. Mask score: the share of the box
that is white (> 127) in the publisher's mask at the same time.

A `Reference` is what an original's task hands to its fakes: its sampled frames (small, grey,
blurred: uint8, `compare_size` px on the longer side, ~57 KB per sample at 320 px) and all its
detected faces per sample, with its frame rate, duration and frame shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = [
    "Reference",
    "alignment_problem",
    "box_to_small",
    "diff_scores",
    "mask_scores",
    "small_grey",
    "ssim_scores",
]

BLUR_SIGMA = 1.0  # pixels of the small image: a light blur takes the codec's block noise out


def small_size(shape: tuple[int, ...], longer: int) -> tuple[int, int]:
    """(w, h) of an image of SHAPE (h, w, ...) scaled so its longer side is at most LONGER."""
    h, w = shape[:2]
    s = min(1.0, longer / max(h, w))
    return max(1, round(w * s)), max(1, round(h * s))


def small_grey(image: np.ndarray, size: tuple[int, int], blur: bool = True) -> np.ndarray:
    """RGB (or grey) uint8 -> grey uint8 of SIZE (w, h), lightly blurred."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    if (grey.shape[1], grey.shape[0]) != tuple(size):
        grey = cv2.resize(grey, tuple(size), interpolation=cv2.INTER_AREA)
    if blur:
        grey = cv2.GaussianBlur(grey, (0, 0), BLUR_SIGMA)
    return np.ascontiguousarray(grey)


def box_to_small(box, src_shape: tuple[int, ...], small_shape: tuple[int, ...]):
    """A box in source pixels -> integer (x1, y1, x2, y2) in the small image, clipped, non-empty."""
    sh, sw = src_shape[:2]
    h, w = small_shape[:2]
    fx, fy = w / sw, h / sh
    x1 = int(np.clip(np.floor(box[0] * fx), 0, w - 1))
    y1 = int(np.clip(np.floor(box[1] * fy), 0, h - 1))
    x2 = int(np.clip(np.ceil(box[2] * fx), x1 + 1, w))
    y2 = int(np.clip(np.ceil(box[3] * fy), y1 + 1, h))
    return x1, y1, x2, y2


def diff_scores(fake: np.ndarray, original: np.ndarray, boxes: list, floor: float) -> list[float]:
    """Per box (small-image pixels): mean |fake - original| inside it / the rest of the frame's."""
    d = cv2.absdiff(fake, original).astype(np.float32)
    outside = np.ones(d.shape, bool)
    for x1, y1, x2, y2 in boxes:
        outside[y1:y2, x1:x2] = False
    rest = float(d[outside].mean()) if outside.any() else 0.0
    level = max(rest, floor)
    return [float(d[y1:y2, x1:x2].mean()) / level for x1, y1, x2, y2 in boxes]


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Local SSIM of two grey uint8 images (Gaussian window, sigma 1.5; Wang et al. 2004)."""
    x, y = a.astype(np.float32), b.astype(np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z):
        return cv2.GaussianBlur(z, (7, 7), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def ssim_scores(fake: np.ndarray, original: np.ndarray, boxes: list, floor: float) -> list[float]:
    """As `diff_scores`, with the SSIM dissimilarity (1 - SSIM) / 2 in place of the grey
    difference; FLOOR is in grey levels, taken as that share of the range (floor / 255)."""
    d = (1.0 - ssim_map(fake, original)) / 2.0
    outside = np.ones(d.shape, bool)
    for x1, y1, x2, y2 in boxes:
        outside[y1:y2, x1:x2] = False
    rest = float(d[outside].mean()) if outside.any() else 0.0
    level = max(rest, floor / 255.0)
    return [float(d[y1:y2, x1:x2].mean()) / level for x1, y1, x2, y2 in boxes]


def mask_scores(mask: np.ndarray, boxes: list) -> list[float]:
    """Per box (small-image pixels): the share of its pixels that are white in the mask."""
    white = mask > 127
    return [float(white[y1:y2, x1:x2].mean()) for x1, y1, x2, y2 in boxes]


@dataclass
class Reference:
    """An original video's sampled frames and faces, for its fakes (see the module docstring)."""

    video_id: str
    fps: float = 0.0
    duration: float = 0.0
    shape: tuple[int, int] = (0, 0)  # (h, w) of its frames in display orientation
    frames: dict[int, tuple[float, np.ndarray]] = field(default_factory=dict)  # k -> (t, grey)
    faces: dict[int, list] = field(default_factory=dict)  # k -> every detected Face
    error: str = ""  # why its fakes cannot use it ("" = usable)

    @property
    def nbytes(self) -> int:
        return sum(g.nbytes for _, g in self.frames.values())

    def add(self, frame, faces: list, pc) -> None:
        """Keep one sampled FRAME (a SampledFrame) and all its FACES; past `pc.max_reference_mb`
        the reference is dropped (its fakes fall back, saying so)."""
        if not self.shape[0]:
            self.shape = tuple(frame.image.shape[:2])
        grey = small_grey(frame.image, small_size(self.shape, pc.compare_size))
        if self.nbytes + grey.nbytes > pc.max_reference_mb << 20:
            self.drop(f"original longer than pair.max_reference_mb ({pc.max_reference_mb} MB)")
            return
        self.frames[frame.sample_index] = (float(frame.time), grey)
        self.faces[frame.sample_index] = list(faces)

    def drop(self, why: str) -> None:
        """Unusable from now on (its memory freed): its fakes fall back, saying why."""
        self.frames.clear()
        self.faces.clear()
        self.error = why


def alignment_problem(
    fps: float,
    duration: float,
    ref: Reference,
    fps_tol: float,
    duration_tol: float,
    whose: str = "the original's",
) -> str:
    """Why a fake (FPS, DURATION) cannot be compared frame by frame with REF ("" = it can);
    WHOSE names REF in the reason (the original's, or the mask's)."""
    if abs(fps - ref.fps) > fps_tol:
        return f"frame rate {fps:.3f} vs {whose} {ref.fps:.3f}"
    if abs(duration - ref.duration) > duration_tol:
        return f"duration {duration:.2f} s vs {whose} {ref.duration:.2f} s"
    return ""


def aspect_problem(shape: tuple[int, ...], ref: Reference, tol: float = 0.01) -> str:
    """Why frames of SHAPE cannot be compared with REF's (another aspect ratio; "" = they can)."""
    h, w = shape[:2]
    rh, rw = ref.shape
    if not rh or abs(w / h - rw / rh) > tol * (rw / rh):
        return f"frame size {w}x{h} vs the original's {rw}x{rh}"
    return ""
