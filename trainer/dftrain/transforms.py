"""Image transforms: timm's training transform as FSFM fine-tunes with, and a deterministic eval one."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageOps
from timm.data import Mixup, create_transform
from timm.data.auto_augment import AugmentOp, posterize

from dftrain.config import AugConfig, LossConfig


def posterize_any_bits(img: Image.Image, bits_to_keep: int, **_) -> Image.Image:
    """timm's posterize, keeping its behaviour at 0 bits (a black image, as Pillow < 13 gave).

    RandAugment `inc1` maps magnitude 10 to 0 bits; Pillow >= 13 raises on that instead.
    """
    if bits_to_keep >= 8:
        return img
    if bits_to_keep < 1:
        return Image.new(img.mode, img.size)
    return ImageOps.posterize(img, bits_to_keep)


def _patch_posterize(obj: object) -> None:
    for op in getattr(obj, "ops", []) or []:
        if isinstance(op, AugmentOp) and op.aug_fn is posterize:
            op.aug_fn = posterize_any_bits


def train_transform(aug: AugConfig, img_size: int) -> Callable:
    """Random resized crop, h-flip, RandAugment (or colour jitter without it), normalise, random
    erasing (PIL in, tensor out)."""
    tf = create_transform(
        input_size=img_size,
        is_training=True,
        scale=tuple(aug.scale),
        ratio=tuple(aug.ratio),
        hflip=aug.hflip,
        color_jitter=aug.color_jitter,
        auto_augment=aug.auto_augment or None,
        interpolation=aug.interpolation,
        re_prob=aug.re_prob,
        re_mode=aug.re_mode,
        re_count=1,
        mean=tuple(aug.mean),
        std=tuple(aug.std),
    )
    for t in getattr(tf, "transforms", []):
        _patch_posterize(t)
    return tf


def eval_transform(aug: AugConfig, img_size: int) -> Callable:
    """Resize to img_size / crop_pct, centre crop img_size, normalise: no randomness."""
    return create_transform(
        input_size=img_size,
        is_training=False,
        interpolation=aug.interpolation,
        crop_pct=aug.crop_pct,
        mean=tuple(aug.mean),
        std=tuple(aug.std),
    )


def mixup(loss: LossConfig, num_classes: int) -> Mixup | None:
    """timm Mixup/CutMix on batches (soft targets), or None when both alphas are 0."""
    if loss.mixup <= 0 and loss.cutmix <= 0:
        return None
    return Mixup(
        mixup_alpha=loss.mixup,
        cutmix_alpha=loss.cutmix,
        label_smoothing=loss.label_smoothing,
        num_classes=num_classes,
    )
