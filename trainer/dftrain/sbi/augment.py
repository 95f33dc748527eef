"""The image operations of SBI's recipe, in numpy and OpenCV, drawing from a numpy Generator.

SBI used albumentations; its transforms are a few lines each here, because albumentations
requires `opencv-python-headless` (a second cv2 beside the project's `opencv-python`), and so that
every random draw comes from the one `np.random.Generator` a sample is given (determinism).
Each op reproduces albumentations' definition of the transform SBI named; images are RGB uint8.
"""

from __future__ import annotations

import cv2
import numpy as np

from dftrain.sbi.config import SBIConfig

__all__ = [
    "augment_pair",
    "brightness_contrast",
    "downscale",
    "elastic",
    "jpeg",
    "random_affine",
    "sharpen",
    "shift_hsv",
    "shift_rgb",
    "source_transform",
    "warp",
]

_LEVELS = np.arange(256, dtype=np.float64)


def _lut(table: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(table), 0, 255).astype(np.uint8)


def shift_rgb(img: np.ndarray, shifts: tuple[float, float, float]) -> np.ndarray:
    """Each channel plus its shift (RGBShift), clipped."""
    luts = [_lut(_LEVELS + s) for s in shifts]
    return cv2.merge([cv2.LUT(c, lut) for c, lut in zip(cv2.split(img), luts, strict=True)])


def shift_hsv(img: np.ndarray, shifts: tuple[float, float, float]) -> np.ndarray:
    """Hue (cyclic, 180 levels), saturation and value shifted in OpenCV's 8-bit HSV
    (HueSaturationValue); shifts round to whole levels."""
    if not any(round(s) for s in shifts):
        return img.copy()
    h, s, v = cv2.split(cv2.cvtColor(img, cv2.COLOR_RGB2HSV))
    hue = np.mod(np.arange(256) + round(shifts[0]), 180).astype(np.uint8)
    h = cv2.LUT(h, hue)
    s = cv2.LUT(s, _lut(_LEVELS + round(shifts[1])))
    v = cv2.LUT(v, _lut(_LEVELS + round(shifts[2])))
    return cv2.cvtColor(cv2.merge([h, s, v]), cv2.COLOR_HSV2RGB)


def brightness_contrast(img: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """img x alpha + alpha x beta x mean(img) (RandomBrightnessContrast: alpha = 1 + contrast,
    beta = brightness, relative to the image's mean), clipped."""
    return cv2.LUT(img, _lut(_LEVELS * alpha + alpha * beta * float(img.mean())))


def downscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Down by factor (nearest) and back up (bilinear): SBI's RandomDownScale."""
    h, w = img.shape[:2]
    small = cv2.resize(
        img, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_NEAREST
    )
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def sharpen(img: np.ndarray, alpha: float, lightness: float) -> np.ndarray:
    """The identity kernel mixed (alpha) with a Laplacian-style sharpening kernel whose centre is
    8 + lightness (albumentations' Sharpen)."""
    kernel = np.full((3, 3), -alpha, np.float32)
    kernel[1, 1] = (1 - alpha) + alpha * (8 + lightness)
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """A JPEG round trip at quality (ImageCompression)."""
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _uniform3(rng: np.random.Generator, limit: float) -> tuple[float, float, float]:
    return tuple(float(v) for v in rng.uniform(-limit, limit, 3))  # type: ignore[return-value]


def source_transform(img: np.ndarray, rng: np.random.Generator, cfg: SBIConfig) -> np.ndarray:
    """SBI's source transform: RGB shift (p rgb_shift_p), HSV shift, brightness/contrast, then a
    random downscale (p downscale_p) or a sharpen."""
    if rng.random() < cfg.rgb_shift_p:
        img = shift_rgb(img, _uniform3(rng, cfg.rgb_shift))
    img = shift_hsv(img, tuple(float(rng.uniform(-s, s)) for s in cfg.hsv_shift))  # type: ignore[arg-type]
    contrast, brightness = (
        rng.uniform(-cfg.contrast, cfg.contrast),
        rng.uniform(-cfg.brightness, cfg.brightness),
    )
    img = brightness_contrast(img, 1 + float(contrast), float(brightness))
    if rng.random() < cfg.downscale_p:
        return downscale(img, int(rng.choice(cfg.downscale_factors)))
    return sharpen(
        img, float(rng.uniform(*cfg.sharpen_alpha)), float(rng.uniform(*cfg.sharpen_lightness))
    )


def random_affine(rng: np.random.Generator, cfg: SBIConfig, height: int, width: int) -> np.ndarray:
    """SBI's small affine as a 2 x 3 matrix: a scale in cfg.scale about the image centre and a
    translation of up to cfg.translate of the width and height."""
    s = float(rng.uniform(*cfg.scale))
    tx = float(rng.uniform(-cfg.translate[0], cfg.translate[0])) * width
    ty = float(rng.uniform(-cfg.translate[1], cfg.translate[1])) * height
    cx, cy = width / 2, height / 2
    return np.array([[s, 0, (1 - s) * cx + tx], [0, s, (1 - s) * cy + ty]])


def warp(img: np.ndarray, m: np.ndarray, *, mask: bool = False) -> np.ndarray:
    """img under the affine m (pixel-corner coordinates): an image bilinear with its border
    reflected, a mask nearest with nothing outside."""
    h, w = img.shape[:2]
    # cv2 maps pixel centres: conjugate by the half-pixel shift
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    m3 = np.linalg.inv(shift) @ np.vstack([m, (0, 0, 1)]) @ shift
    if mask:
        return cv2.warpAffine(img, m3[:2], (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    return cv2.warpAffine(
        img, m3[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )


def elastic(mask: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float) -> np.ndarray:
    """The mask displaced by a smooth random field: uniform noise in [-1, 1] per pixel and axis,
    Gaussian-blurred (sigma), times alpha pixels (ElasticTransform); nearest sampling."""
    h, w = mask.shape[:2]
    dx, dy = (
        cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * alpha
        for _ in range(2)
    )
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        mask, gx + dx, gy + dy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def augment_pair(
    real: np.ndarray, fake: np.ndarray, rng: np.random.Generator, cfg: SBIConfig
) -> tuple[np.ndarray, np.ndarray]:
    """SBI's training transforms, drawn once and applied to a real and its pseudo-fake alike:
    horizontal flip, RGB shift, HSV shift, brightness/contrast (each with its p), JPEG (p jpeg_p)."""
    ops = []
    if rng.random() < cfg.hflip_p:
        ops.append(lambda im: np.ascontiguousarray(im[:, ::-1]))
    if rng.random() < cfg.pair_rgb_shift_p:
        shifts = _uniform3(rng, cfg.rgb_shift)
        ops.append(lambda im: shift_rgb(im, shifts))
    if rng.random() < cfg.pair_hsv_p:
        hsv = tuple(float(rng.uniform(-s, s)) for s in cfg.hsv_shift)
        ops.append(lambda im: shift_hsv(im, hsv))  # type: ignore[arg-type]
    if rng.random() < cfg.pair_brightness_contrast_p:
        c = 1 + float(rng.uniform(-cfg.pair_contrast, cfg.pair_contrast))
        b = float(rng.uniform(-cfg.pair_brightness, cfg.pair_brightness))
        ops.append(lambda im: brightness_contrast(im, c, b))
    if rng.random() < cfg.jpeg_p:
        q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1], endpoint=True))
        ops.append(lambda im: jpeg(im, q))
    for op in ops:
        real, fake = op(real), op(fake)
    return real, fake
