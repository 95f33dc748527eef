"""SBIConfig: SBI's values as defaults, every field validated with a one-line error."""

from __future__ import annotations

import dataclasses

import pytest

from dfprep.core.config import build, rule_of
from dfprep.core.errors import ConfigError
from dftrain.sbi import SBIConfig


def test_defaults_are_sbis_recipe():
    c = SBIConfig()
    assert c.forehead_p == 0.75  # 81 points with p 0.75, else 68
    assert (c.source_p, c.rgb_shift, c.rgb_shift_p) == (0.5, 20.0, 0.3)
    assert c.hsv_shift == (0.3, 0.3, 0.3) and (c.brightness, c.contrast) == (0.1, 0.1)
    assert c.downscale_factors == (2, 4) and c.downscale_p == 0.5
    assert (c.sharpen_alpha, c.sharpen_lightness) == ((0.2, 0.5), (0.5, 1.0))
    assert c.translate == (0.03, 0.015) and c.scale == (0.95, 1 / 0.95)
    assert (c.elastic_alpha, c.elastic_sigma) == (50.0, 7.0)
    assert (c.blur_size, c.blur_kernel, c.blur_sigma) == ((192, 256), (5, 25), (5, 45))
    assert c.blend_ratios == (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
    assert (c.hflip_p, c.pair_rgb_shift_p, c.pair_hsv_p, c.pair_brightness_contrast_p) == (
        0.5,
        0.3,
        0.3,
        0.3,
    )
    assert (c.pair_brightness, c.pair_contrast, c.jpeg_p, c.jpeg_quality) == (
        0.3,
        0.3,
        0.5,
        (40, 100),
    )


def test_every_field_has_a_rule():
    assert all(rule_of(f) is not None for f in dataclasses.fields(SBIConfig))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("forehead_p", 1.5),
        ("forehead", 0.0),
        ("source_p", -0.1),
        ("rgb_shift", float("nan")),
        ("hsv_shift", [1.0, 2.0]),
        ("brightness", "0.1"),
        ("downscale_factors", [2, 2]),
        ("downscale_factors", [1]),
        ("downscale_factors", []),
        ("sharpen_alpha", [0.5, 0.2]),
        ("translate", [0.03]),
        ("scale", [1.1, 0.9]),
        ("elastic_sigma", 0),
        ("blur_size", [256, 192]),
        ("blur_kernel", [6, 6]),
        ("blur_sigma", [0, 5]),
        ("blend_ratios", [0.0, 1.0]),
        ("blend_ratios", []),
        ("jpeg_quality", [40, 101]),
        ("hflip_p", True),
    ],
)
def test_a_bad_value_is_one_line_naming_its_key(key, value):
    with pytest.raises(ConfigError) as e:
        build(SBIConfig, {key: value})
    msg = str(e.value)
    assert msg.startswith(f"train.sbi.{key}: ") and "\n" not in msg


def test_built_from_a_params_mapping():
    c = build(
        SBIConfig, {"blend_ratios": [0.5, 1], "blur_kernel": [7, 7], "jpeg_quality": [60, 90]}
    )
    assert c.blend_ratios == (0.5, 1.0) and c.blur_kernel == (7, 7)
    with pytest.raises(ConfigError, match="unknown parameter"):
        build(SBIConfig, {"blend_ratio": [1]})
