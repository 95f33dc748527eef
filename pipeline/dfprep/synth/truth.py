"""The sample dataset's ground truth, `ROOT/synth_truth.json`, and measurements against it.

    {"version": 1, "videos": {relpath: {"fps": float, "size": [w, h],
        "manipulated": [per frame, in presentation order: [x1, y1, x2, y2] or null],
        "others": [per frame: [[x1, y1, x2, y2], ...] of the other, pristine faces]}}}

One entry per fake video `dfprep synth` writes (boxes in source pixels: the detector's box of the
source photo, mapped into the frame). It is for measuring which crops an extraction took from the
manipulated face; no adapter reads it as data (they list media files only).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from dfprep.core.errors import InputError
from dfprep.schema import make_video_id

TRUTH_FILE = "synth_truth.json"
VERSION = 1


def load_truth(root: str | Path) -> dict:
    """The `videos` mapping of ROOT/synth_truth.json (relpath -> entry), checked."""
    path = Path(root) / TRUTH_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"synth truth: {path} is missing (not a dfprep synth dataset?)") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise InputError(f"{path}: version {VERSION} expected")
    videos = data.get("videos")
    if not isinstance(videos, dict):
        raise InputError(f"{path}: 'videos' must be a mapping")
    for rel, v in videos.items():
        if len(v.get("manipulated", [])) != len(v.get("others", [])):
            raise InputError(f"{path}: {rel}: 'manipulated' and 'others' differ in length")
    return videos


def box_iou(a: Iterable[float], b: Iterable[float]) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes (0 when either is empty)."""
    ax1, ay1, ax2, ay2 = (float(v) for v in a)
    bx1, by1, bx2, by2 = (float(v) for v in b)
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def crop_is_manipulated(
    truth_video: Mapping, frame_index: int, bbox: Iterable[float], iou: float = 0.5
) -> bool:
    """Whether a crop's detected box at `frame_index` is the manipulated face (IoU >= iou)."""
    boxes = truth_video["manipulated"]
    if not 0 <= frame_index < len(boxes):
        raise ValueError(f"frame {frame_index} is outside the video's {len(boxes)} frames")
    box = boxes[frame_index]
    return box is not None and box_iou(bbox, box) >= iou


def is_multi_person(truth_video: Mapping) -> bool:
    """Whether the video shows other faces besides the manipulated one (in any frame)."""
    return any(truth_video["others"])


def manipulated_share(
    index_rows: Iterable[Mapping],
    truth: Mapping[str, Mapping],
    root: str | Path | None = None,
    *,
    videos: Iterable[str] | None = None,
    iou: float = 0.5,
) -> tuple[int, int]:
    """(fake-labelled crops, those taken from the manipulated face) among crop-index rows.

    A row (schema.CROP_INDEX_SCHEMA: video_id, dataset, frame_index, bbox, label) is matched to its
    truth entry by video id (`make_video_id(dataset, relpath)`), or by a `path` key under `root`
    when the row has one (manifest rows do). Rows of videos the truth does not hold are not counted;
    `videos` (relpaths) restricts the count further, e.g. to the two-person videos.
    """
    wanted = set(truth) if videos is None else set(videos) & set(truth)
    by_id: dict[tuple[str, str], str] = {}
    n_fake = n_manip = 0
    for row in index_rows:
        if int(row["label"]) != 1:
            continue
        rel = None
        if root is not None and row.get("path"):
            p = Path(row["path"])
            rel = (
                p.relative_to(Path(root).resolve()).as_posix() if p.is_absolute() else p.as_posix()
            )
        else:
            dataset = row["dataset"]
            if (dataset, "") not in by_id:
                by_id[(dataset, "")] = ""
                by_id.update({(dataset, make_video_id(dataset, r)): r for r in truth})
            rel = by_id.get((dataset, row["video_id"]))
        if rel not in wanted:
            continue
        n_fake += 1
        n_manip += crop_is_manipulated(truth[rel], int(row["frame_index"]), row["bbox"], iou)
    return n_fake, n_manip
