"""The videos to look at, each named with its reasons rather than only counted: failed, no face, a
warning, several faces in a frame (on an unpaired training fake, a possible source of label
noise: the largest face may be a real person's, written as fake).

Made from an extract output's video status rows; extract's summary and `dfprep report` list them
and write them to `video_problems.parquet` (`schema.PROBLEM_SCHEMA`, one row per video and
problem) for filtering.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dfprep.core.atomic import writing, writing_to
from dfprep.schema import MULTI_FACE_FAKE, PROBLEM_KINDS, PROBLEM_SCHEMA

__all__ = ["MAX_NAMED", "PROBLEMS_FILE", "count_problems", "problem_lines", "problem_rows",
           "write_problems"]  # fmt: skip

PROBLEMS_FILE = "video_problems.parquet"
_ID_COLUMNS = ("video_id", "path", "dataset", "split", "label", "method", "status")
MAX_NAMED = 20  # videos named per problem in report.md and the summary (the file has them all)


def _faces(v: dict) -> str:
    share = v.get("multi_face_share") or 0.0
    return (
        f"two or more faces in {share:.0%} of its {v.get('frames_sampled') or 0} sampled "
        f"frame(s), at most {v.get('max_faces_in_frame') or 0}"
    )


def _reasons(v: dict) -> list[tuple[str, str]]:
    """(problem, reason) of one status row (a dict of VIDEO_STATUS_SCHEMA columns)."""
    out = []
    error = (v.get("error") or "").strip()
    if v["status"] == "failed":
        out.append(("failed", error or "failed"))
    elif v["status"] == "no_face":
        n = v.get("frames_sampled") or 0
        out.append(
            ("no_face", f"no face in {n} sampled frame(s)" + (f"; {error}" if error else ""))
        )
    if error.startswith("warning:") and v["status"] != "no_face":
        out.append(("warning", error.removeprefix("warning:").strip()))
    flags = (v.get("flags") or "").split(",")
    if MULTI_FACE_FAKE in flags:
        out.append(
            (
                MULTI_FACE_FAKE,
                f"unpaired {v['split']} fake: {_faces(v)}; its crops may show a real face "
                "labelled fake (pair it with its original, or leave it out)",
            )
        )
    elif (v.get("max_faces_in_frame") or 0) >= 2:
        out.append(("multi_face", _faces(v)))
    return out


def problem_rows(videos: pa.Table | list[dict]) -> list[dict]:
    """Rows of PROBLEM_SCHEMA for the status rows VIDEOS (older tables: missing counts are 0),
    ordered by problem (as PROBLEM_KINDS), then video id."""
    rows = videos.to_pylist() if isinstance(videos, pa.Table) else videos
    out = []
    for v in rows:
        base = {k: v.get(k) for k in _ID_COLUMNS}
        for problem, reason in _reasons(v):
            out.append(
                {
                    **base,
                    "problem": problem,
                    "reason": reason,
                    "max_faces_in_frame": v.get("max_faces_in_frame"),
                    "multi_face_share": v.get("multi_face_share"),
                }
            )
    out.sort(key=lambda r: (PROBLEM_KINDS.index(r["problem"]), r["video_id"]))
    return out


def count_problems(rows: list[dict]) -> dict[str, int]:
    """Videos per problem, in PROBLEM_KINDS order (only those that occur)."""
    c = Counter(r["problem"] for r in rows)
    return {k: c[k] for k in PROBLEM_KINDS if c[k]}


def write_problems(rows: list[dict], path: Path) -> Path:
    """The table of ROWS at PATH (written even when empty: no file would say nothing)."""
    with writing(path), writing_to(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=PROBLEM_SCHEMA), tmp)
    return path


def problem_lines(rows: list[dict], limit: int = MAX_NAMED) -> list[str]:
    """Markdown: per problem, a table of up to LIMIT videos with their reasons, then a count."""
    lines: list[str] = []
    for kind, n in count_problems(rows).items():
        some = [r for r in rows if r["problem"] == kind]
        head = "| video | dataset | split | label | reason |"
        lines += ["", f"**{kind}** ({n:,} video(s))", "", head, "|---|---|---|---|---|"]
        lines += [
            f"| {r['video_id']} | {r['dataset']} | {r['split']} | "
            f"{'fake' if r['label'] else 'real'} | {r['reason'].replace('|', '/')} |"
            for r in some[:limit]
        ]
        if n > limit:
            lines += ["", f"... and {n - limit:,} more."]
    return lines
