"""Sampled RGB frames from a video (PyAV) or a folder of images, at `DecodeConfig.fps`.

Videos: a demux-only pass (no decoding, ~1 ms per second of video) reads every packet's pts and
keyframe flag; `plan_seeks` decides from the keyframe spacing where a seek beats decoding straight
on; then frames are decoded packet by packet, a packet that fails is counted in `info.errors`
and skipped, and only the sampled frames are converted to RGB. Both strategies yield the same
frames. Files that cannot be opened raise `DecodeError` with a one-line reason; containers are
always closed (PyAV's reference cycles keep unclosed ones alive in long-lived workers).
An optional `check` callback runs before every packet is read (both passes) and every image of a
folder, so a time limit can stop a video between packets, not only between sampled frames.

Frame folders (kind="frames"): images in natural name order, every `frame_stride`-th kept.
Folders carry no timing, so image i is taken to be at i seconds (`time = frame_index / 1.0`).
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from dfprep.config import DECODE_STRATEGIES, DecodeConfig
from dfprep.core.errors import TRANSIENT_ERRNOS, ConfigError, DfprepError
from dfprep.core.media import IMAGE_EXTS, first_video_stream
from dfprep.sampling import SampleSelector, natural_key, plan_seeks, sample_times, select_samples

STRATEGIES = DECODE_STRATEGIES


@dataclass
class SampledFrame:
    sample_index: int  # k of the sampling time k/fps (frame folders: position among kept images)
    frame_index: int  # presentation-order frame number (frame folders: image index in name order)
    time: float  # seconds from the first frame
    image: np.ndarray  # RGB uint8 HxWx3, in display orientation
    # the presentation time in seconds, as a player shows it: `time` plus the stream's first
    # timestamp, which is not 0 in some files (MPEG-TS, edited MP4s); frame folders: `time`
    pts_time: float = 0.0


@dataclass
class VideoInfo:
    # the frame size the frames are given in (the crops' boxes use it): the display size once a
    # frame is decoded (a phone's portrait clip, stored landscape with a rotation, is W < H), the
    # coded size before that
    width: int
    height: int
    duration: float  # seconds from the first frame to the end of the last one
    fps: float  # average frame rate (frame folders: 1.0)
    kind: str  # "video" | "frames"
    strategy: str  # "seek" | "sequential" | "frames"; planned at open, final after the frames
    errors: int = 0  # packets/images skipped as unreadable; final once the frames are consumed


class DecodeError(DfprepError):
    """A video or frame folder that yields no frames; `reason` is the cause without the path.
    `transient`: the cause can pass (the file missing, a read that failed), see
    `dfprep.extract.failures`; the file's own content never is."""

    def __init__(self, path: str | os.PathLike, reason: str, transient: bool = False) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason
        self.transient = transient

    def __reduce__(self):  # picklable across Dask workers despite the constructor's arguments
        return (type(self), (self.path, self.reason, self.transient))


@contextmanager
def open_sampled(
    path: str | os.PathLike,
    cfg: DecodeConfig,
    *,
    kind: str = "video",
    frame_stride: int = 1,
    threads: int = 1,
    check: Callable[[], None] | None = None,
) -> Iterator[tuple[VideoInfo, Iterator[SampledFrame]]]:
    """Open a video or frame folder; yields (info, frames) and closes everything on exit.

    `threads` caps the decoder's threads (0 = FFmpeg's choice, all cores). The frames iterator
    raises DecodeError("no decodable frames") if it ends without yielding any. `check()` is
    called between packets; whatever it raises stops decoding and propagates.
    """
    _check_args(kind, frame_stride)
    check = check or _no_check
    if kind == "frames":
        yield _open_frame_folder(Path(path), cfg, frame_stride, check)
        return
    with _open_video(Path(path), cfg, threads, check) as opened:
        yield opened


def _no_check() -> None:
    pass


def _check_args(kind: str, frame_stride: int) -> None:
    """The per-input arguments (cfg was validated when it was made: dfprep.config)."""
    if kind not in ("video", "frames"):
        raise ConfigError(f"unknown input kind {kind!r} (expected video or frames)")
    if frame_stride < 1:
        raise ConfigError(f"frame_stride must be >= 1, got {frame_stride!r}")


# ----------------------------------------------------------------------------------------- video


