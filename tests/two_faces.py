"""Test inputs for pairing: two people side by side, an original and fakes in which one of the two
faces is swapped (with the project's own swap), or none is (a re-encode of the original).

Built from the synth primitives (scene, camera, swap), encoded with PyAV; small and short."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfprep.synth.camera import camera_matrix, map_box, random_path, shoot
from dfprep.synth.faces import apply_affine, identity
from dfprep.synth.manipulate import swap_face
from dfprep.synth.scene import build_scene
from dfprep.videoio import encode_video

HALF = (192, 192)  # w, h of each person's half of the frame


@dataclass
class TwoFaces:
    """Per frame, each side's face box in frame pixels (left, right) and the frame times."""

    times: list[float]
    boxes: list[tuple[np.ndarray, np.ndarray]]


def _halves(seed: int, fracs: tuple[float, float]):
    rng = np.random.default_rng(seed)
    scenes = [build_scene(identity(k), HALF, f, rng) for k, f in zip((0, 1), fracs, strict=True)]
    cams = [random_path(rng, HALF, motion=0.3) for _ in scenes]
    return scenes, cams


def write_pair(
    root: Path,
    name: str,
    *,
    swap: str | None,  # "left" | "right" | None (no face changed: a re-encode)
    fracs: tuple[float, float] = (0.5, 0.32),  # face height / frame height per side
    fps: float = 5,
    seconds: float = 2.0,
    seed: int = 0,
    crf: int = 23,
    original: bool = True,
    people: int = 2,  # 1: the left person alone
) -> TwoFaces:
    """Write ROOT/real/NAME.mp4 (the original, if ORIGINAL) and ROOT/fake/NAME.mp4 (the fake)."""
    scenes, cams = _halves(seed, fracs)
    donor = identity(2)
    times = [i / fps for i in range(round(seconds * fps))]
    boxes = []
    frames_o, frames_f = [], []
    for t in times:
        parts_o, parts_f, bx = [], [], []
        for side, (sc, cam) in enumerate(list(zip(scenes, cams, strict=True))[:people]):
            frame, m = shoot(sc.canvas, camera_matrix(cam, t, sc.anchor), HALF)
            box = map_box(m, sc.box)
            lms = apply_affine(m, sc.landmarks)
            parts_o.append(frame)
            changed = swap == ("left", "right")[side]
            parts_f.append(
                swap_face(frame, lms, donor.rgb, donor.landmarks, "Deepfakes") if changed else frame
            )
            bx.append(box + np.array([side * HALF[0], 0, side * HALF[0], 0]))
        frames_o.append(np.concatenate(parts_o, axis=1))
        frames_f.append(np.concatenate(parts_f, axis=1))
        boxes.append(tuple(bx))
    if original:
        encode_video(root / "real" / f"{name}.mp4", frames_o, fps, crf=crf)
    encode_video(root / "fake" / f"{name}.mp4", frames_f, fps, crf=crf + 2)
    return TwoFaces(times, boxes)


def write_mask(path: Path, truth: TwoFaces, side: int, fps: float = 5) -> Path:
    """A publisher-style mask video: white inside the manipulated face's box, black elsewhere."""
    frames = []
    for bx in truth.boxes:
        m = np.zeros((HALF[1], 2 * HALF[0], 3), np.uint8)
        x1, y1, x2, y2 = (round(float(v)) for v in bx[side])
        m[max(0, y1) : y2, max(0, x1) : x2] = 255
        frames.append(m)
    return encode_video(path, frames, fps, crf=18)


def side_of(bbox, truth: TwoFaces) -> int:
    """Which side (0 left, 1 right) a crop's box lies on."""
    return int((bbox[0] + bbox[2]) / 2 >= HALF[0])
