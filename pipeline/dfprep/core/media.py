"""The media rule, one definition for every reader (the adapters, `dftrain predict`, `dfprep bench`
and the decoder's own checks): which files are videos, and a word about every file that is not.

A file is a video when its extension is a known video container's (`VIDEO_EXTS`), or when it has
no extension known to be something else (`OTHER_EXTS`) and PyAV opens it as a video (a bounded
probe: at most `PROBE_BYTES` read, `PROBE_SECONDS` waited). Known non-video extensions are never
probed, so a large tree of documents and images costs a directory listing, not a read per file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from dfprep.core.errors import InputError

log = logging.getLogger(__name__)

__all__ = [
    "ARCHIVE_EXTS",
    "IMAGE_EXTS",
    "MASK_FOLDERS",
    "MAX_NAMED",
    "OTHER_EXTS",
    "VIDEO_EXTS",
    "MediaScan",
    "first_video_stream",
    "in_mask_folder",
    "not_taken",
    "probe_video",
    "scan_files",
    "scan_tree",
    "tree_files",
    "video_files",
    "why_not_video",
]

# video containers PyAV opens (lower case, with the dot: compare with `Path.suffix.lower()`);
# .ogg may hold audio only: such a file fails extract with its reason, it is not left out unseen
VIDEO_EXTS = frozenset(
    {".mp4", ".m4v", ".mov", ".qt", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".m2v", ".vob",
     ".ts", ".mts", ".m2ts", ".flv", ".f4v", ".wmv", ".asf", ".ogv", ".ogg", ".ogm", ".3gp",
     ".3g2", ".mxf", ".dv", ".divx", ".nut", ".y4m", ".rm", ".rmvb", ".h264", ".264", ".hevc"}
)  # fmt: skip
# still frames (datasets shipped as folders of frames, and the frames in archives)
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})
# archives of frame folders (WildDeepfake)
ARCHIVE_EXTS = (".tar.gz", ".tgz")
# never a video, never probed: documents, data, code, audio, subtitles, archives, other images
OTHER_EXTS = IMAGE_EXTS | frozenset(
    {".txt", ".md", ".rst", ".csv", ".tsv", ".json", ".jsonl", ".yaml", ".yml", ".xml", ".html",
     ".htm", ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".log", ".ini", ".cfg", ".toml", ".py",
     ".sh", ".ipynb", ".parquet", ".pkl", ".pickle", ".npy", ".npz", ".pt", ".pth", ".onnx",
     ".h5", ".db", ".sqlite", ".lock", ".tmp", ".part", ".md5", ".sha1", ".sha256", ".torrent",
     ".wav", ".mp3", ".flac", ".aac", ".m4a", ".opus", ".oga", ".wma", ".srt", ".vtt", ".ass",
     ".ssa", ".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".gif", ".tif", ".tiff",
     ".heic", ".svg", ".ico", ".dvc"}
)  # fmt: skip

PROBE_BYTES = 1 << 20  # what FFmpeg may read to recognise a file without a known extension
PROBE_SECONDS = 2.0  # per probe: a slow disk or an odd file never holds up a listing for long
MAX_NAMED = 10  # files named in a warning; the others are counted


def first_video_stream(container):
    """The container's first video stream that is not cover art; ValueError(why) when there is
    none (a still image, a text file, audio only): the one test of "opens as a video"."""
    import av

    fmt = container.format.name
    if fmt == "image2" or fmt.endswith("_pipe"):
        raise ValueError(f"a still image ({fmt.removesuffix('_pipe')}), not a video")
    if fmt == "tty":  # FFmpeg renders any text file as frames of ANSI art
        raise ValueError("a text file, not a video")
    attached = av.stream.Disposition.attached_pic
    videos = [s for s in container.streams.video if not s.disposition & attached]
    if not videos:
        raise ValueError(
            f"no video stream ({'audio-only file' if container.streams.audio else f'format {fmt}'})"
        )
    return videos[0]


def probe_video(path: str | os.PathLike) -> str:
    """'' when PyAV opens the file as a video, else why not (one line)."""
    import av

    try:
        with av.open(
            str(path),
            metadata_errors="ignore",
            timeout=PROBE_SECONDS,
            options={"probesize": str(PROBE_BYTES)},
        ) as c:
            first_video_stream(c)
    except (av.error.FFmpegError, OSError) as e:  # before ValueError: some are both
        why = (getattr(e, "strerror", None) or str(e)).strip().lower()
        return f"PyAV cannot open it as a video ({why})"
    except ValueError as e:
        return str(e)
    return ""


def why_not_video(path: Path) -> str:
    """'' when PATH is a video by the rule (see the module docstring), else why not."""
    if not path.is_file():  # FIFOs, sockets, devices, links to folders or nowhere: not opened
        if path.is_symlink():
            return "a link to a folder, not followed" if path.is_dir() else "a broken link"
        return "not a regular file"
    ext = path.suffix.lower()
    if ext in VIDEO_EXTS:
        return ""
    if ext in OTHER_EXTS:
        return f"a {ext} file"
    return probe_video(path)


@dataclass
class MediaScan:
    """Files sorted into the videos taken and the others, each with why it was not taken."""

    videos: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def add(self, path: Path, why: str = "") -> None:
        (self.skipped.append((path, why)) if why else self.videos.append(path))


def scan_files(paths: Iterable[Path]) -> MediaScan:
    """PATHS (files) sorted by the rule, in the order given."""
    scan = MediaScan()
    for p in paths:
        scan.add(p, why_not_video(p))
    return scan


def tree_files(root: Path, prune: Iterable[str] = ()) -> list[Path]:
    """Every entry under ROOT that is not a directory (files, links, FIFOs...), sorted. Links to
    folders are listed, not followed (as `Path.rglob`: a link may loop); nor are ROOT's folders
    named in PRUNE."""
    out = []
    prune = set(prune)
    for dirpath, dirnames, filenames in os.walk(root):
        if prune and dirpath == str(root):
            dirnames[:] = [d for d in dirnames if d not in prune]
        out += [Path(dirpath, f) for f in filenames]
        out += [Path(dirpath, d) for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
    return sorted(out)


def scan_tree(root: Path) -> MediaScan:
    """Every file under ROOT sorted by the rule."""
    return scan_files(tree_files(root))


def video_files(paths: Iterable[str | os.PathLike], where: str = "") -> list[Path]:
    """Command-line arguments (`dftrain predict`, `dfprep bench`): a file is taken as given,
    whatever it is (a bad one is the caller's failure to report, never left out); a folder gives
    the videos under it by the rule, its other files named in a warning, and none is an error."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            out.append(p)
            continue
        scan = scan_tree(p)
        if not scan.videos:
            raise InputError(
                f"{p}: no video file in this folder"
                + (f" ({not_taken(scan.skipped)})" if scan.skipped else "")
            )
        if scan.skipped:
            log.warning("%s%s", f"{where}: " if where else "", not_taken(scan.skipped, p))
        out += scan.videos
    return out


def not_taken(
    skipped: list[tuple[Path, str]], root: Path | None = None, limit: int = MAX_NAMED
) -> str:
    """'N file(s) not taken as videos: a.txt (a .txt file), ... and K more' (paths relative to
    ROOT when under it); '' when none."""
    if not skipped:
        return ""

    def name(p: Path) -> str:
        if root is not None:
            try:
                return p.relative_to(root).as_posix()
            except ValueError:
                pass
        return str(p)

    shown = ", ".join(f"{name(p)} ({why})" for p, why in skipped[:limit])
    more = f" and {len(skipped) - limit} more" if len(skipped) > limit else ""
    where = f" under {root}" if root is not None else ""
    return f"{len(skipped)} file(s){where} not taken as videos: {shown}{more}"


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