@dataclass
class _PacketIndex:
    """What the demux-only pass learns about the video stream."""

    pts: list[int]  # sorted pts of all packets that have one (= presentation order)
    keyframes: list[int]  # sorted pts of keyframe packets
    key_dts: list[int | None]  # their dts (some demuxers seek by dts, see _VideoReader._seek)
    end: int | None  # largest pts + duration
    packets: int
    empty: int = 0  # zero-byte packets: "repeat the previous frame" (Theora), not frames


@contextmanager
def _open_video(path: Path, cfg: DecodeConfig, threads: int, check: Callable[[], None]):
    _check_file(path)
    with _container(path, cfg.max_pixels) as scan:
        stream = _video_stream(scan, path, cfg)
        index = _scan_packets(scan, stream, check)
        # declared but unreadable (truncated file); a container that counts its empty packets as
        # frames (AVI's dropped frames) does not make them missing
        missing = max(0, stream.frames - index.packets - index.empty)
        rate = stream.average_rate or stream.guessed_rate
        tb = stream.time_base
        width, height = stream.codec_context.width, stream.codec_context.height
    if not index.packets:
        raise DecodeError(path, "no video packets (empty or truncated stream)")
    origin = index.pts[0] if index.pts else None
    duration = float((index.end - origin) * tb) if origin is not None and index.end else 0.0
    fps = float(rate) if rate else (index.packets / duration if duration else 0.0)

    plan: dict[int, int] = {}
    if cfg.strategy != "sequential" and origin is not None and index.keyframes and fps > 0:
        keys = [float((p - origin) * tb) for p in index.keyframes]
        auto = cfg.strategy == "auto"
        plan = plan_seeks(
            sample_times(duration, cfg.fps),
            keys,
            fps,
            duration,
            min_skip_frames=cfg.seek_min_frames if auto else 0,
            min_saving=cfg.seek_min_saving if auto else 0.0,
        )

    info = VideoInfo(
        width=width,
        height=height,
        duration=duration,
        fps=fps,
        kind="video",
        strategy="seek" if plan else "sequential",
        errors=missing,
    )
    reader = _VideoReader(path, cfg, threads, info, index, origin, tb, plan, check)
    try:
        yield info, reader.frames()
    finally:
        reader.close()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DecodeError(path, "file not found", transient=True)
    if path.is_dir():
        raise DecodeError(path, "is a directory, not a video file (frame folders need kind=frames)")
    if not path.is_file():  # a FIFO would block the open, a device never ends
        raise DecodeError(path, "not a regular file (a pipe, socket or device)")
    if path.stat().st_size == 0:
        raise DecodeError(path, "empty file")


def _container(path: Path, max_pixels: int) -> av.container.InputContainer:
    # max_pixels reaches the decoders FFmpeg opens to probe the streams: without it, the probe
    # alone decodes a first frame of whatever size the file declares.
    try:
        return av.open(
            str(path), mode="r", metadata_errors="ignore", options={"max_pixels": str(max_pixels)}
        )
    except av.error.InvalidDataError as e:
        reason = f"not a video file (or truncated): invalid data found{_detail(e)}"
        raise DecodeError(path, reason) from None
    except av.error.EOFError as e:
        reason = f"not a video file (or truncated): unexpected end of file{_detail(e)}"
        raise DecodeError(path, reason) from None
    except (av.error.FFmpegError, OSError) as e:
        transient = getattr(e, "errno", None) in TRANSIENT_ERRNOS  # EIO, a stale handle...
        raise DecodeError(path, f"cannot open: {_strerror(e)}{_detail(e)}", transient) from None


def _strerror(e: Exception) -> str:
    return (getattr(e, "strerror", None) or str(e) or type(e).__name__).strip().lower()


def _detail(e: Exception) -> str:
    """FFmpeg's last log line ('moov atom not found'): only there when av.logging is enabled."""
    log = getattr(e, "log", None)
    msg = log[2].strip() if isinstance(log, tuple) and len(log) == 3 and log[2] else ""
    return f" ({msg})" if msg else ""


def _video_stream(container, path: Path, cfg: DecodeConfig):
    try:
        stream = first_video_stream(container)  # the media rule's own test
    except ValueError as e:
        raise DecodeError(path, str(e)) from None
    if stream.codec_context is None:
        raise DecodeError(path, "no decoder for the video codec")
    w, h = stream.codec_context.width, stream.codec_context.height
    if w * h > cfg.max_pixels:
        raise DecodeError(path, f"frame size {w}x{h} exceeds max_pixels {cfg.max_pixels}")
    return stream


