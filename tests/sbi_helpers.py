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


def write_sbi_balance(root, shards: dict, *, margin: float | None = MARGIN, size: int = SIZE):
    """A `dfprep balance` output of face crops for SBI runs: `shards[split]` is a list of shards,
    each a list of (video_id, dataset, label, video_label) samples. Writes the tars, sizes.json,
    selection.parquet and a stats.json recording the crop margin (none when margin is None)."""
    import json
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from dfprep.balance.layout import tar_name, write_balanced
    from dfprep.schema import make_key
    from dfprep.shards import encode_sample

    root = Path(root)
    rows, n = [], 0
    per_split: dict = {}
    for split, split_shards in shards.items():
        made = []
        for s, samples in enumerate(split_shards):
            items = []
            for pos, (video_id, dataset, label, video_label) in enumerate(samples):
                image, lms = face_crop(n, size)
                key = make_key(video_id, n, 0)
                meta = record(key, label, whole_crop_box(size, margin or MARGIN), lms,
                              video_id=video_id, dataset=dataset, split=split,
                              video_label=video_label, category="real" if label == 0 else "FS")  # fmt: skip
                ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                assert ok
                items.append((key, encode_sample(meta, jpg.tobytes())))
                rows.append({"key": key, "split": split, "label": label, "video_label": video_label,
                             "dataset": dataset, "video_id": video_id,
                             "out_shard": tar_name(split, s), "out_pos": pos})  # fmt: skip
                n += 1
            made.append(items)
        per_split[split] = made
    sizes = write_balanced(root, per_split)
    pq.write_table(pa.Table.from_pylist(rows), root / "selection.parquet")
    crop = [{"margin": margin, "size": size}] if margin is not None else [None]
    (root / "stats.json").write_text(json.dumps({"extract": {"crop": crop}}))
    return sizes
