"""A synthetic real crop for the SBI tests: a textured 224 px image with a face's 5 landmarks
where the extraction puts them (ArcFace's template over the detected box, 30 % margin)."""

from __future__ import annotations

import cv2
import numpy as np

from dftrain.sbi.shape import ARCFACE_TEMPLATE

SIZE = 224
MARGIN = 0.3


def face_crop(seed: int = 0, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 image, 5 x 2 landmarks in its pixels): smooth colour noise, a face-sized box
    centred as the crop's margin leaves it."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (size // 8, size // 8, 3)).astype(np.float32)
    image = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    side = size / (1 + MARGIN)
    landmarks = ARCFACE_TEMPLATE * (side / 112) + (size - side) / 2
    return image, landmarks


def write_shard(path, samples: list[tuple[dict, np.ndarray]]) -> None:
    """A WebDataset tar of (record, RGB image) samples, as extract writes them."""
    import io
    import tarfile

    from dfprep.shards import encode_sample

    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for meta, image in samples:
            ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            assert ok
            for ext, data in encode_sample(meta, jpg.tobytes()).items():
                info = tarfile.TarInfo(f"{meta['key']}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def record(key: str, label: int, bbox, landmarks, **extra) -> dict:
    """A crop's .json record with the fields the SBI code reads."""
    return {
        "key": key,
        "label": label,
        "dataset": "ffpp",
        "video_id": extra.pop("video_id", key.rsplit("_s", 1)[0]),
        "method": "real" if label == 0 else "FaceSwap",
        "frame_index": 0,
        "time": 0.0,
        "bbox": [float(v) for v in bbox],
        "landmarks": [round(float(v), 2) for v in np.ravel(landmarks)],
        **extra,
    }


def whole_crop_box(size: int = SIZE, margin: float = MARGIN) -> tuple[float, float, float, float]:
    """The detected box whose crop is the whole size x size image (so crop pixels = frame pixels)."""
    half = size / (1 + margin) / 2
    c = size / 2
    return (c - half, c - half, c + half, c + half)
