"""Self-Blended Images (Shiohara & Yamasaki, CVPR 2022): pseudo-fakes made from real crops.

What a loader calls, per real crop (RGB uint8, its .json record):
    lms = crop_landmarks(meta["bbox"], meta["landmarks"], margin, size)   # into crop pixels
    rng = sample_rng(seed, epoch, meta["key"])
    out = self_blend(image, lms, rng, cfg)              # out.real (label 0), out.fake (label 1)
    real, fake = augment_pair(out.real, out.fake, rng, cfg)   # SBI's shared training transforms
`valid_landmarks(meta["landmarks"])` tells the crops that have landmarks (shipped faces do not).
Pure numpy / OpenCV: no torch. docs/train.md describes the method, docs/deviations.md what
differs from SBI's own recipe.
"""

import importlib

# The names below load on first use (PEP 562): `dftrain.config` imports `dftrain.sbi.config`, and
# every `dftrain` command would otherwise import OpenCV and the face shape with it.
_HOME = {
    "augment": ("augment_pair", "source_transform"),
    "blend": ("SelfBlend", "blend_mask", "sample_rng", "self_blend"),
    "config": ("SBIConfig",),
    "shape": ("crop_landmarks", "ellipse_mask", "face_points", "fit_similarity", "hull_mask",
              "mean_shape", "valid_landmarks"),
}  # fmt: skip
_MODULE = {name: module for module, names in _HOME.items() for name in names}


def __getattr__(name: str):
    if name not in _MODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE[name]}"), name)


__all__ = [
    "SBIConfig",
    "SelfBlend",
    "augment_pair",
    "blend_mask",
    "crop_landmarks",
    "ellipse_mask",
    "face_points",
    "fit_similarity",
    "hull_mask",
    "mean_shape",
    "sample_rng",
    "self_blend",
    "source_transform",
    "valid_landmarks",
]
