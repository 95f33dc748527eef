"""One self-blended image (SBI): a real face blended with a transformed copy of itself.

The mask is the face hull (`shape.face_points`), shifted and scaled with the source, deformed
elastically, then softened as SBI's `dynamic_blend` does and scaled by a random blend ratio:
    fake = source x mask + target x (1 - mask)
where one of source and target went through the source transform. Every random draw comes from
the Generator given, in a fixed order: the same image, landmarks, config and Generator state give
the same bytes on any machine with the same OpenCV.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import cv2
import numpy as np

from dfprep.core.errors import InputError
from dftrain.sbi.augment import elastic, random_affine, source_transform, warp
from dftrain.sbi.config import SBIConfig
from dftrain.sbi.shape import face_points, hull_mask

__all__ = ["SelfBlend", "blend_mask", "sample_rng", "self_blend"]


class SelfBlend(NamedTuple):
    fake: np.ndarray  # H x W x 3 uint8, the pseudo-fake (label 1)
    real: np.ndarray  # H x W x 3 uint8, the target: SBI's real of the pair (label 0)
    mask: np.ndarray  # H x W float32 in [0, ratio], the blending weight of the source
    ratio: float  # the blend ratio drawn (the mask's peak)


def sample_rng(seed: int, *keys: object) -> np.random.Generator:
    """A Generator for one sample from the run's seed and keys such as (epoch, sample key): the
    same in every process and worker, whatever reads the sample (Python's hash of a str is not).
    Integer keys count by value (3 and np.int64(3) alike), others by their str."""
    parts = tuple(int(k) if isinstance(k, (int, np.integer)) else str(k) for k in (seed, *keys))
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def _odd(rng: np.random.Generator, lo: int, hi: int) -> int:
    odds = np.arange(lo + (lo % 2 == 0), hi + 1, 2)
    return int(rng.choice(odds))


def blend_mask(mask: np.ndarray, rng: np.random.Generator, cfg: SBIConfig) -> np.ndarray:
    """SBI's soft mask of a 0/1 hull mask (float32, peak 1, 0 where the hull never reaches).

    At a random size in blur_size (so that the blur is relative to the face, not the crop): an
    erosion by a random odd kernel k1 (SBI blurs with k1, keeps the pixels at the maximum: those
    whose k1 x k1 window lies inside the mask), a Gaussian blur of random odd size k2 and integer
    sigma in blur_sigma, a division by the peak, and back to the mask's size.
    """
    h, w = mask.shape
    size = tuple(int(rng.integers(cfg.blur_size[0], cfg.blur_size[1], endpoint=True)) for _ in "hw")
    k1, k2 = _odd(rng, *cfg.blur_kernel), _odd(rng, *cfg.blur_kernel)
    sigma = int(rng.integers(cfg.blur_sigma[0], cfg.blur_sigma[1], endpoint=True))
    small = cv2.resize(mask.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    # a small tolerance: bilinear weights of a flat 1 do not always sum to exactly 1 in float32
    core = cv2.erode(small, np.ones((k1, k1), np.uint8)) >= 1 - 1e-4
    if not core.any():  # a hull thinner than k1: SBI would divide by zero; keep it uneroded
        core = small >= 0.5
    soft = cv2.GaussianBlur(core.astype(np.float32), (k2, k2), sigma)
    peak = float(soft.max())
    if peak <= 0:
        return np.zeros((h, w), np.float32)
    return cv2.resize(soft / peak, (w, h), interpolation=cv2.INTER_LINEAR)


def self_blend(
    image: np.ndarray, landmarks: object, rng: np.random.Generator, cfg: SBIConfig | None = None
) -> SelfBlend:
    """A pseudo-fake of one real face (RGB uint8 H x W x 3) from its 5 landmarks in the image's
    pixels (`shape.crop_landmarks` for a crop's); an InputError when the landmarks place no face
    in the image, since the "fake" would then equal its real."""
    cfg = cfg or SBIConfig()
    if not (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
    ):
        raise InputError(
            f"self_blend: expected an H x W x 3 uint8 image, got {getattr(image, 'shape', type(image))}"
        )
    h, w = image.shape[:2]
    forehead = cfg.forehead if rng.random() < cfg.forehead_p else 0.0
    hull = hull_mask(face_points(landmarks, forehead), h, w)
    if not hull.any():
        raise InputError("self_blend: the landmarks place the face hull outside the image")
    transformed = source_transform(image, rng, cfg)
    if rng.random() < cfg.source_p:
        source, target = transformed, image
    else:
        source, target = image, transformed
    m = random_affine(rng, cfg, h, w)
    source = warp(source, m)
    hull = elastic(warp(hull, m, mask=True), rng, cfg.elastic_alpha, cfg.elastic_sigma)
    ratio = float(rng.choice(cfg.blend_ratios))
    mask = blend_mask(hull, rng, cfg) * np.float32(ratio)
    if not mask.any():
        raise InputError("self_blend: the face hull left the image under the random affine")
    weight = mask[..., None]
    fake = source.astype(np.float32) * weight + target.astype(np.float32) * (1 - weight)
    return SelfBlend(np.clip(np.rint(fake), 0, 255).astype(np.uint8), target.copy(), mask, ratio)
