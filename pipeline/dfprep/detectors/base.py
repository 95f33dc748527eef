"""What every face detector shares: the Face type, the detector protocol, the backend registry
(with the per-process cache), and the helpers the backends are built from.

The backends (`dfprep.detectors.*`) import this module, never `dfprep.detect`, which builds on it:
no import cycle.
"""

from __future__ import annotations

import importlib
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from dfprep.config import DetectConfig

__all__ = [
    "BACKENDS",
    "RETINAFACE_BACKENDS",
    "Face",
    "FaceDetector",
    "Unpicklable",
    "build_detector",
    "check_images",
    "detection_size",
    "get_detector",
    "ort_session",
    "register_backend",
    "resize_for_detection",
    "round_up",
    "to_faces",
]


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in source pixels
    score: float
    # 5 points (x, y) in source pixels, from the subject's point of view: right eye, left eye, nose,
    # right mouth corner, left mouth corner (so for a frontal face the first eye is the image-left one).
    landmarks: tuple[float, ...]


class FaceDetector(Protocol):
    name: str

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Per RGB uint8 HxWx3 image, its faces with score >= cfg.score_threshold after NMS."""
        ...


# The registry: backend name -> "module:class", imported lazily so that a worker only loads (and
# pays the import time of) the backend it uses. dfprep.config.DETECT_BACKENDS lists the same names
# (a test checks).
BACKENDS: dict[str, str] = {
    "retinaface-mnet": "dfprep.detectors.retinaface_mnet:RetinaFaceMnet",
    "insightface": "dfprep.detectors.insightface_onnx:InsightFaceDetector",
    "retinaface-mnet-torch": "dfprep.detectors.retinaface_torch:RetinaFaceMnetTorch",
}


# The backends whose network has a torch port (`retinaface_torch`): the same network and weights,
# so extract's GPU mode can detect for either (dfprep.extract.gpu).
RETINAFACE_BACKENDS = ("retinaface-mnet", "retinaface-mnet-torch")


def register_backend(name: str, target: str) -> None:
    """Add a backend: TARGET is "module:class", a class built from a DetectConfig."""
    BACKENDS[name] = target


def build_detector(cfg: DetectConfig) -> FaceDetector:
    module, _, cls = BACKENDS[cfg.backend].partition(":")
    return getattr(importlib.import_module(module), cls)(cfg)


_cache: dict[tuple[int, DetectConfig], FaceDetector] = {}
_cache_lock = threading.Lock()


def get_detector(cfg: DetectConfig) -> FaceDetector:
    """The process's detector for cfg, built on first use.

    ONNX Runtime sessions cannot be pickled, so each worker process builds its own here instead of
    receiving one; the pid in the key keeps a forked child from reusing its parent's session.
    """
    key = (os.getpid(), cfg)
    with _cache_lock:
        detector = _cache.get(key)
        if detector is None:
            detector = build_detector(cfg)
            _cache[key] = detector
        return detector


# --- helpers shared by the backends -------------------------------------------------------------


def detection_size(width: int, height: int, max_size: int) -> tuple[int, int]:
    """(w, h) to detect at: longer side at most max_size, aspect kept, never upscaled."""
    scale = min(1.0, max_size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_for_detection(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """image at size=(w, h); INTER_AREA because it is the downscale that does not alias."""
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA)


def round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def check_images(images: Sequence[np.ndarray]) -> None:
    for i, image in enumerate(images):
        if (
            not isinstance(image, np.ndarray)
            or image.ndim != 3
            or image.shape[2] != 3
            or image.dtype != np.uint8
            or image.shape[0] == 0
            or image.shape[1] == 0
        ):
            what = (
                f"shape {image.shape} dtype {image.dtype}"
                if isinstance(image, np.ndarray)
                else type(image).__name__
            )
            raise ValueError(f"detect: image {i} must be an RGB uint8 HxWx3 array, got {what}")


def to_faces(
    boxes: np.ndarray,
    scores: np.ndarray,
    points: np.ndarray,
    scale: tuple[float, float],
    nms_threshold: float | None,
) -> list[Face]:
    """Faces in source pixels from candidates in detection pixels, best score first, after NMS
    unless nms_threshold is None (the model did it already).

    boxes: (n, 4) x1, y1, x2, y2; scores: (n,); points: (n, 10); scale: source px per detection px.
    """
    if len(scores) == 0:
        return []
    keep = np.arange(len(scores))
    if nms_threshold is not None:
        xywh = np.column_stack((boxes[:, :2], boxes[:, 2:] - boxes[:, :2])).astype(np.float64)
        scores64 = scores.astype(np.float64)
        keep = np.asarray(cv2.dnn.NMSBoxes(xywh, scores64, 0.0, nms_threshold)).reshape(-1)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    fx, fy = scale
    box_scale = np.array([fx, fy, fx, fy])
    point_scale = np.array([fx, fy] * 5)
    return [
        Face(
            box=tuple(float(v) for v in boxes[i] * box_scale),
            score=float(scores[i]),
            landmarks=tuple(float(v) for v in points[i] * point_scale),
        )
        for i in keep
    ]


def ort_session(model: str | bytes, threads: int):
    """An ONNX Runtime session capped to `threads` intra-op threads (workers share the cores).

    Spinning is off so idle detector threads do not steal CPU from the decoder between calls.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(model, options, providers=providers)


def socket_timeouts(conn, send: float, receive: float) -> None:
    """Make a blocking send or receive on CONN (a `multiprocessing.connection` socket) fail with
    BlockingIOError after SEND / RECEIVE seconds (0: wait forever) instead of waiting forever on
    a peer that is stopped or hung."""
    import socket
    import struct

    with socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as sock:  # a dup
        for option, seconds in ((socket.SO_SNDTIMEO, send), (socket.SO_RCVTIMEO, receive)):
            whole = int(seconds)
            timeval = struct.pack("ll", whole, int((seconds - whole) * 1e6))
            sock.setsockopt(socket.SOL_SOCKET, option, timeval)


def handshake(conn, authkey: bytes, first: bool) -> None:
    """multiprocessing's HMAC challenge both ways (the server FIRST), done apart from
    Listener.accept and Client so that it runs under CONN's time limits."""
    from multiprocessing.connection import answer_challenge, deliver_challenge

    steps = (
        (deliver_challenge, answer_challenge) if first else (answer_challenge, deliver_challenge)
    )
    for step in steps:
        step(conn, authkey)


class Unpicklable:
    """Detectors hold an ORT session, which cannot travel between processes: fail early and clearly."""

    def __reduce__(self):
        raise TypeError(
            f"{type(self).__name__} is never pickled: call dfprep.detect.get_detector(cfg) "
            "in the process that uses it"
        )
