"""Planning pairs: a fake and the original it was made from go into the same shard job (pure).

Within one manifest, a group is a real video and the fakes whose `original_id` names it, the
original first; every other video is a group of its own. Groups are ordered by their smallest
video id and packed whole into jobs of at most `videos_per_shard` videos (a larger group gets a
job of its own). A manifest without pairs therefore gives exactly the plain video-id chunks.

The test split is label-blind (`label_blind`): its videos are never paired, neither as fakes nor
as originals, so their jobs, like their crops, are those of a manifest without `original_id`.
"""

from __future__ import annotations

from dfprep.schema import TEST_SPLIT

__all__ = ["groups", "label_blind", "original_positions", "pack", "wants_original"]


def label_blind(row: dict) -> bool:
    """Whether a video's crops must not depend on anything a detector would not know on an unseen
    video (its label, original, mask, method): the test split. Its faces are chosen by one rule
    for reals and fakes alike (`detect.test_max_faces`), never against an original or a mask."""
    return row.get("split") == TEST_SPLIT


def wants_original(row: dict, select: str) -> bool:
    """Whether this fake's selection may use its original's frames (diff or reused boxes)."""
    return (
        select != "off"
        and int(row["label"]) == 1
        and bool(row.get("original_id") or "")
        and not label_blind(row)
    )


def groups(rows: list[dict], select: str = "auto") -> list[list[dict]]:
    """ROWS (sorted by video id) as groups: [original, *its fakes] or [video]."""
    if select == "off":
        return [[r] for r in rows]
    pairable = [r for r in rows if not label_blind(r)]
    real = {r["video_id"] for r in pairable if int(r["label"]) == 0}
    fakes: dict[str, list[dict]] = {}
    for r in pairable:
        o = r.get("original_id") or ""
        if int(r["label"]) == 1 and o in real:
            fakes.setdefault(o, []).append(r)
    grouped = {r["video_id"] for fs in fakes.values() for r in fs}
    out = []
    for r in rows:
        if r["video_id"] in grouped:
            continue
        members = [r, *fakes.get(r["video_id"], [])]
        out.append(members)
    out.sort(key=lambda g: min(m["video_id"] for m in g))
    return out


def pack(units: list[list[dict]], n: int) -> list[list[dict]]:
    """Whole groups into jobs of at most N videos, in order; a group larger than N alone."""
    jobs: list[list[dict]] = []
    current: list[dict] = []
    for g in units:
        if current and len(current) + len(g) > n:
            jobs.append(current)
            current = []
        current = current + g
        if len(current) >= n:
            jobs.append(current)
            current = []
    if current:
        jobs.append(current)
    return jobs


def original_positions(videos: tuple[dict, ...] | list[dict], select: str) -> dict[int, int]:
    """Fake position -> its original's position in the same job (only pairs inside the job)."""
    where = {
        r["video_id"]: i
        for i, r in enumerate(videos)
        if int(r["label"]) == 0 and not label_blind(r)
    }
    return {
        i: where[r["original_id"]]
        for i, r in enumerate(videos)
        if wants_original(r, select) and r["original_id"] in where
    }
