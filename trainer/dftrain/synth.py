"""Synthetic balanced shards in `dfprep balance`'s layout, for tests and `dftrain bench` without data.

Real crops are a smooth face-like blob; fake ones add a striped patch whose colour depends on the
dataset and whose stripe direction depends on the category, so a tiny model can learn every label mode.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image

from dfprep.core.atomic import write_json
from dfprep.core.codec import encode_sample
from dfprep.schema import TRAIN_DATASETS, make_key

_PATCH_COLOURS = [
    (255, 40, 40),
    (40, 255, 40),
    (40, 40, 255),
    (255, 255, 40),
    (255, 40, 255),
    (40, 255, 255),
]


def synthetic_crop(
    rng: np.random.Generator, size: int, fake: bool, dataset_index: int, category: str
) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    skin = rng.uniform(0.45, 0.8, 3).astype(np.float32) * np.array([1.0, 0.8, 0.7], np.float32)
    face = np.exp(-(((xx - 0.5) / 0.3) ** 2 + ((yy - 0.5) / 0.38) ** 2))[..., None]
    img = 0.25 + face * skin + rng.normal(0, 0.03, (size, size, 3)).astype(np.float32)
    if fake:  # a large striped patch: visible at any input size the tests train at
        s = size // 2
        x0, y0 = rng.integers(0, size - s + 1, 2)
        stripes = (np.arange(s) // max(size // 16, 1)) % 2
        mask = (stripes[None, :] if category == "FS" else stripes[:, None]) * np.ones((s, s))
        colour = np.array(_PATCH_COLOURS[dataset_index % len(_PATCH_COLOURS)], np.float32) / 255
        patch = img[y0 : y0 + s, x0 : x0 + s]
        img[y0 : y0 + s, x0 : x0 + s] = (
            patch * (1 - 0.8 * mask[..., None]) + 0.8 * mask[..., None] * colour
        )
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_synthetic_shards(
    out: str | Path,
    *,
    train_shards: int = 4,
    val_shards: int = 2,
    per_shard: int = 32,
    val_per_shard: int = 0,  # 0 = per_shard
    size: int = 224,
    seed: int = 0,
    datasets: tuple[str, ...] = TRAIN_DATASETS,
    quality: int = 90,
    distinct: int = 0,
) -> dict[str, dict[str, int]]:
    """Write OUT/{train,val}/*.tar and OUT/sizes.json; returns the sizes mapping.

    `distinct` > 0 draws each crop's JPEG from at most that many encoded images per (label,
    dataset, category), so big benchmark shards are written quickly (every sample is still decoded
    when read); 0 draws every image afresh."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    pool: dict[tuple, list[bytes]] = {}

    def jpeg(fake: bool, di: int, category: str) -> bytes:
        key = (fake, di if fake else 0, category)
        got = pool.setdefault(key, [])
        if distinct and len(got) >= distinct:
            return got[int(rng.integers(len(got)))]
        buf = io.BytesIO()
        Image.fromarray(synthetic_crop(rng, size, fake, di, category)).save(
            buf, "JPEG", quality=quality
        )
        if distinct:
            got.append(buf.getvalue())
        return buf.getvalue()

    sizes: dict[str, dict[str, int]] = {}
    n = 0
    for split, count, per in (
        ("train", train_shards, per_shard),
        ("val", val_shards, val_per_shard or per_shard),
    ):
        (out / split).mkdir(parents=True, exist_ok=True)
        sizes[split] = {}
        for s in range(count):
            name = f"{split}-{s:06d}.tar"
            with wds.TarWriter(str(out / split / name)) as sink:
                for i in range(per):
                    fake = (n + i) % 2 == 1
                    di = int(rng.integers(len(datasets)))
                    category = "real" if not fake else ("FS" if rng.random() < 0.5 else "RE")
                    video_id = f"{datasets[di]}-{split}{s}v{i // 4:03d}"
                    key = make_key(video_id, i % 4, 0)
                    meta = {
                        "video_id": video_id,
                        "dataset": datasets[di],
                        "split": split,
                        "label": int(fake),
                        "video_label": int(fake),
                        "category": category,
                        "method": "real" if not fake else f"synth{category}",
                        "key": key,
                        "time": float(i % 4),
                    }
                    sink.write({"__key__": key, **encode_sample(meta, jpeg(fake, di, category))})
            sizes[split][name] = per
            n += per
    write_json(out / "sizes.json", sizes, newline=False)
    return sizes


def write_synthetic_extract(
    out: str | Path,
    *,
    shards: int = 2,
    videos_per_shard: int = 4,
    crops_per_video: int = 8,
    size: int = 224,
    distinct: int = 64,
    seed: int = 0,
    dataset: str = "ffpp",
    split: str = "test",
    quality: int = 90,
) -> int:
    """Write `dfprep extract`'s layout (OUT/shards/*.tar + index, videos, stats) of synthetic crops;
    half the videos fake. JPEGs are drawn from `distinct` pre-encoded images (writing stays cheap;
    every crop is still decoded when read). Returns the number of crops."""
    from dfprep.schema import CropRecord, SampleLabels
    from dfprep.shard import ShardFiles, ShardWriter, shard_name

    rng = np.random.default_rng(seed)
    pool: dict[bool, list[bytes]] = {}
    for fake in (False, True):
        pool[fake] = []
        for _ in range(max(1, distinct // 2)):
            buf = io.BytesIO()
            img = synthetic_crop(rng, size, fake, 0, "FS")
            Image.fromarray(img).save(buf, "JPEG", quality=quality)
            pool[fake].append(buf.getvalue())
    n = 0
    for s in range(shards):
        name = shard_name(dataset, s)
        writer = ShardWriter(ShardFiles(Path(out) / "shards", name))
        index_rows, video_rows = [], []
        for v in range(videos_per_shard):
            fake = v % 2 == 1
            video_id = f"{dataset}-synth{s:03d}v{v:03d}"
            labels = SampleLabels(video_id, dataset, split, int(fake), int(fake),
                                  "FS" if fake else "real", "synthFS" if fake else "real")  # fmt: skip
            for k in range(crops_per_video):
                key = make_key(video_id, k, 0)
                rec = CropRecord(key, labels, k, k, float(k), 0, 0.99, [0.0, 0.0, size, size],
                                 [0.0] * 10)  # fmt: skip
                jpg = pool[fake][int(rng.integers(len(pool[fake])))]
                meta = rec.to_json()
                writer.write(key, encode_sample(meta, jpg))
                index_rows.append({**meta, "shard": f"{name}.tar", "jpeg_bytes": len(jpg)})
                n += 1
            video_rows.append({
                "video_id": video_id, "path": f"/synthetic/{video_id}.mp4", "dataset": dataset,
                "split": split, "label": int(fake), "category": labels.category,
                "method": labels.method, "status": "ok", "error": "",
                "frames_sampled": crops_per_video, "frames_with_face": crops_per_video,
                "crops": crops_per_video, "strategy": "seek", "duration": float(crops_per_video),
                "width": size, "height": size,
            })  # fmt: skip
        writer.commit(index_rows, video_rows, {"params_hash": "synthetic", "videos": videos_per_shard,
                                               "crops": videos_per_shard * crops_per_video})  # fmt: skip
    return n
