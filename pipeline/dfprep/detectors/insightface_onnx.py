"""A local insightface detection model (SCRFD such as buffalo_l's det_10g.onnx, or RetinaFace) run
through `insightface.model_zoo`'s decoder, with a session we build so its threads stay capped.

Nothing is downloaded: `detect.model_path` names the .onnx file or a model-pack directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from dfprep.config import DetectConfig
from dfprep.core.errors import ConfigError
from dfprep.detectors.base import (
    Face,
    Unpicklable,
    check_images,
    detection_size,
    ort_session,
    resize_for_detection,
    round_up,
    to_faces,
)

# insightface's decoder reads landmarks only from models with these output counts (3 or 5 strides
# x score/box/keypoints); the 6- and 10-output variants have no landmarks, which crops may need.
OUTPUTS_WITH_LANDMARKS = (9, 15)


def is_detection_model(name: str) -> bool:
    name = name.lower()
    return name.endswith(".onnx") and (name.startswith(("det_", "scrfd")) or "retinaface" in name)


def find_detection_model(model_path: str) -> Path:
    """The detection .onnx that model_path names: the file itself, or the one in a model pack."""
    if not model_path:
        raise ConfigError(
            "detect.model_path: the insightface backend needs a local .onnx detection model "
            "or model-pack directory (nothing is downloaded)"
        )
    path = Path(model_path).expanduser()
    if not path.exists():
        raise ConfigError(f"detect.model_path: not found: {path}")
    if path.is_file():
        if path.suffix.lower() != ".onnx":
            raise ConfigError(f"detect.model_path: not an .onnx file: {path}")
        return path
    found = sorted(p for p in path.iterdir() if p.is_file() and is_detection_model(p.name))
    if not found:
        raise ConfigError(
            f"detect.model_path: no detection model (det_*.onnx, scrfd*.onnx, *retinaface*.onnx) in {path}"
        )
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ConfigError(
            f"detect.model_path: several detection models in {path} ({names}): name one file"
        )
    return found[0]


class InsightFaceDetector(Unpicklable):
    """One image per session call: insightface's decoder takes a single image."""

    name = "insightface"

    def __init__(self, cfg: DetectConfig):
        from insightface.model_zoo.retinaface import RetinaFace

        self.cfg = cfg
        self.model_file = find_detection_model(cfg.model_path)
        try:
            session = ort_session(str(self.model_file), cfg.threads)
        except Exception as e:  # ORT raises its own types for a corrupt or non-ONNX file
            first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ConfigError(
                f"detect.model_path: cannot load {self.model_file}: {first_line}"
            ) from None
        outputs = len(session.get_outputs())
        if outputs not in OUTPUTS_WITH_LANDMARKS:
            raise ConfigError(
                f"detect.model_path: {self.model_file} has {outputs} outputs; expected an insightface "
                "detection model with landmarks (9 or 15 outputs)"
            )
        self.model = RetinaFace(model_file=str(self.model_file), session=session)
        # ctx_id >= 0 keeps our session's providers (a negative one resets them to CPU).
        self.model.prepare(0, det_thresh=cfg.score_threshold, nms_thresh=cfg.nms_threshold)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        check_images(images)
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        size = detection_size(width, height, self.cfg.max_size)
        small = cv2.cvtColor(resize_for_detection(image, size), cv2.COLOR_RGB2BGR)
        # A fixed-shape model gets its own size (insightface letterboxes into it); otherwise pad to
        # the strides' multiple. Either way its outputs are in `small`'s pixels.
        input_size = self.model.static_input_size or (round_up(size[0], 32), round_up(size[1], 32))
        det, kps = self.model.detect(small, input_size=input_size, max_num=0)
        if len(det) == 0:
            return []
        scale = (width / size[0], height / size[1])
        # insightface has already applied the score threshold and NMS.
        return to_faces(det[:, :4], det[:, 4], kps.reshape(len(det), 10), scale, None)
