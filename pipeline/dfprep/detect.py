"""Face detection: the contract every backend meets, the per-process detector cache, face selection.

Backends live in `dfprep.detectors`; each detects on the frame scaled down so its longer side is at
most `DetectConfig.max_size` and reports boxes and landmarks in SOURCE pixels, as floats, so the
crop step never sees the detector's working resolution. The shared part (Face, the protocol, the
registry, the helpers) is `dfprep.detectors.base`; this module re-exports it.
"""

from __future__ import annotations

from dfprep.config import DetectConfig
from dfprep.detectors.base import (  # noqa: F401  (the public face of detection)
    BACKENDS,
    Face,
    FaceDetector,
    Unpicklable,
    build_detector,
    check_images,
    detection_size,
    get_detector,
    ort_session,
    register_backend,
    resize_for_detection,
    round_up,
    to_faces,
)


def select_faces(faces: list[Face], cfg: DetectConfig, limit: int | None = None) -> list[Face]:
    """The faces worth cropping: big enough, largest first, at most LIMIT (default
    cfg.max_faces; 0 = all).

    Largest-first because a video's label belongs to its main subject; small background faces
    in a fake video may well be real. Faces of nearly the same size (areas within
    `cfg.size_tie` of the largest one left) are a tie that the area cannot break fairly, so a
    dark, blurry face would win as easily as a sharp one: the detector's score goes first
    among them.
    """
    big = [f for f in faces if max(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= cfg.min_face_size]
    big.sort(key=lambda f: (_area(f), f.score), reverse=True)
    limit = cfg.max_faces if limit is None else limit
    n = len(big) if limit <= 0 else min(limit, len(big))
    out: list[Face] = []
    while len(out) < n:
        floor = (1.0 - cfg.size_tie) * _area(big[0])
        near = [f for f in big if _area(f) >= floor]  # a prefix: big is sorted by area
        best = max(near, key=lambda f: f.score)  # the first, larger, face on equal scores
        out.append(best)
        big.remove(best)
    return out


def _area(f: Face) -> float:
    return (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])