def _scan_packets(container, stream, check: Callable[[], None]) -> _PacketIndex:
    pts: list[int] = []
    keys: list[tuple[int, int | None]] = []
    end = None
    n = empty = 0
    for packet in _packets(container, stream, check=check):
        if not packet.size:  # an empty packet (see _decoded), or the flush packet at the end
            empty += packet.pts is not None
            continue
        n += 1
        if packet.pts is not None:
            pts.append(packet.pts)
            if packet.is_keyframe:
                keys.append((packet.pts, packet.dts))
            stop = packet.pts + (packet.duration or 0)
            end = stop if end is None else max(end, stop)
    pts.sort()
    keys.sort()
    return _PacketIndex(pts, [k for k, _ in keys], [d for _, d in keys], end, n, empty)


def _packets(
    container,
    stream,
    on_error: Callable[[], None] | None = None,
    check: Callable[[], None] = _no_check,
):
    """Demuxed packets; a read error ends the stream (demuxers cannot resume) after `on_error`."""
    demux = container.demux(stream)
    try:
        while True:
            check()
            try:
                yield next(demux)
            except StopIteration:
                return
            except av.error.FFmpegError:
                if on_error is not None:
                    on_error()
                return
    finally:
        demux.close()


def _prepend(first, rest):
    yield first
    yield from rest  # closing this generator closes `rest`


class _Restart(Exception):
    """A seek failed or overshot: decode again from the start without seeking."""


class _VideoReader:
    def __init__(self, path, cfg, threads, info, index, origin, tb, plan, check) -> None:
        self.path, self.cfg, self.threads, self.info = path, cfg, threads, info
        self.index, self.origin, self.tb, self.plan = index, origin, tb, plan
        self.check = check
        self.container = None
        self.stream = None
        self.seeks = 0
        self.seek_by_dts = False
        self.needed: set[int] | None = None

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None

    def _reopen(self) -> None:
        self.close()
        self.container = _container(self.path, self.cfg.max_pixels)
        self.stream = _video_stream(self.container, self.path, self.cfg)
        self.stream.codec_context.thread_count = max(0, int(self.threads))

    def frames(self) -> Iterator[SampledFrame]:
        selector = SampleSelector(self.cfg.fps)
        plan = self.plan
        produced = 0
        errors_before = self.info.errors
        while True:
            try:
                for sampled in self._run(selector, plan):
                    produced += 1
                    yield sampled
                break
            except _Restart:
                plan = {}  # same selector: frames already yielded are not yielded again
                self.info.errors = errors_before  # the restart decodes those packets again
        self.close()
        self.info.strategy = "seek" if self.seeks else "sequential"
        if not produced:
            raise DecodeError(self.path, "no decodable frames")

    def _needed_pts(self) -> set[int] | None:
        """pts of the frames the sampler will keep, known from the demux pass (None: unknown).

        Every other frame that no later frame references can be dropped by the decoder unseen
        (`skip_frame=NONREF`): about half the frames of a typical x264 stream, identical output.
        """
        if not self.cfg.skip_nonref or not self.index.pts or self.origin is None:
            return None
        times = [float((p - self.origin) * self.tb) for p in self.index.pts]
        return {self.index.pts[i] for _, i in select_samples(times, self.cfg.fps)}

    def _run(self, selector: SampleSelector, plan: dict[int, int]) -> Iterator[SampledFrame]:
        self._reopen()
        self.needed = self._needed_pts()
        info, all_pts, rate = self.info, self.index.pts, self.info.fps
        frames = self._decoded()
        last_pts = None  # pts of the last decoded frame
        check_plan = bool(plan)
        try:
            while True:
                if check_plan:
                    check_plan = False
                    i = plan.get(selector.next_index)
                    if i is not None and (last_pts is None or last_pts < self.index.keyframes[i]):
                        frames.close()
                        frames = self._seek(i)
                frame = next(frames, None)
                if frame is None:
                    return
                pts = frame.pts
                if pts is None:  # no timestamp: assume one frame after the previous one
                    pts = (
                        last_pts + max(1, round(1 / (rate * self.tb)))
                        if last_pts is not None and rate
                        else self.origin or 0
                    )
                if self.origin is None:
                    self.origin = pts
                last_pts = pts
                t = float((pts - self.origin) * self.tb)
                k = selector.offer(t)
                if k is None:
                    continue
                check_plan = bool(plan)
                if frame.width * frame.height > self.cfg.max_pixels:
                    info.errors += 1  # a mid-stream size change past the cap
                    continue
                j = bisect_left(all_pts, pts)
                frame_index = j if j < len(all_pts) and all_pts[j] == pts else round(t * rate)
                image = self._rgb(frame)
                info.height, info.width = image.shape[:2]  # the display size
                yield SampledFrame(k, frame_index, t, image, float(pts * self.tb))
        finally:
            frames.close()

    def _seek(self, i: int) -> Iterator:
        """Decoded frames from keyframe i on.

        Demuxers differ in what a seek timestamp means (mov: pts, mpegts: dts; by pts an mpegts
        seek lands past the keyframe), so the first frame is checked: past the keyframe means
        frames may be missing, and the other timestamp is tried, then a restart without seeks.
        """
        key = self.index.keyframes[i]
        dts = self.index.key_dts[i]
        if dts is None or dts == key:
            targets = [key]
        else:
            targets = [dts, key] if self.seek_by_dts else [key, dts]
        errors = self.info.errors
        for target in targets:
            self.info.errors = errors
            try:
                self.container.seek(target, stream=self.stream, backward=True)
            except av.error.FFmpegError:
                continue
            frames = self._decoded()
            first = next(frames, None)
            if first is not None and first.pts is not None and first.pts <= key:
                self.seek_by_dts = target != key
                self.seeks += 1
                return _prepend(first, frames)
            frames.close()
        raise _Restart

    def _decoded(self):
        """Frames in presentation order, packet by packet; failed packets are counted, skipped.

        An empty packet is not sent to the decoder: it is no error but a frame that repeats the
        previous one (Theora in Ogg writes them for still scenes; FFmpeg refuses them with
        EINVAL), and the demux pass left it out of the frame times too: the sampler reads the
        stream as variable-frame-rate, taking the next frame that carries a picture.
        """
        stream, info = self.stream, self.info

        def read_failed() -> None:
            info.errors += 1

        ctx = stream.codec_context
        for packet in _packets(self.container, stream, read_failed, self.check):
            if not packet.size:  # a repeat, or demux's flush packet (the drain below follows it)
                continue
            if self.needed is not None:
                # after any decoding error the frame chosen for a time may differ: decode everything
                skip = not info.errors and packet.pts is not None and packet.pts not in self.needed
                ctx.skip_frame = "NONREF" if skip else "DEFAULT"
            try:
                yield from packet.decode()
            except av.error.FFmpegError:
                info.errors += 1
        with suppress(av.error.FFmpegError):  # after a read error: drain the delayed frames
            yield from stream.decode(None)

    def _rgb(self, frame) -> np.ndarray:
        image = frame.to_ndarray(format="rgb24")
        if self.cfg.autorotate:
            quarter = round(frame.rotation / 90) % 4  # counter-clockwise quarter turns for display
            if quarter:
                image = np.ascontiguousarray(np.rot90(image, quarter))
        return image


