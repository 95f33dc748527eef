"""Frames of different sizes in one detector batch: each scaled to its detection size, then
placed at the top-left of a common canvas, the rest filled with the network's mean colour.

Top-left placement keeps detection pixels unchanged (a box found on the canvas is the box on the
scaled frame), so mapping back to source pixels is the usual scale and nothing else. The mean
colour is zero after the network's mean subtraction: the same value the network's own zero
padding gives its first layer. Whether a face near the right or bottom edge comes out the same on
a canvas as on the frame alone is measured in tests/test_detect_torch_letterbox.py and
docs/gpu.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dfprep.detectors.base import detection_size, resize_for_detection, round_up

# RGB order of the BGR training mean (104, 117, 127): the colour that becomes 0 in the network
MEAN_RGB = (127, 117, 104)


@dataclass(frozen=True)
class Prepared:
    """A frame scaled to its detection size, with the size of the source frame it came from:
    what a decode worker can send a detector process (640x360 instead of 1920x1080)."""

    image: np.ndarray  # RGB uint8, detection size
    source: tuple[int, int]  # (w, h) of the source frame

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]

    @property
    def scale(self) -> tuple[float, float]:
        """Source pixels per detection pixel."""
        return self.source[0] / self.size[0], self.source[1] / self.size[1]


def prepare(image: np.ndarray, max_size: int) -> Prepared:
    """`image` scaled as every backend scales it (longer side at most max_size, INTER_AREA)."""
    height, width = image.shape[:2]
    size = detection_size(width, height, max_size)
    return Prepared(resize_for_detection(image, size), (width, height))


def canvas_for(sizes: Sequence[tuple[int, int]], stride: int) -> tuple[int, int]:
    """The smallest (w, h) holding every size, rounded up to the network's stride."""
    if not sizes:
        raise ValueError("canvas_for: no sizes")
    return (
        round_up(max(w for w, _ in sizes), stride),
        round_up(max(h for _, h in sizes), stride),
    )


def letterbox(
    images: Sequence[np.ndarray], canvas: tuple[int, int], out: np.ndarray | None = None
) -> np.ndarray:
    """(B, H, W, 3) uint8: each image at the top-left of a canvas=(w, h) of the mean colour.

    `out`, when given, is filled in place (a reused, e.g. pinned, buffer of that shape)."""
    width, height = canvas
    shape = (len(images), height, width, 3)
    if out is None:
        out = np.empty(shape, np.uint8)
    elif out.shape != shape or out.dtype != np.uint8:
        raise ValueError(f"letterbox: out is {out.shape} {out.dtype}, expected {shape} uint8")
    for i, image in enumerate(images):
        h, w = image.shape[:2]
        if w > width or h > height:
            raise ValueError(
                f"letterbox: image {i} is {w}x{h}, larger than the {width}x{height} canvas"
            )
        out[i, :h, :w] = image
        out[i, :h, w:] = MEAN_RGB
        out[i, h:] = MEAN_RGB
    return out
