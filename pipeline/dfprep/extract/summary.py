"""The summary of an extract run (extract.json): what this run did, and the totals of every
shard of the plan, read from the stats files on disk; the videos to look at, named with their
reasons, in video_problems.parquet (`dfprep.problems`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dfprep.core.atomic import write_json, writing
from dfprep.extract.plan import ShardJob
from dfprep.problems import PROBLEMS_FILE, count_problems, problem_rows, write_problems
from dfprep.schema import PROBLEM_KINDS, VIDEO_STATUS_SCHEMA
from dfprep.shards import VIDEO_COLUMNS, ShardFiles, read_table

__all__ = ["ExtractSummary", "summarize"]

PER_KIND = 5  # videos named per problem in extract.json and the printed summary


@dataclass
class ExtractSummary:
    out: str
    jobs: int = 0
    skipped: int = 0  # complete from an earlier run
    retried: int = 0  # videos whose failure can pass, run again (their shards redone)
    migrated: int = 0  # tables moved from shards/ to meta/ (an output of the first layout)
    done: int = 0
    videos_run: int = 0  # videos processed by this run (excludes resumed shards)
    failed_jobs: list[tuple[str, str]] = field(default_factory=list)
    videos: int = 0
    ok: int = 0
    no_face: int = 0
    failed: int = 0
    crops: int = 0
    paired: int = 0  # fakes whose faces were chosen against their original or mask
    pairing_fallbacks: dict = field(default_factory=dict)  # reason -> fakes (largest faces kept)
    faces_dropped: int = 0  # faces of paired fakes left out as unmanipulated
    problems: dict = field(default_factory=dict)  # problem -> videos (video_problems.parquet)
    problem_videos: list = field(default_factory=list)  # a few per problem: id, problem, reason
    seconds: float = 0.0
    interrupted: bool = False
    signal: str = ""  # what interrupted it: SIGINT (Ctrl-C) or SIGTERM
    errors: dict = field(default_factory=dict)
    # where this run detected: "workers" (each its own detect.backend), "cuda" or "cpu" (detector
    # processes, extract's GPU mode: dfprep.extract.gpu)
    detector: str = "workers"

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(jobs: list[ShardJob], out: Path, summary: ExtractSummary) -> ExtractSummary:
    """Totals from the stats files on disk (the authority, whichever run wrote them)."""
    errors: Counter = Counter()
    summary.videos = summary.ok = summary.no_face = summary.failed = summary.crops = 0
    summary.paired = summary.faces_dropped = 0
    fallbacks: Counter = Counter()
    problems: list[dict] = []
    for j in jobs:
        files = ShardFiles(j.shards_dir, j.name)
        stats = files.read_stats()
        if not stats or stats.get("params_hash") != j.params_hash:
            continue
        problems += problem_rows(read_table(files.videos, VIDEO_COLUMNS, VIDEO_STATUS_SCHEMA))
        summary.videos += stats["videos"]
        summary.ok += stats["ok"]
        summary.no_face += stats["no_face"]
        summary.failed += stats["failed"]
        summary.crops += stats["crops"]
        errors.update(stats.get("errors", {}))
        pairing_counts = stats.get("pairing", {})
        summary.paired += pairing_counts.get("diff", 0) + pairing_counts.get("mask", 0)
        fallbacks.update({k: v for k, v in pairing_counts.items() if k.startswith("fallback:")})
        summary.faces_dropped += stats.get("faces_dropped", 0)
    summary.errors = dict(errors.most_common(20))
    summary.pairing_fallbacks = dict(fallbacks.most_common(20))
    problems.sort(key=lambda r: (PROBLEM_KINDS.index(r["problem"]), r["video_id"]))
    write_problems(problems, out / PROBLEMS_FILE)
    summary.problems = count_problems(problems)
    summary.problem_videos = [
        {k: r[k] for k in ("video_id", "problem", "reason")}
        for kind in summary.problems
        for r in [r for r in problems if r["problem"] == kind][:PER_KIND]
    ]
    with writing(out / "extract.json"):
        write_json(out / "extract.json", summary.as_dict(), newline=False, sort_keys=True)
    return summary
