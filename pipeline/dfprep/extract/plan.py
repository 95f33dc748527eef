"""The plan of an extract run: manifests cut into shard jobs before any work starts, and the
output folder made ready (what is already complete is kept, what is stale removed).

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


def job_hash(cfg: ExtractConfig, rows: list[dict]) -> str:
    """What the shard's bytes depend on: the output params and the videos' ids and labels.

    The path is left out on purpose: moving a dataset to another disk does not redo its shards;
    a mask's path is reduced to whether there is one. Columns added later are left out at their
    default value (`faces: detect`, no original, no mask), so older shards stay valid.
    """
    unset = {"faces": "detect", "original_id": "", "mask_path": ""}
    content = [
        {
            k: (bool(v) if k == "mask_path" else v)
            for k, v in r.items()
            if k != "path" and not (k in unset and v == unset[k])
        }
        for r in rows
    ]
    blob = json.dumps([cfg.params_hash(), content], sort_keys=True, default=str).encode()
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
    wrote it. Shards without that record (older runs) count as this manifest's."""
    ours = {shard_prefix(j.name): j.manifest for j in jobs}
    for name in with_stats(shards_dir):
        prefix = shard_prefix(name)
        if prefix not in ours:
            continue
        owner = (ShardFiles(shards_dir, name).read_stats() or {}).get("manifest")
        if owner and ours[prefix] and owner != ours[prefix]:
            raise InputError(
                f"{shards_dir}: shards {prefix}-* were written from manifest {owner}; {ours[prefix]} has the "
                "same file name and would replace them: rename one manifest or use another --out "
                "(or pass --overwrite to replace them)"
            )


def prepare_out(jobs: list[ShardJob], out: Path, overwrite: bool) -> tuple[list[ShardJob], int]:
    """Remove temporary and stale files; return the jobs still to run and the number kept."""
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
    pending = []
    for j in jobs:
        files = ShardFiles(j.shards_dir, j.name)
        if overwrite:
            files.remove()  # else a worker would take the old files for a finished first attempt
        if overwrite or not files.is_complete(j.params_hash):
            pending.append(j)
    return pending, len(jobs) - len(pending)
