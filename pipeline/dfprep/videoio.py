"""Writing H.264 MP4 files with PyAV (for the sample dataset, tests and benchmarks)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

COMMON_RATES = {25: Fraction(25), 30: Fraction(30), 29.97: Fraction(30000, 1001), 24: Fraction(24)}


def as_rate(fps: float | Fraction) -> Fraction:
    """25 -> 25/1, 29.97 -> 30000/1001 (the NTSC rate, not 2997/100)."""
    if isinstance(fps, Fraction):
        return fps
    for k, v in COMMON_RATES.items():
        if abs(float(fps) - k) < 1e-6:
            return v
    return Fraction(fps).limit_denominator(1001)


def encode_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float | Fraction,
    *,
    gop: int | None = None,
    crf: int = 28,
    preset: str = "veryfast",
    times: Sequence[float] | None = None,
    threads: int = 1,
    frame_format: str = "rgb24",
    codec: str = "libx264",
    rotation: int = 0,
    start: float = 0.0,
) -> Path:
    """Encode uint8 frames as H.264/yuv420p MP4: RGB (H, W, 3; even sizes), or with
    `frame_format="yuv420p"` I420 planes stacked as (H * 3/2, W), which x264 takes as they are
    (no colour conversion per frame).

    `gop` is the keyframe interval in frames (None: the encoder's default). `times` gives explicit
    presentation times in seconds for a variable-frame-rate file; otherwise frame i is at i / fps.
    `threads` is the encoder's thread count (0: as many as it likes).

    The container follows the file's extension (.mp4, .webm, .ogv, .avi, .ts, ...). Phone-like and
    foreign files for the tests: `codec` another FFmpeg encoder (`mpeg4`: MPEG-4 Part 2, `libvpx`:
    VP8; `crf` and `preset` are x264's), `rotation` a display matrix turning the frames that many
    degrees counter-clockwise for display (what `VideoFrame.rotation` reads back), `start` the
    stream's first presentation time in seconds (a stream that starts after zero).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = as_rate(fps)
    time_base = Fraction(1, 90000) if times is not None or start else 1 / rate
    offset = round(start / time_base)
    with av.open(str(path), mode="w") as out:
        stream = None
        for i, frame in enumerate(frames):
            if stream is None:
                h, w = frame.shape[:2]
                if frame_format == "yuv420p":
                    h = h * 2 // 3
                stream = out.add_stream(codec, rate=rate)
                stream.width, stream.height = w, h
                stream.pix_fmt = "yuv420p"
                stream.time_base = time_base
                stream.codec_context.time_base = time_base
                stream.thread_count = threads
                opts = {"crf": str(crf), "preset": preset} if codec == "libx264" else {}
                if gop is not None and codec == "libx264":
                    opts.update(g=str(gop), keyint_min=str(gop), sc_threshold="0")
                elif gop is not None:
                    stream.codec_context.gop_size = gop
                stream.options = opts
                if rotation:
                    stream.set_display_rotation(rotation)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=frame_format)
            vf.pts = offset + (
                round(times[i] / time_base) if times is not None else round(i / rate / time_base)
            )
            vf.time_base = time_base
            for packet in stream.encode(vf):
                out.mux(packet)
        if stream is None:
            raise ValueError(f"no frames to encode for {path}")
        for packet in stream.encode(None):
            out.mux(packet)
    return path
