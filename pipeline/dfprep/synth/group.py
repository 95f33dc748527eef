"""Two-person scenes of the sample dataset: two people side by side, one of whom gets manipulated.

Each two-person original shows two identities left and right of a still backdrop; each person
sways a little and their face sizes follow the scene's plan over the clip:
  - "smaller": the person who is manipulated in the fakes is the smaller face throughout;
  - "crossing": the manipulated person walks towards the camera while the other walks away, so
    the larger face changes from one to the other half-way through.
A fake changes that one person only (a swap of their face, or a reenactment of their expression);
the other face is pixel for pixel the original's. Every frame is composited afresh from the two
portraits (`scene.paste`), so the boxes of both faces are exact in every frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from dfprep.synth.faces import Portrait
from dfprep.synth.masks import CRF as MASK_CRF
from dfprep.synth.masks import changed_hull, mask_frame
from dfprep.synth.render import FaceTrack
from dfprep.synth.scene import background, paste
from dfprep.videoio import as_rate, encode_video

SCENARIOS = ("smaller", "crossing")
SMALL_FACE, LARGE_FACE = 0.20, 0.34  # face box height / frame height
CENTRES = (0.28, 0.72)  # face centres, fractions of the frame width (left, right)

# (frame, landmarks of the manipulated face in frame pixels, time) -> manipulated frame
FrameEffect = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


@dataclass(frozen=True)
class Person:
    portrait: Portrait
    centre: tuple[float, float]  # face centre at rest, fractions of the frame (x, y)
    heights: tuple[float, float]  # face height / frame height at the clip's start and end
    sway: tuple[float, float, float]  # amplitude (fraction of the width), Hz, phase


@dataclass(frozen=True)
class GroupScene:
    backdrop: np.ndarray  # (h, w, 3) RGB uint8, the frame size
    people: tuple[Person, Person]
    target: int  # which of the two is manipulated in the fakes
    scenario: str
    seconds: float  # the clip's length: the size changes run over it

    @property
    def size(self) -> tuple[int, int]:
        return self.backdrop.shape[1], self.backdrop.shape[0]


def build_group(
    portraits: tuple[Portrait, Portrait],
    size: tuple[int, int],
    scenario: str,
    target: int,
    seconds: float,
    rng: np.random.Generator,
) -> GroupScene:
    """Two people left and right; `target` (0 left, 1 right) is the face the fakes manipulate."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown two-person scenario {scenario!r} (use {', '.join(SCENARIOS)})")
    w, h = size
    jitter = rng.uniform(-0.015, 0.015, 4)
    small, large = SMALL_FACE + jitter[0], LARGE_FACE + jitter[1]
    if scenario == "smaller":
        sizes = {target: (small, small), 1 - target: (large, large)}
    else:
        sizes = {target: (small, large + 0.02), 1 - target: (large + 0.02, small)}
    people = tuple(
        Person(
            portraits[k],
            (CENTRES[k] + jitter[2 + k], 0.5 + float(rng.uniform(-0.04, 0.04))),
            sizes[k],
            (
                float(rng.uniform(0.005, 0.015)),
                float(rng.uniform(0.1, 0.3)),
                float(rng.uniform(0, 2 * math.pi)),
            ),
        )
        for k in (0, 1)
    )
    return GroupScene(background(rng, (h, w)), people, target, scenario, seconds)  # type: ignore[arg-type]


def _placement(scene: GroupScene, person: Person, t: float) -> np.ndarray:
    """2x3 portrait -> frame matrix of a person at time t."""
    w, h = scene.size
    u = min(1.0, max(0.0, t / scene.seconds)) if scene.seconds > 0 else 0.0
    u = u * u * (3 - 2 * u)  # smoothstep: starts and ends at rest
    height = (person.heights[0] + (person.heights[1] - person.heights[0]) * u) * h
    amp, freq, phase = person.sway
    cx = (person.centre[0] + amp * math.sin(2 * math.pi * freq * t + phase)) * w
    cy = person.centre[1] * h + 0.3 * amp * w * math.sin(2 * math.pi * freq * 1.3 * t + phase)
    x1, y1, x2, y2 = person.portrait.box
    s = height / (y2 - y1)
    px, py = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array([[s, 0, cx - s * px], [0, s, cy - s * py]], np.float64)


def render(
    scene: GroupScene, t: float, portraits: Sequence[Portrait] | None = None
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """The frame at time t, and each person's face box and landmarks in frame pixels.

    `portraits` replaces the people's portraits (a face-swapped one) while keeping their motion.
    """
    frame = scene.backdrop.copy()
    boxes, lms = [], []
    for k, person in enumerate(scene.people):
        portrait = person.portrait if portraits is None else portraits[k]
        box, marks = paste(frame, portrait, _placement(scene, person, t))
        boxes.append(box)
        lms.append(marks)
    return frame, boxes, lms


def film_group(
    path: str | Path,
    scene: GroupScene,
    fps: float | Fraction,
    times: Sequence[float],
    *,
    swapped: Portrait | None = None,
    effect: FrameEffect | None = None,
    mask_path: str | Path | None = None,
    crf: int = 23,
    preset: str = "superfast",
) -> FaceTrack:
    """Encode the scene; `swapped` replaces the target's portrait, `effect` reenacts the target.

    The track's boxes and landmarks are the target's (the manipulated face of a fake), `others`
    the other person's boxes. With `mask_path`, also write the FF++-style mask video
    (`dfprep.synth.masks`) of where the fake differs from the original.
    """
    n = len(times)
    boxes, others, lms = np.zeros((n, 4)), np.zeros((n, 4)), np.zeros((n, 5, 2))
    hulls: list[np.ndarray | None] = []
    portraits = None
    if swapped is not None:
        portraits = [p.portrait for p in scene.people]
        portraits[scene.target] = swapped

    def frames() -> Iterator[np.ndarray]:
        for i, t in enumerate(times):
            frame, bs, ls = render(scene, float(t), portraits)
            boxes[i], lms[i], others[i] = bs[scene.target], ls[scene.target], bs[1 - scene.target]
            out = frame if effect is None else effect(frame, lms[i], float(t))
            if mask_path is not None:
                original = frame if portraits is None else render(scene, float(t))[0]
                hulls.append(changed_hull(out, original))
            yield out

    encode_video(path, frames(), fps, crf=crf, preset=preset)
    if mask_path is not None:
        encode_video(
            mask_path, (mask_frame(h, scene.size) for h in hulls), fps, crf=MASK_CRF, preset=preset
        )
    return FaceTrack(
        Path(path), as_rate(fps), scene.size, np.asarray(times, np.float64), boxes, lms, others
    )


def with_face(portrait: Portrait, rgb: np.ndarray) -> Portrait:
    """The portrait with its pixels replaced (a face swap), alpha and face geometry kept."""
    return replace(portrait, rgb=rgb)
