"""Film a scene with a moving camera into an H.264 MP4, recording where the face is in every frame."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from dfprep.core.errors import ConfigError
from dfprep.synth.camera import CameraPath, camera_matrix, map_box, random_path, shoot
from dfprep.synth.faces import apply_affine, identity
from dfprep.synth.masks import CRF as MASK_CRF
from dfprep.synth.masks import changed_hull, mask_frame
from dfprep.synth.scene import Scene, build_scene
from dfprep.videoio import as_rate, encode_video

# (frame, landmarks in frame pixels, time) -> manipulated frame
FrameEffect = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


@dataclass(frozen=True)
class FaceTrack:
    """Ground truth of a written video: the face in every frame, in source (frame) pixels."""

    path: Path
    fps: Fraction
    size: tuple[int, int]  # w, h
    times: np.ndarray  # (n,) seconds
    boxes: np.ndarray  # (n, 4) x1, y1, x2, y2 of the detector's box on the source photo, mapped
    landmarks: np.ndarray  # (n, 5, 2)
    # two-person scenes: the other, pristine face's boxes (n, 4); None when the scene has one face
    others: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.times)


def film(
    path: str | Path,
    scene: Scene,
    camera: CameraPath,
    fps: float | Fraction,
    times: Sequence[float],
    *,
    effect: FrameEffect | None = None,
    gop: int | None = None,
    crf: int = 23,
    preset: str = "superfast",
    vfr: bool = False,
    mask_path: str | Path | None = None,
    reference: np.ndarray | None = None,
    **encode: Any,
) -> FaceTrack:
    """Encode one frame per time in `times`; with vfr the times are written as presentation times.
    ENCODE: more `encode_video` options (`codec`, `rotation`, `start`: the tests' foreign files).

    With `mask_path`, also write the FF++-style mask video of this fake (`dfprep.synth.masks`):
    where its frames differ from the original's, which is `reference` (the original's canvas) seen
    through the same camera, or the frame before `effect` when `reference` is None.
    """
    size = scene.size
    boxes = np.zeros((len(times), 4))
    lms = np.zeros((len(times), 5, 2))
    hulls: list[np.ndarray | None] = []

    def frames() -> Iterator[np.ndarray]:
        for i, t in enumerate(times):
            ideal = camera_matrix(camera, float(t), scene.anchor)
            frame, m = shoot(scene.canvas, ideal, size)
            boxes[i] = map_box(m, scene.box)
            lms[i] = apply_affine(m, scene.landmarks)
            out = frame if effect is None else effect(frame, lms[i], float(t))
            if mask_path is not None:
                ref = frame if reference is None else shoot(reference, ideal, size)[0]
                hulls.append(changed_hull(out, ref))
            yield out

    vtimes = list(times) if vfr else None
    encode_video(path, frames(), fps, gop=gop, crf=crf, preset=preset, times=vtimes, **encode)
    if mask_path is not None:
        masks = (mask_frame(h, size) for h in hulls)
        encode_video(mask_path, masks, fps, gop=gop, crf=MASK_CRF, preset=preset, times=vtimes)
    return FaceTrack(Path(path), as_rate(fps), size, np.asarray(times, np.float64), boxes, lms)


def frame_times(fps: float | Fraction, seconds: float) -> list[float]:
    rate = as_rate(fps)
    n = max(1, round(seconds * rate))
    return [float(i / rate) for i in range(n)]


def make_face_video(
    path: str | Path,
    fps: float | Fraction = 25,
    size: tuple[int, int] = (640, 360),
    seconds: float = 2.0,
    *,
    identity_index: int = 0,
    seed: int = 0,
    face_frac: float = 0.35,
    motion: float = 1.0,
    gop: int | None = None,
    times: Sequence[float] | None = None,
    crf: int = 23,
    preset: str = "superfast",
    **encode: Any,
) -> FaceTrack:
    """One real face filmed by a moving camera; returns its exact box/landmarks in every frame.

    `times` (seconds, increasing) makes a variable-frame-rate file with those presentation times
    (then `seconds` is ignored); `gop` is the keyframe interval in frames (None: x264's default).
    `motion` scales the camera's pan/zoom/shake (0: a still camera). ENCODE: more
    `encode_video` options (another `codec`, a `start` time).
    """
    w, h = size
    if w < 64 or h < 64 or w % 2 or h % 2:
        raise ConfigError(f"make_face_video: size must be even and at least 64x64, got {w}x{h}")
    if not 0.05 <= face_frac <= 0.6:
        raise ConfigError(f"make_face_video: face_frac must be in [0.05, 0.6], got {face_frac}")
    if times is not None:
        times = [float(t) for t in times]
        if not times or any(b <= a for a, b in itertools.pairwise(times)) or times[0] < 0:
            raise ConfigError(
                "make_face_video: times must be a non-empty increasing list of seconds >= 0"
            )
    elif seconds <= 0:
        raise ConfigError(f"make_face_video: seconds must be positive, got {seconds}")
    rng = np.random.default_rng([seed, 7, identity_index])
    scene = build_scene(identity(identity_index), size, face_frac, rng)
    camera = random_path(rng, size, motion=motion)
    return film(
        path,
        scene,
        camera,
        fps,
        times if times is not None else frame_times(fps, seconds),
        gop=gop,
        crf=crf,
        preset=preset,
        vfr=times is not None,
        **encode,
    )
