"""The plan of an extract run: manifests cut into shard jobs before any work starts, and the
output folder made ready (what is already complete is kept, what is stale removed, and a shard
with a video whose failure can pass is redone: see `dfprep.extract.failures`).

The manifest is cut into jobs of N videos in video-id order (a fake with its original, see
`dfprep.pairing`), so a shard's content never depends on scheduling.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from dfprep import pairing
from dfprep.config import ExtractConfig, replace
from dfprep.core.atomic import writing
from dfprep.core.errors import InputError
from dfprep.extract.failures import transient_count
from dfprep.manifest import read_manifest
from dfprep.shards import (
    ShardFiles,
    manifest_prefix,
    remove_stale_tmp,
    shard_name,
    shard_prefix,
    with_stats,
)

__all__ = [
    "ShardJob",
    "check_owners",
    "job_hash",
    "manifest_id",
    "plan_jobs",
    "prepare_out",
    "resolve_threads",
]


@dataclass(frozen=True)
class ShardJob:
    name: str
    shards_dir: str
    videos: tuple[dict, ...]
    params_hash: str
    manifest: str = ""  # the resolved path of the manifest it comes from (recorded in its stats)
    manifest_id: str = ""  # that manifest's content (`manifest_id`), recorded beside the path


def _content(rows: list[dict]) -> list[dict]:
    """The rows without their paths (a mask's path reduced to whether there is one); columns
    added later left out at their default value (`faces: detect`, no original, no mask)."""
    unset = {"faces": "detect", "original_id": "", "mask_path": ""}
    return [
        {
            k: (bool(v) if k == "mask_path" else v)
            for k, v in r.items()
            if k != "path" and not (k in unset and v == unset[k])
        }
        for r in rows
    ]


def job_hash(cfg: ExtractConfig, rows: list[dict]) -> str:
    """What the shard's bytes depend on: the output params and the videos' ids and labels.

    The path is left out on purpose: moving a dataset to another disk does not redo its shards.
    Columns added later are left out at their default value, so older shards stay valid.
    """
    blob = json.dumps([cfg.params_hash(), _content(rows)], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def manifest_id(rows: list[dict]) -> str:
    """A manifest identified by its content, not where it lies: its rows in video-id order, paths
    left out as in `job_hash`. Moving the project folder, reaching it through a symlink, or moving
    the dataset and writing the manifest again keeps it; another manifest's rows do not."""
    blob = json.dumps(_content(rows), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _read_rows(m: Path, seen_ids: dict[str, Path]) -> list[dict]:
    """Manifest M's rows in video-id order; an id already seen in another manifest is an error."""
    rows = sorted(read_manifest(m).to_pylist(), key=lambda r: r["video_id"])
    for r in rows:
        if r["video_id"] in seen_ids:
            raise InputError(
                f"video id {r['video_id']!r} is in both {seen_ids[r['video_id']]} and {m}"
            )
        seen_ids[r["video_id"]] = m
    return rows


def plan_jobs(manifests: list[Path], out_dir: Path, cfg: ExtractConfig) -> list[ShardJob]:
    jobs: list[ShardJob] = []
    seen_prefix: dict[str, Path] = {}
    seen_ids: dict[str, Path] = {}
    n = cfg.shard.videos_per_shard  # >= 1: validated with the config
    for m in map(Path, manifests):
        prefix = manifest_prefix(m)
        if prefix in seen_prefix:
            raise InputError(
                f"manifests {seen_prefix[prefix]} and {m} would write the same shard names ({prefix}-*); rename one"
            )
        seen_prefix[prefix] = m
        rows = _read_rows(m, seen_ids)
        identity = manifest_id(rows)
        # a fake and its original in one job, so the original is decoded once (dfprep.pairing);
        # without pairs (or pair.select: off) these are the video-id chunks of n videos
        for i, chunk in enumerate(pairing.pack(pairing.groups(rows, cfg.pair.select), n)):
            name = shard_name(prefix, i)
            jobs.append(
                ShardJob(
                    name,
                    str(out_dir / "shards"),
                    tuple(chunk),
                    job_hash(cfg, chunk),
                    str(m.resolve()),
                    identity,
                )
            )
    return jobs


def resolve_threads(cfg: ExtractConfig, run) -> ExtractConfig:
    """Decoder and detector threads of a process running one video at a time: explicit values,
    else its share of the cores (see `threads_per_worker`)."""
    from dfprep.distribute import threads_per_worker

    return replace(
        cfg,
        decode=replace(cfg.decode, threads=threads_per_worker(run, cfg.decode.threads)),
        detect=replace(cfg.detect, threads=threads_per_worker(run, cfg.detect.threads)),
    )


def check_owners(jobs: list[ShardJob], shards_dir: Path) -> None:
    """Refuse to touch shards that another manifest of the same file name wrote into this folder.

    Shard names come from the manifest's file name; each shard's stats record the manifest that
    wrote it, by path and by content (`manifest_id`). A manifest is the same when either agrees:
    the same content anywhere (a moved project), or the same file edited in place. Shards without
    the record (older runs) count as this manifest's."""
    ours = {shard_prefix(j.name): j for j in jobs}
    for name in with_stats(shards_dir):
        prefix = shard_prefix(name)
        if prefix not in ours:
            continue
        stats = ShardFiles(shards_dir, name).read_stats() or {}
        owner, owner_id = stats.get("manifest"), stats.get("manifest_id")
        mine = ours[prefix]
        if not owner or not mine.manifest or owner == mine.manifest:
            continue
        if owner_id and owner_id == mine.manifest_id:
            continue
        raise InputError(
            f"{shards_dir}: shards {prefix}-* were written from manifest {owner}; {mine.manifest} has the "
            "same file name and other content, and would replace them: rename one manifest or use another "
            "--out (or pass --overwrite to replace them)"
        )


def prepare_out(
    jobs: list[ShardJob], out: Path, overwrite: bool
) -> tuple[list[ShardJob], int, int]:
    """Remove temporary and stale files; return the jobs still to run, the number kept, and the
    videos to run again because their failure can pass (their shards are redone)."""
    shards_dir = out / "shards"
    if not overwrite:
        check_owners(jobs, shards_dir)
    with writing(shards_dir):
        shards_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(shards_dir)
    planned = {j.name for j in jobs}
    prefixes = {shard_prefix(j.name) for j in jobs}
    for name in with_stats(shards_dir):  # shards of an older plan of the same manifests
        if shard_prefix(name) in prefixes and name not in planned:
            ShardFiles(shards_dir, name).remove()
    pending, retried = [], 0
    for j in jobs:
        files = ShardFiles(j.shards_dir, j.name)
        complete = not overwrite and files.is_complete(j.params_hash)
        retry = transient_count(files.read_stats() or {}) if complete else 0
        if overwrite or retry:
            files.remove()  # else a worker would take the old files for a finished first attempt
        if not complete or retry:
            pending.append(j)
            retried += retry
    return pending, len(jobs) - len(pending), retried
