"""Synthetic inputs for `dftrain bench` and `dftrain gpu-bench` when no data is given: face-like
crops written in `dfprep balance`'s layout (through dfprep's own writer) and in `dfprep extract`'s,
and an H.264 video of a face photograph for `dftrain predict`.

Real crops are a smooth face-like blob; fake ones add a striped patch whose colour depends on the
dataset and whose stripe direction depends on the category, so a tiny model can learn every label
mode (the tests train on them: tests/synthetic_shards.py).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from dfprep.schema import TRAIN_DATASETS, make_key
from dfprep.shards import encode_sample

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


class _Jpegs:
    """Encoded synthetic crops; with `distinct` > 0 each (label, dataset, category) draws from at
    most that many encoded images, so big benchmark shards are written quickly (every sample is
    still decoded when read); 0 encodes every image afresh."""

    def __init__(self, rng: np.random.Generator, size: int, distinct: int, quality: int = 90):
        self.rng, self.size, self.distinct, self.quality = rng, size, distinct, quality
        self.pool: dict[tuple, list[bytes]] = {}

    def __call__(self, fake: bool, di: int, category: str) -> bytes:
        got = self.pool.setdefault((fake, di if fake else 0, category), [])
        if self.distinct and len(got) >= self.distinct:
            return got[int(self.rng.integers(len(got)))]
        buf = io.BytesIO()
        img = synthetic_crop(self.rng, self.size, fake, di, category)
        Image.fromarray(img).save(buf, "JPEG", quality=self.quality)
        if self.distinct:
            got.append(buf.getvalue())
        return buf.getvalue()


def write_synthetic_shards(
    out: str | Path,
    counts: Mapping[str, Sequence[int]],
    *,
    size: int = 224,
    seed: int = 0,
    distinct: int = 0,
) -> dict[str, dict[str, int]]:
    """`dfprep balance`'s layout of synthetic crops, `counts[split][i]` samples in shard i (e.g.
    {"train": [32] * 4, "val": [32]}); labels alternate real/fake, datasets and fake categories
    are drawn at random. Returns the sizes written to OUT/sizes.json."""
    from dfprep.balance.layout import write_balanced

    rng = np.random.default_rng(seed)
    jpeg = _Jpegs(rng, size, distinct)
    datasets = TRAIN_DATASETS
    done = [0]  # samples written before the current shard: the real/fake alternation runs on

    def shard(split: str, s: int, per: int) -> Iterator[tuple[str, dict[str, bytes]]]:
        n = done[0]
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
            yield key, encode_sample(meta, jpeg(fake, di, category))
        done[0] += per

    def shards(split: str) -> Iterator[Iterator]:  # made as the writer gets to them, in order
        return (shard(split, s, per) for s, per in enumerate(counts[split]))

    return write_balanced(out, {split: shards(split) for split in counts})


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
    from dfprep.shards import ShardFiles, ShardWriter, shard_name

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


# ---- the video `dftrain predict` is timed on -----------------------------------------------------


def _face_photo(height: int) -> np.ndarray:
    import cv2
    import skimage.data

    img = skimage.data.astronaut()[0:240, 105:345]  # her head: the face is about half of it
    return cv2.resize(img, (height, height), interpolation=cv2.INTER_AREA)


def _i420(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)  # (h * 3 / 2, w): Y, then U, then V


def _planes(i420: np.ndarray, width: int, height: int) -> list[np.ndarray]:
    """Views of the Y (h, w), U and V (h/2, w/2) planes of an I420 array of shape (h * 3/2, w)."""
    y = i420[:height]
    chroma = i420[height:].reshape(2, height // 2, width // 2)
    return [y, chroma[0], chroma[1]]


def make_predict_video(
    path: Path, width: int = 1920, height: int = 1080, fps: int = 30, seconds: float = 60.0
) -> Path:
    """An H.264 MP4 (yuv420p, x264 superfast, CRF 23, x264's default GOP) of `seconds` at `fps`:
    a face photograph (scikit-image's astronaut, as in the sample dataset; 60% of the height)
    drifting over a textured background, so the detector finds one face in every sampled frame.
    Frames are assembled directly in YUV 4:2:0 (no colour conversion per frame), so writing the
    minute of 1080p costs x264's time only."""
    from dfprep.videoio import encode_video

    if width % 4 or height % 4:
        raise ValueError(f"make_predict_video: {width}x{height}: sides must be multiples of 4")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    bg = np.stack([xx / width, yy / height, 0.5 + 0.2 * np.sin(xx / 37.0)], -1) * 160 + 40
    bg = np.clip(bg + rng.normal(0, 6, bg.shape), 0, 255).astype(np.uint8)
    side = int(height * 0.6) // 4 * 4
    bg_planes = _planes(_i420(bg), width, height)
    face_planes = _planes(_i420(_face_photo(side)), side, side)

    def frames() -> Iterator[np.ndarray]:
        frame = np.empty((height * 3 // 2, width), np.uint8)
        dst = _planes(frame, width, height)
        for i in range(round(seconds * fps)):
            t = i / fps
            x = int((width - side) * (0.5 + 0.3 * math.sin(2 * math.pi * t / 20))) // 2 * 2
            y = int((height - side) * (0.5 + 0.2 * math.sin(2 * math.pi * t / 13))) // 2 * 2
            for k, (d, b, f) in enumerate(zip(dst, bg_planes, face_planes, strict=True)):
                d[...] = b
                s = 1 if k == 0 else 2  # chroma planes are subsampled by 2
                d[y // s : (y + side) // s, x // s : (x + side) // s] = f
            yield frame

    return encode_video(path, frames(), fps, crf=23, preset="superfast", threads=0,
                        frame_format="yuv420p")  # fmt: skip
