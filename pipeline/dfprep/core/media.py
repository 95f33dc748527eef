"""The media file types, one definition for every reader (the adapters, `dftrain predict`)."""

from __future__ import annotations

from pathlib import PurePath

__all__ = ["ARCHIVE_EXTS", "IMAGE_EXTS", "MASK_FOLDERS", "VIDEO_EXTS", "in_mask_folder"]

# video containers PyAV opens (lower case, with the dot: compare with `Path.suffix.lower()`)
VIDEO_EXTS = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv"}
)
# still frames (datasets shipped as folders of frames, and the frames in archives)
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})
# archives of frame folders (WildDeepfake)
ARCHIVE_EXTS = (".tar.gz", ".tgz")
# the publishers' folders of mask videos (FF++'s and DFD's `<method>/masks/videos/`): white where
# the face was manipulated; never a video to score
MASK_FOLDERS = ("masks/videos",)


def in_mask_folder(rel: str | PurePath) -> bool:
    """Whether a file's path (relative to the folder searched) lies in a publisher's mask folder."""
    parts = PurePath(rel).parent.parts
    for folder in MASK_FOLDERS:
        want = tuple(folder.split("/"))
        if any(parts[i : i + len(want)] == want for i in range(len(parts) - len(want) + 1)):
            return True
    return False
