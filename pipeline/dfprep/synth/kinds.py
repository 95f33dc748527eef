"""Kinds of manipulation for the dataset miniatures (`dfprep synth --layout all`).

A kind is a face swap applied to the still scene, a reenactment applied frame by frame, or both.
The four kinds of the FF++ sample are the functions of `dfprep.synth.manipulate`; three more exist
only here, so that out-of-distribution and in-the-wild miniatures hold manipulations that no
training miniature uses:
  - poisson_swap (FS): the source face cloned in with Poisson blending (`cv2.seamlessClone`):
    no feathered seam and no colour statistics to match, the gradients decide;
  - eyes (RE): only the eyes are driven (a Face2Face drive with the mouth held still);
  - lipsync (RE): fast, wide mouth bursts (a NeuralTextures drive at 2.5x the rate, 1.6x the opening).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from dfprep.synth.faces import TEMPLATE, Portrait, apply_affine, similarity
from dfprep.synth.manipulate import Drive, reenact, swap_face

SWAPS = ("ae_swap", "poly_swap", "poisson_swap")  # FS
REENACTMENTS = ("f2f", "nt", "eyes", "lipsync")  # RE


@dataclass(frozen=True)
class Kind:
    swap: str = ""  # one of SWAPS, or "" (none)
    reenact: str = ""  # one of REENACTMENTS, or "" (none)

    @property
    def category(self) -> str:
        return "FS" if self.swap else "RE"


KINDS: dict[str, Kind] = {
    "ae_swap": Kind(swap="ae_swap"),  # = FF++ Deepfakes
    "poly_swap": Kind(swap="poly_swap"),  # = FF++ FaceSwap
    "f2f": Kind(reenact="f2f"),  # = FF++ Face2Face
    "nt": Kind(reenact="nt"),  # = FF++ NeuralTextures
    "poly_swap+nt": Kind("poly_swap", "nt"),  # a swap, then lip-synced (FakeAVCeleb)
    "ae_swap+nt": Kind("ae_swap", "nt"),
    "poisson_swap": Kind(swap="poisson_swap"),  # unseen in training
    "eyes": Kind(reenact="eyes"),  # unseen in training
    "lipsync": Kind(reenact="lipsync"),  # unseen in training
}
TRAIN_KINDS = frozenset({"ae_swap", "poly_swap", "f2f", "nt", "poly_swap+nt", "ae_swap+nt"})


def poisson_swap(
    target: np.ndarray, target_lms: np.ndarray, source: np.ndarray, source_lms: np.ndarray
) -> np.ndarray:
    """`target` with the source face cloned over its face by Poisson blending; a new array."""
    h, w = target.shape[:2]
    m = similarity(source_lms, target_lms)
    warped = cv2.warpAffine(
        source, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    valid = cv2.warpAffine(np.ones(source.shape[:2], np.uint8), m, (w, h), borderValue=0)
    outline = cv2.ellipse2Poly((56, 70), (30, 40), 0, 0, 360, 10).astype(np.float64)
    poly = apply_affine(similarity(TEMPLATE, target_lms), outline)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 255)
    mask[:1], mask[-1:], mask[:, :1], mask[:, -1:] = 0, 0, 0, 0  # seamlessClone needs a border
    mask *= valid
    x, y, bw, bh = cv2.boundingRect(mask)
    if bw < 4 or bh < 4:
        return target.copy()
    return cv2.seamlessClone(warped, target, mask, (x + bw // 2, y + bh // 2), cv2.NORMAL_CLONE)


def swap(name: str, target: np.ndarray, target_lms: np.ndarray, donor: Portrait) -> np.ndarray:
    if name == "ae_swap":
        return swap_face(target, target_lms, donor.rgb, donor.landmarks, "Deepfakes")
    if name == "poly_swap":
        return swap_face(target, target_lms, donor.rgb, donor.landmarks, "FaceSwap")
    if name == "poisson_swap":
        return poisson_swap(target, target_lms, donor.rgb, donor.landmarks)
    raise ValueError(f"unknown swap {name!r} (use {', '.join(SWAPS)})")


def reenactment(name: str, drive: Drive) -> Callable[[np.ndarray, np.ndarray, float], np.ndarray]:
    """(frame, landmarks, t) -> frame with the expression of `drive` at t."""
    if name == "f2f":
        method = "Face2Face"
    elif name == "nt":
        method = "NeuralTextures"
    elif name == "eyes":
        method, drive = "Face2Face", dataclasses.replace(drive, mouth=0.0)
    elif name == "lipsync":
        method = "NeuralTextures"
        drive = dataclasses.replace(drive, freq=2.5 * drive.freq, mouth=1.6 * drive.mouth)
    else:
        raise ValueError(f"unknown reenactment {name!r} (use {', '.join(REENACTMENTS)})")

    def effect(frame: np.ndarray, lms: np.ndarray, t: float) -> np.ndarray:
        return reenact(frame, lms, t, drive, method)

    return effect
