"""FF++-style manipulation masks: white where a fake's pixels differ from its original's.

FaceForensics++ ships, for every fake of its face-swap and reenactment methods except
FaceShifter, a binary mask video `manipulated_sequences/<method>/masks/videos/<target>_<source>.mp4`
of the same size, rate and length as the fake, white over the manipulated region. The sample
dataset writes the same: for each frame, the filled convex hull of the pixels where the fake, before
encoding, differs from the original by at least `THRESHOLD` in some channel (the blend's faint
feather tails and rounding are left out). A frame where nothing changed is all black.
"""

from __future__ import annotations

import cv2
import numpy as np

THRESHOLD = 3  # grey levels, in any channel
# x264 CRF of the mask videos: a black-and-white mask survives heavy compression (thresholded at
# 128 its edge moves by a pixel or so), and at the videos' CRF 23 the masks would weigh half as
# much as the videos themselves
CRF = 36


def changed_hull(fake: np.ndarray, original: np.ndarray) -> np.ndarray | None:
    """Convex hull (k, 1, 2) int32 of the pixels where two RGB frames differ, or None when none do."""
    diff = cv2.absdiff(fake, original).max(axis=2)
    points = cv2.findNonZero((diff >= THRESHOLD).astype(np.uint8))
    return None if points is None else cv2.convexHull(points)


def mask_frame(hull: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
    """The mask video's frame (h, w, 3) for a hull: white inside, black elsewhere."""
    w, h = size
    frame = np.zeros((h, w, 3), np.uint8)
    if hull is not None:
        cv2.fillConvexPoly(frame, hull, (255, 255, 255))
    return frame
