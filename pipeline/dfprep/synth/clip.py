"""One miniature video (or folder of shipped face crops): an identity filmed, optionally manipulated.

A fake shares its original's `scene_seed`, so it is the original's footage (same background,
camera, size and rate) with only the manipulation added, as in FF++. Post-processing for the
in-the-wild miniatures: `downscale` (each frame shrunk and blown back up) and `crf` (x264's
compression) for videos, `jpeg` (a JPEG round trip) for face crops.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfprep.crop import crop_face
from dfprep.synth.camera import camera_matrix, map_box, random_path, shoot
from dfprep.synth.faces import apply_affine, identity
from dfprep.synth.kinds import KINDS, reenactment, swap
from dfprep.synth.manipulate import random_drive
from dfprep.synth.render import film, frame_times
from dfprep.synth.scene import Scene, build_scene

FACE_FRAC = (0.30, 0.40)  # face box height / frame height
SHIPPED_MARGIN = 0.3  # shipped face crops: the box enlarged like extract's


@dataclass(frozen=True)
class Clip:
    rel: str  # path under the dataset root: a video file, or the folder of face crops
    ident: int  # the identity filmed (the target of a fake)
    scene_seed: int  # background + camera; a fake uses its original's
    kind: str = "real"  # "real" or a key of kinds.KINDS
    donor: int = -1  # the face swapped in
    drive_seed: int = 0  # the reenactment's expression
    size: tuple[int, int] = (320, 240)
    fps: float = 10.0
    seconds: float = 4.0
    crf: int = 23
    preset: str = "superfast"
    segment: tuple[float, float] | None = None  # manipulated only for a <= t < b
    images: int = 0  # > 0: this many shipped face crops (PNG) instead of a video
    face_px: int = 160
    jpeg: int = 0  # shipped crops: JPEG round trip at this quality (0 = none)
    downscale: float = 1.0  # < 1: every frame shrunk by this factor and blown back up


def _degrade(frame: np.ndarray, factor: float) -> np.ndarray:
    if factor >= 1.0:
        return frame
    h, w = frame.shape[:2]
    small = cv2.resize(
        frame, (max(8, round(w * factor)), max(8, round(h * factor))), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else img


def render(root: Path, clip: Clip) -> Path:
    """Write `clip` under root; returns its path."""
    rng = np.random.default_rng([0x5C1, clip.scene_seed])
    scene = build_scene(identity(clip.ident), clip.size, float(rng.uniform(*FACE_FRAC)), rng)
    camera = random_path(rng, clip.size)
    kind = KINDS[clip.kind] if clip.kind != "real" else None
    effects = []
    if kind is not None and kind.swap:
        donor = identity(clip.donor)
        if clip.segment is None:  # the whole video: swap once, on the still scene
            canvas = swap(kind.swap, scene.canvas, scene.landmarks, donor)
            scene = Scene(canvas, scene.box, scene.landmarks, scene.anchor, scene.size)
        else:
            effects.append(lambda f, lms, t, s=kind.swap, d=donor: swap(s, f, lms, d))
    if kind is not None and kind.reenact:
        effects.append(
            reenactment(kind.reenact, random_drive(np.random.default_rng([0xD71, clip.drive_seed])))
        )
    seg = clip.segment

    def effect(frame: np.ndarray, lms: np.ndarray, t: float) -> np.ndarray:
        if seg is None or seg[0] <= t < seg[1]:
            for fx in effects:
                frame = fx(frame, lms, t)
        return _degrade(frame, clip.downscale)

    path = root / clip.rel
    path.parent.mkdir(parents=True, exist_ok=True)
    times = frame_times(clip.fps, clip.seconds)
    if not clip.images:
        film(path, scene, camera, clip.fps, times, effect=effect, crf=clip.crf, preset=clip.preset)
        return path
    path.mkdir(parents=True, exist_ok=True)
    for i in range(clip.images):
        t = i / clip.fps
        frame, m = shoot(scene.canvas, camera_matrix(camera, t, scene.anchor), clip.size)
        frame = effect(frame, apply_affine(m, scene.landmarks), t)
        face = crop_face(frame, tuple(map_box(m, scene.box)), SHIPPED_MARGIN, clip.face_px)
        bgr = cv2.cvtColor(face, cv2.COLOR_RGB2BGR)
        if clip.jpeg:
            bgr = _jpeg(bgr, clip.jpeg)
        cv2.imwrite(str(path / f"{i:03d}.png"), bgr)
    return path
