"""Which frames a 1-FPS sampler keeps, and where seeking pays: pure functions, no I/O.

The rule: for each sampling time k/fps (seconds from the first frame), take the first frame at or
after it. A frame serves once, so when a gap in a variable-frame-rate stream skips several
sampling times, the frame after the gap is taken once, under the first of those times.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Sequence

EPS = 1e-6  # seconds; absorbs float error in pts * time_base (below one tick of a 1/1e6 time base)


def sample_times(duration: float, fps: float) -> list[float]:
    """The times k/fps inside [0, duration); never empty, so a clip shorter than one interval
    still gets its first frame. A time after the last frame's start gets no frame."""
    if not fps > 0:
        raise ValueError(f"sampling fps must be > 0, got {fps!r}")
    n = max(1, math.ceil(duration * fps - EPS))
    return [k / fps for k in range(n)]


class SampleSelector:
    """The sampling rule in streaming form: offer frame times in presentation order."""

    def __init__(self, fps: float) -> None:
        if not fps > 0:
            raise ValueError(f"sampling fps must be > 0, got {fps!r}")
        self.fps = fps
        self.next_index = 0  # k of the next sampling time still to serve
        self.last_time = -math.inf  # time of the last frame taken

    @property
    def next_time(self) -> float:
        return self.next_index / self.fps

    def offer(self, t: float) -> int | None:
        """The sample index k this frame serves, or None to skip it.

        Frames at or before the last taken one are skipped too, so frames decoded twice (after a
        seek that lands early) are harmless.
        """
        if t < self.next_time - EPS or t <= self.last_time + EPS:
            return None
        k = self.next_index
        self.next_index = max(k + 1, math.floor(t * self.fps + EPS) + 1)
        self.last_time = t
        return k


def select_samples(frame_times: Sequence[float], fps: float) -> list[tuple[int, int]]:
    """(sample index, position in frame_times) of each kept frame; times in presentation order."""
    sel = SampleSelector(fps)
    out = []
    for i, t in enumerate(frame_times):
        k = sel.offer(t)
        if k is not None:
            out.append((k, i))
    return out


def plan_seeks(
    times: Sequence[float],
    keyframes: Sequence[float],
    rate: float,
    duration: float,
    *,
    min_skip_frames: float,
    min_saving: float = 0.0,
) -> dict[int, int]:
    """Sample index -> index into `keyframes` (sorted times) to seek to before serving it.

    After serving sample k-1 the decoder stands at about times[k-1]. Reaching sample k needs a
    decode from its preceding keyframe; a seek there pays only when that keyframe lies at least
    `min_skip_frames` frames (at `rate` fps) ahead of the decoder, since a seek costs about that
    many frame decodes. The plan is dropped (decode straight through) unless it saves at least
    `min_saving` of the video's frames after those costs: with keyframes far apart it saves at
    most one sampling interval per keyframe interval, too little to be worth a seek's random
    reads and demuxer quirks. min_skip_frames=0 and min_saving=0 seek wherever anything is skipped.
    """
    plan: dict[int, int] = {}
    saved = 0.0
    pos = 0.0
    for k, t in enumerate(times):
        i = bisect_right(keyframes, t + EPS) - 1
        if i >= 0 and keyframes[i] > pos + EPS:
            skip = (keyframes[i] - pos) * rate
            if skip >= min_skip_frames:
                plan[k] = i
                saved += skip - min_skip_frames
        pos = max(pos, t)
    total = duration * rate
    if plan and min_saving > 0 and not (total > 0 and saved / total >= min_saving):
        return {}
    return plan


_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs by value: 2.png < 10.png, frame_9 < frame_10."""
    parts = _DIGITS.split(name)
    # re.split with one group alternates text, digits, text, ...: int and str never meet.
    return (tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), name)
