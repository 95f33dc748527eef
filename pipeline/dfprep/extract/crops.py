"""The crop and encode steps of a video: a chosen face as a JPEG crop, then as a sample (the bytes
of its tar members and its crop-index row); a face dropped as unmanipulated as a thumbnail.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dfprep.config import ExtractConfig
from dfprep.crop import crop_face
from dfprep.schema import CropRecord, SampleLabels, make_key
from dfprep.shards import encode_sample

__all__ = [
    "DROPPED_THUMB",
    "FrameAt",
    "crop_label",
    "dropped_row",
    "encode_jpeg",
    "face_jpeg",
    "make_samples",
    "shipped_crop",
    "shipped_face",
]

DROPPED_THUMB = 112  # px: the side of a dropped face's thumbnail (~4 KB)


@dataclass(frozen=True)
class FrameAt:
    """Where a sampled frame is in its video (what its crops record once the image is gone)."""

    sample_index: int
    frame_index: int
    time: float
    pts_time: float = 0.0  # the player's clock (SampledFrame.pts_time)
    faces: int = 0  # faces in the frame (detections above the thresholds)


def crop_label(row: dict, t: float) -> int:
    """A partly manipulated video (fake_segments set) is fake only inside its fake segments."""
    if int(row["label"]) == 0:
        return 0
    segs = row.get("fake_segments")
    if not segs:
        return 1
    return int(any(s["start"] <= t < s["end"] for s in segs))


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def shipped_face(image: np.ndarray):
    """A publisher's face crop taken as it is: the whole image, score 1, no landmarks (zeros)."""
    from dfprep.detect import Face

    h, w = image.shape[:2]
    return Face((0.0, 0.0, float(w), float(h)), 1.0, (0.0,) * 10)


def shipped_crop(image: np.ndarray, size: int) -> np.ndarray:
    """faces: shipped: the crop resized to size x size (no margin, no detection)."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    interp = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interp)


def face_jpeg(image: np.ndarray, face, cfg: ExtractConfig, shipped: bool) -> bytes:
    """One face's crop (+margin, square, resized; a shipped crop resized) as JPEG bytes."""
    c = cfg.crop
    crop = shipped_crop(image, c.size) if shipped else crop_face(image, face.box, c.margin, c.size)
    return encode_jpeg(crop, c.jpeg_quality)


def make_samples(row: dict, at: FrameAt, chosen: list[tuple], jpgs: dict[int, bytes]) -> list:
    """The samples (key, tar members, crop-index row) of one frame's CHOSEN (face, score)
    pairs; JPGS: id(face) -> its crop's JPEG bytes."""
    labels = SampleLabels(
        row["video_id"],
        row["dataset"],
        row["split"],
        crop_label(row, at.time),
        int(row["label"]),
        row["category"],
        row["method"],
    )
    out = []
    for j, (face, score) in enumerate(chosen):
        key = make_key(row["video_id"], at.sample_index, j)
        rec = CropRecord(
            key,
            labels,
            at.sample_index,
            at.frame_index,
            at.time,
            j,
            face.score,
            list(face.box),
            list(face.landmarks),
            score,
            at.faces,
            at.pts_time,
        )
        jpg = jpgs[id(face)]
        meta = rec.to_json()
        index_row = {**meta, "shard": "", "jpeg_bytes": len(jpg)}
        out.append((key, encode_sample(meta, jpg), index_row))
    return out


def dropped_row(row: dict, fr, face, score: float, source: str, cfg: ExtractConfig) -> dict:
    """A face left out as unmanipulated, as a small thumbnail for the report's contact sheet."""
    thumb = crop_face(fr.image, face.box, cfg.crop.margin, DROPPED_THUMB)
    return {
        "video_id": row["video_id"],
        "dataset": row["dataset"],
        "method": row["method"],
        "sample_index": fr.sample_index,
        "frame_index": fr.frame_index,
        "time": round(fr.time, 6),
        "bbox": [round(float(v), 2) for v in face.box],
        "manip_score": round(float(score), 4),
        "source": source,
        "jpg": encode_jpeg(thumb, 85),
    }
