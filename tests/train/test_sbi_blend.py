"""The pseudo-fake generator: where the mask lies, the blend ratio, what differs, determinism."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from dfprep.core.errors import InputError
from dftrain.sbi import SBIConfig, augment_pair, face_points, hull_mask, sample_rng, self_blend
from dftrain.sbi.augment import brightness_contrast, downscale, jpeg, sharpen, shift_hsv, shift_rgb
from sbi_helpers import SIZE, face_crop

SEEDS = range(24)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def test_mask_lies_inside_the_crop_and_covers_the_fitted_hull():
    image, lms = face_crop()
    cfg = SBIConfig()
    hull68 = hull_mask(face_points(lms), SIZE, SIZE)
    hull81 = hull_mask(face_points(lms, cfg.forehead), SIZE, SIZE)
    # how far the defaults can move the hull's edge, in crop pixels: the affine (3 % and 1.5 %
    # translation, 5.3 % scale about the centre), the elastic field, SBI's erosion and blur (k <= 25
    # at >= 192 px, i.e. <= 15 crop pixels each): a generous 32
    core = cv2.erode(hull68, _disk(32))
    reach = cv2.dilate(hull81, _disk(32))
    assert core.sum() > 0.15 * hull68.sum()
    for seed in SEEDS:
        out = self_blend(image, lms, sample_rng(seed, "k"), cfg)
        m = out.mask
        assert m.shape == (SIZE, SIZE) and m.dtype == np.float32 and np.isfinite(m).all()
        assert m.min() >= 0 and m.max() <= out.ratio + 1e-6
        border = np.concatenate([m[0], m[-1], m[:, 0], m[:, -1]])
        assert not border.any(), seed  # inside the crop, not cut by its edge
        assert (m[core > 0] > 0).all(), seed  # covers the hull's core
        assert not m[reach == 0].any(), seed  # and nothing far from the hull


def test_without_the_random_geometry_the_mask_is_the_hull():
    """Affine, elastic and the random blur sizes pinned: the mask's support is the 68-point hull
    up to the 2 pixels of a 5 x 5 erosion and blur, and its full-weight region lies inside it."""
    image, lms = face_crop()
    cfg = SBIConfig(
        forehead_p=0.0, translate=(0.0, 0.0), scale=(1.0, 1.0), elastic_alpha=0.0,
        blur_size=(SIZE, SIZE), blur_kernel=(5, 5), blur_sigma=(5, 5),
    )  # fmt: skip
    hull = hull_mask(face_points(lms), SIZE, SIZE) > 0
    for seed in range(6):
        out = self_blend(image, lms, sample_rng(seed), cfg)
        support = out.mask > 0
        assert (support & hull).sum() / (support | hull).sum() > 0.97
        assert not (out.mask >= out.ratio - 1e-4)[~hull].any()


def test_blend_ratio_is_drawn_from_sbis_set():
    image, lms = face_crop()
    cfg = SBIConfig()
    seen = []
    for seed in range(60):
        out = self_blend(image, lms, sample_rng(seed), cfg)
        assert out.ratio in cfg.blend_ratios
        assert out.mask.max() == pytest.approx(out.ratio, abs=2e-3)  # the mask's peak is the ratio
        seen.append(out.ratio)
    assert set(seen) == {0.25, 0.5, 0.75, 1.0}
    assert 0.3 < seen.count(1.0) / len(seen) < 0.7  # 1 is three of SBI's six entries
    one = dataclasses.replace(cfg, blend_ratios=(0.4,))
    assert self_blend(image, lms, sample_rng(0), one).mask.max() == pytest.approx(0.4, abs=1e-3)


def test_fake_differs_from_its_real_only_where_the_mask_is_positive():
    """Checked exactly, byte for byte: fake == real wherever mask == 0. The real of the pair is
    SBI's target: the input itself, or the input under the source transform (when that fell on
    the target): both happen, and the fake differs from its real inside the mask."""
    image, lms = face_crop()
    unchanged = transformed = 0
    for seed in SEEDS:
        out = self_blend(image, lms, sample_rng(seed), SBIConfig())
        outside = out.mask == 0
        assert outside.any() and np.array_equal(out.fake[outside], out.real[outside])
        assert (out.fake[~outside] != out.real[~outside]).any()
        if np.array_equal(out.real, image):
            unchanged += 1
        else:
            transformed += 1
    assert unchanged and transformed


def test_same_seed_same_bytes_even_in_another_process():
    image, lms = face_crop()
    a = self_blend(image, lms, sample_rng(7, 3, "ffpp-x_s00001_0"))
    b = self_blend(image, lms, sample_rng(7, 3, "ffpp-x_s00001_0"))
    for x, y in zip(a[:3], b[:3], strict=True):
        assert x.tobytes() == y.tobytes()
    assert sample_rng(7, np.int64(3), "k").random() == sample_rng(7, 3, "k").random()
    c = self_blend(image, lms, sample_rng(7, 4, "ffpp-x_s00001_0"))
    assert c.fake.tobytes() != a.fake.tobytes()
    real, fake = augment_pair(a.real, a.fake, sample_rng(1), SBIConfig())
    again = augment_pair(a.real, a.fake, sample_rng(1), SBIConfig())
    assert real.tobytes() == again[0].tobytes() and fake.tobytes() == again[1].tobytes()
    digest = hashlib.sha256(a.fake.tobytes() + a.mask.tobytes()).hexdigest()
    code = (
        "import hashlib, sys; sys.path.insert(0, 'tests'); from sbi_helpers import face_crop;"
        "from dftrain.sbi import self_blend, sample_rng; im, l = face_crop();"
        "o = self_blend(im, l, sample_rng(7, 3, 'ffpp-x_s00001_0'));"
        "print(hashlib.sha256(o.fake.tobytes() + o.mask.tobytes()).hexdigest())"
    )
    env = {"PYTHONHASHSEED": "123"}  # a different str hash: the seed must not depend on it
    import os

    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    assert out.stdout.strip() == digest


@pytest.mark.parametrize(
    ("landmarks", "what"),
    [
        ([0.0] * 10, "landmarks"),
        (np.full((5, 2), 5000.0) + np.arange(10).reshape(5, 2), "outside the image"),
    ],
)
def test_no_face_no_fake(landmarks, what):
    image, _ = face_crop()
    with pytest.raises(InputError) as e:
        self_blend(image, landmarks, sample_rng(0))
    assert what in str(e.value) and "\n" not in str(e.value)


def test_only_rgb_uint8_images():
    image, lms = face_crop()
    with pytest.raises(InputError, match="uint8"):
        self_blend(image.astype(np.float32), lms, sample_rng(0))
    with pytest.raises(InputError, match="uint8"):
        self_blend(image[..., 0], lms, sample_rng(0))


def test_pair_transforms_treat_real_and_fake_alike():
    image, _ = face_crop()
    every = SBIConfig(
        hflip_p=1.0, pair_rgb_shift_p=1.0, pair_hsv_p=1.0, pair_brightness_contrast_p=1.0, jpeg_p=1.0,
        hsv_shift=(10.0, 10.0, 10.0),
    )  # fmt: skip
    for seed in range(5):
        real, fake = augment_pair(image, image.copy(), sample_rng(seed), every)
        assert np.array_equal(real, fake) and not np.array_equal(real, image)
    flip_only = SBIConfig(
        hflip_p=1.0, pair_rgb_shift_p=0, pair_hsv_p=0, pair_brightness_contrast_p=0, jpeg_p=0
    )
    real, _ = augment_pair(image, image, sample_rng(0), flip_only)
    assert np.array_equal(real, image[:, ::-1])
    none = dataclasses.replace(flip_only, hflip_p=0.0)
    assert np.array_equal(augment_pair(image, image, sample_rng(0), none)[0], image)


def test_image_ops_identities_and_effects():
    image, _ = face_crop()
    assert np.array_equal(shift_rgb(image, (0, 0, 0)), image)
    assert np.array_equal(shift_hsv(image, (0.3, -0.3, 0.3)), image)  # under half a level: none
    assert np.array_equal(brightness_contrast(image, 1.0, 0.0), image)
    assert np.array_equal(sharpen(image, 0.0, 1.0), image)
    shifted = shift_rgb(image, (20, 0, -20)).astype(int)
    assert (shifted[..., 0] >= image[..., 0]).all() and (shifted[..., 2] <= image[..., 2]).all()
    assert np.array_equal(shifted[..., 1], image[..., 1])
    for factor in (2, 4):
        small = downscale(image, factor)
        assert small.shape == image.shape and not np.array_equal(small, image)
    errors = [np.abs(jpeg(image, q).astype(int) - image).mean() for q in (40, 100)]
    assert jpeg(image, 40).shape == image.shape and errors[0] > errors[1]