# --------------------------------------------------------------------------------- frame folders


def _open_frame_folder(
    root: Path, cfg: DecodeConfig, stride: int, check: Callable[[], None]
) -> tuple[VideoInfo, Iterator[SampledFrame]]:
    from PIL import Image

    if not root.is_dir():
        what = "not a directory (kind=frames)" if root.exists() else "frame folder not found"
        raise DecodeError(root, what)
    names = sorted(
        (p.name for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file()),
        key=natural_key,
    )
    if not names:
        raise DecodeError(root, f"no images ({', '.join(sorted(s[1:] for s in IMAGE_EXTS))})")
    kept = list(range(0, len(names), stride))
    size = None
    for i in kept:  # the first image whose header reads gives the frame size
        try:
            with Image.open(root / names[i]) as im:
                size = im.size
            break
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            continue
    if size is None:
        raise DecodeError(root, f"no readable images among {len(kept)}")
    info = VideoInfo(
        width=size[0],
        height=size[1],
        duration=float(len(names)),
        fps=1.0,
        kind="frames",
        strategy="frames",
    )
    return info, _folder_frames(root, names, kept, cfg, info, check)


def _folder_frames(root, names, kept, cfg, info, check) -> Iterator[SampledFrame]:
    from PIL import Image

    produced = 0
    for position, i in enumerate(kept):
        check()
        try:
            with Image.open(root / names[i]) as im:
                if im.width * im.height > cfg.max_pixels:
                    raise ValueError("frame size exceeds max_pixels")
                image = np.asarray(im.convert("RGB"))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            info.errors += 1
            continue
        produced += 1
        yield SampledFrame(position, i, i / 1.0, image, i / 1.0)
    if not produced:
        raise DecodeError(root, "no decodable frames")


__all__ = ["DecodeError", "SampledFrame", "VideoInfo", "open_sampled", "sample_times"]
