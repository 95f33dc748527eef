"""The videos `dfprep bench` times: generated face clips (or the user's), as manifest rows."""

from __future__ import annotations

import os
from pathlib import Path

from dfprep.core.atomic import publish

SIZE = (1920, 1080)


def make_bench_videos(
    out_dir: Path,
    n: int = 4,
    seconds: float = 20.0,
    gop: int | None = None,
    preset: str = "superfast",
    size: tuple[int, int] = SIZE,
) -> list[Path]:
    """30 fps H.264 videos (1920x1080 by default) with a moving real face (the sample generator's
    renderer); `preset` is x264's (superfast, like `dfprep synth`; ultrafast has no B-frames).
    Made once, in parallel on the cores: a later run reuses the files of the same settings."""
    import multiprocessing

    from dfprep.core.system import available_cores

    out_dir.mkdir(parents=True, exist_ok=True)
    size = tuple(size)
    tag = "" if (preset == "superfast" and size == SIZE) else f"_{preset}_{size[0]}x{size[1]}"
    video = {"fps": 30, "size": size, "seconds": seconds, "gop": gop or None, "preset": preset}
    paths = [out_dir / f"bench_{i}_gop{gop or 'default'}_{seconds:g}s{tag}.mp4" for i in range(n)]
    missing = [(p, {"seed": i, **video}) for i, p in enumerate(paths) if not p.exists()]
    if len(missing) > 1 and available_cores() > 1:
        with multiprocessing.get_context("spawn").Pool(
            min(len(missing), available_cores())
        ) as pool:
            pool.starmap(_made_once_kw, missing, chunksize=1)
    for p, kw in missing:
        _made_once(p, **kw)  # what the pool made is there already
    return paths


def _made_once_kw(path: Path, video: dict) -> Path:
    return _made_once(path, **video)


def warm_up_video(out: Path) -> Path:
    """A tiny clip that pays a worker's one-off start-up before the timed videos."""
    return _made_once(out / "warm-up.mp4", fps=30, size=(320, 240), seconds=1, seed=99)


def _made_once(path: Path, **video) -> Path:
    from dfprep.synth import make_face_video

    if not path.exists():
        tmp = path.with_name(f".{path.name}.tmp.mp4")
        make_face_video(tmp, **video)
        publish(tmp, path)  # a killed bench never leaves a half video that a rerun would reuse
    return path


def video_row(p: Path) -> dict:
    """The manifest row extract's per-video code takes (a fake of the test split)."""
    return {
        "video_id": "bench-" + p.stem,
        "path": str(p),
        "dataset": "bench",
        "split": "test",
        "label": 1,
        "method": "bench",
        "category": "FS",
        "kind": "video",
        "frame_stride": 1,
        "fake_segments": None,
    }


def bench_manifest(paths, out: Path, name: str) -> Path:
    """OUT/NAME.parquet: a manifest of the videos, as `dfprep manifest` writes one."""
    from dfprep.adapters import VideoRow
    from dfprep.manifest import rows_to_table, write_manifest

    root = Path(os.path.commonpath([str(Path(p).resolve().parent) for p in paths]))
    rows = [
        VideoRow(Path(p).resolve().relative_to(root).as_posix(), "test", 1, "bench", "FS")
        for p in paths
    ]
    return write_manifest(rows_to_table("bench", root, rows), out / f"{name}.parquet")


def video_seconds(paths) -> float:
    """The videos' total duration in seconds (from the containers)."""
    import av

    total = 0.0
    for p in paths:
        with av.open(str(p)) as c:
            total += float(c.duration or 0) / 1e6
    return total
