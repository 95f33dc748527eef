"""The media file types, one definition for every reader (the adapters, `dftrain predict`)."""

from __future__ import annotations

__all__ = ["ARCHIVE_EXTS", "IMAGE_EXTS", "VIDEO_EXTS"]

# video containers PyAV opens (lower case, with the dot: compare with `Path.suffix.lower()`)
VIDEO_EXTS = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv"}
)
# still frames (datasets shipped as folders of frames, and the frames in archives)
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})
# archives of frame folders (WildDeepfake)
ARCHIVE_EXTS = (".tar.gz", ".tgz")
