"""`SBIConfig`: every setting of the self-blended pseudo-fakes, SBI's values as defaults.

Shiohara & Yamasaki's public code (`src/utils/sbi.py`, `blend.py`, `funcs.py`) is the reference;
each field names what it reproduces. Ready to be nested as `train.sbi` (hence `SECTION`).
Pixel sizes are in the crop's pixels: SBI applied its elastic deformation to frames of FF++ whose
faces are 150-300 pixels wide; the blur steps work on the mask resized to `blur_size`, so they are
independent of the crop size, as in SBI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dfprep.core.config import Bool, Checked, Float, Int, Reject, Seq, Text, param, reject, show

__all__ = ["AUTO_MARGIN", "SBIConfig"]

_P = Float(0, 1)
AUTO_MARGIN = "auto"


@dataclass(frozen=True)
class _Margin(Float):
    """A number in [lo, hi] (dfprep's crop.margin rule), or `auto`."""

    def __call__(self, v: Any) -> float | str:  # type: ignore[override]
        if v == AUTO_MARGIN:
            return v
        try:
            return super().__call__(v)
        except Reject:
            raise Reject(f"{show(v)} is not {self.allowed}") from None

    @property
    def allowed(self) -> str:
        return f"auto or a number {super().allowed}"


def _dataset_name(s: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z0-9_\-]+", s) else f"{s!r} is not a dataset name"


@dataclass(frozen=True)
class SBIConfig(Checked):
    SECTION = "train.sbi"

    # --- the method. enabled (`dftrain run --sbi`): train on the real crops alone (crop label and
    # video label real) and make each one's pseudo-fake in the loader, a 1:1 batch
    enabled: bool = param(False, Bool())
    # the datasets whose reals are used (SBI: FF++'s real training videos); () = every dataset
    datasets: tuple[str, ...] = param(
        (), Seq(Text(_dataset_name, "a dataset name"), max_n=1000, unique=True)
    )
    # the crops' margin (dfprep crop.margin), which places the landmarks in the crop: auto = as the
    # balance output records it (stats.json); a number is checked against that record when there is one
    margin: float | str = param(AUTO_MARGIN, _Margin(0, 4))

    # --- the hull. SBI: the 81-point hull (68 + 13 forehead points) with p 0.75, else the 68.
    forehead_p: float = param(0.75, _P)
    # height of the forehead arc above the brows, in brow-to-nose-base lengths (1: rule of thirds)
    forehead: float = param(1.0, Float(0, 3, lo_open=True))

    # --- the "source" transform, on the source or (1 - source_p) on the target
    source_p: float = param(0.5, _P)
    rgb_shift: float = param(20.0, Float(0, 255))  # +- grey levels per channel (RGBShift 20)
    rgb_shift_p: float = param(0.3, _P)
    # hue, saturation, value shifts in OpenCV's 8-bit HSV levels (hue has 180): SBI's +-0.3 (p 1),
    # which on 8-bit images moves a level at most (see docs/deviations.md)
    hsv_shift: tuple[float, float, float] = param((0.3, 0.3, 0.3), Seq(Float(0, 255), n=3))
    brightness: float = param(0.1, Float(0, 1))  # RandomBrightnessContrast(0.1, 0.1), p 1
    contrast: float = param(0.1, Float(0, 1))
    # then one of: a random downscale (p downscale_p) or a sharpen
    downscale_p: float = param(0.5, _P)
    downscale_factors: tuple[int, ...] = param(
        (2, 4), Seq(Int(2, 64), min_n=1, max_n=16, unique=True)
    )
    sharpen_alpha: tuple[float, float] = param((0.2, 0.5), Seq(Float(0, 1), n=2, ordered=True))
    sharpen_lightness: tuple[float, float] = param((0.5, 1.0), Seq(Float(0, 8), n=2, ordered=True))

    # --- the geometry of the source and the mask
    translate: tuple[float, float] = param((0.03, 0.015), Seq(Float(0, 0.5), n=2))  # x, y: +- side
    scale: tuple[float, float] = param((0.95, 1 / 0.95), Seq(Float(0.5, 2), n=2, ordered=True))
    elastic_alpha: float = param(50.0, Float(0, 1000))  # mask only, pixels
    elastic_sigma: float = param(7.0, Float(0, 100, lo_open=True))

    # --- the blend (SBI's dynamic_blend): the mask resized to a random size in blur_size, eroded by
    # a random odd blur_kernel, blurred by another with a random integer sigma in blur_sigma,
    # resized back and scaled by a ratio drawn from blend_ratios
    blur_size: tuple[int, int] = param((192, 256), Seq(Int(8, 4096), n=2, ordered=True))
    blur_kernel: tuple[int, int] = param((5, 25), Seq(Int(1, 255), n=2, ordered=True))
    blur_sigma: tuple[int, int] = param((5, 45), Seq(Int(1, 1000), n=2, ordered=True))
    blend_ratios: tuple[float, ...] = param(
        (0.25, 0.5, 0.75, 1.0, 1.0, 1.0), Seq(Float(0, 1, lo_open=True), min_n=1, max_n=64)
    )

    # --- SBI's training transforms, drawn once per pair and applied to the real and its fake alike
    hflip_p: float = param(0.5, _P)
    pair_rgb_shift_p: float = param(0.3, _P)  # shift: rgb_shift
    pair_hsv_p: float = param(0.3, _P)  # shift: hsv_shift
    pair_brightness_contrast_p: float = param(0.3, _P)
    pair_brightness: float = param(0.3, Float(0, 1))
    pair_contrast: float = param(0.3, Float(0, 1))
    jpeg_p: float = param(0.5, _P)
    jpeg_quality: tuple[int, int] = param((40, 100), Seq(Int(1, 100), n=2, ordered=True))

    def cross_check(self) -> None:
        lo, hi = self.blur_kernel
        if lo == hi and lo % 2 == 0:
            raise reject(
                f"{self.SECTION}.blur_kernel", f"{list(self.blur_kernel)} holds no odd size"
            )
