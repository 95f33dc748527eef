"""Which per-video failures a resume runs again: those that can pass.

A failure is final when it follows from the file's bytes and the output parameters alone, so the
same file fails the same way on every run: not a video, truncated, no video stream, a still image,
a frame over `max_pixels`, no decodable frame, fake segments outside the video. It is transient
when it follows from the moment: the file was not there (a dataset root moved or unmounted, a copy
not finished), the time limit ran out (a loaded machine, a short `--video-timeout`), the machine
ran out of memory or file handles, or the read failed (EIO, a stale NFS handle, a network file
system timing out, a permission since fixed). Whatever is not known to be transient is final.

A transient failure is recorded like any other (status `failed`, its reason) with `transient` set
in its status row and counted in its shard's stats; a resume redoes every shard that has one and
says how many videos it retries (a shard is written whole, so its other videos run again too, to
the same bytes). A worker that dies loses its whole shard job, which is then not complete, so a
resume redoes it anyway. `--overwrite` still redoes everything.
"""

from __future__ import annotations

from dfprep.core.errors import TRANSIENT_ERRNOS, DfprepError

__all__ = ["TRANSIENT_ERRNOS", "VideoTimeout", "is_transient", "transient_count"]


class VideoTimeout(DfprepError):
    """A video over `run.video_timeout`: transient (the machine's load, or the limit, may change)."""

    transient = True


def is_transient(e: BaseException) -> bool:
    """Whether a video's failure can pass (see the module's docstring)."""
    if getattr(e, "transient", False) or isinstance(e, MemoryError):
        return True
    return isinstance(e, OSError) and e.errno in TRANSIENT_ERRNOS


def transient_count(stats: dict) -> int:
    """Failed videos of a shard that a resume runs again, from its stats. Shards written before
    the count was kept: from their error messages (a missing file, a time limit)."""
    n = stats.get("transient")
    if isinstance(n, int):
        return n
    errors = stats.get("errors") or {}
    return sum(
        int(k) for msg, k in errors.items()
        if "file not found" in str(msg) or str(msg).startswith("time limit of")
    )  # fmt: skip
