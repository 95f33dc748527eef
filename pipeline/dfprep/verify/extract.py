"""Checking an extract output (DIR/shards/, DIR/meta/): each complete shard on its own, then
across shards and against the manifests (see `dfprep.verify`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from dfprep.core.errors import InputError
from dfprep.schema import (
    CROP_INDEX_SCHEMA,
    DROPPED_SCHEMA,
    STATUSES,
    TEST_SPLIT,
    VIDEO_STATUS_SCHEMA,
)
from dfprep.shards import ShardFiles, manifest_prefix, meta_dir, scan_shards, shard_prefix
from dfprep.verify.common import (
    VerifyReport,
    first,
    read_json,
    read_parquet,
    read_tar,
    tmp_notes,
)

MANIFEST_LABELS = ("label", "dataset", "split", "method", "category")


def verify_extract(path: str | Path, manifests: Iterable[str | Path] | None = None) -> VerifyReport:
    """Check an extract output directory; with manifests, also that every video is accounted for."""
    root = Path(path)
    shards = root / "shards"
    report = VerifyReport("extract", str(root))
    if not shards.is_dir():
        raise InputError(f"{root}: not an extract output directory (no shards/ folder)")
    tmp_notes(shards, report)
    if meta_dir(shards).is_dir():
        tmp_notes(meta_dir(shards), report)
    names = list(scan_shards(shards))
    totals: Counter = Counter()
    video_shard: dict[str, str] = {}  # video id -> shard, over all complete shards
    video_rows: dict[str, dict] = {}
    key_shard: dict[str, str] = {}
    incomplete = []
    for name in names:
        files = ShardFiles(shards, name)
        if not files.stats.exists():
            incomplete.append(name)
            continue
        totals["shards"] += 1
        rows = _verify_shard(files, report, totals)
        if rows is None:
            continue
        videos, keys = rows
        for r in videos:
            vid = r["video_id"]
            if vid in video_shard:
                report.problem(f"video {vid!r} is in two shards: {video_shard[vid]} and {name}")
            video_shard[vid] = name
            video_rows[vid] = r
        for k in keys:
            if k in key_shard:
                report.problem(f"crop {k!r} is in two shards: {key_shard[k]} and {name}")
            key_shard[k] = name
    if (root / "extract.json").exists():
        _check_last_run(root / "extract.json", shards, report)
    if incomplete:
        totals["incomplete_shards"] = len(incomplete)
        report.notes.append(
            f"{len(incomplete)} shard(s) without a stats file (unfinished, killed or "
            f"failed; not counted, a rerun redoes them): {first(incomplete)}"
        )
    if manifests:
        _verify_manifests([Path(m) for m in manifests], video_shard, video_rows, report, totals)
    report.counts = dict(totals)
    return report


def _check_last_run(path: Path, shards: Path, report: VerifyReport) -> None:
    """extract.json (the last run's summary): shard jobs it lost that are still not complete."""
    last = read_json(path, report)
    if not isinstance(last, dict):
        return
    lost = [
        (n, e) for n, e in last.get("failed_jobs") or [] if not ShardFiles(shards, n).stats.exists()
    ]
    if lost:
        report.problem(
            f"{path}: {len(lost)} shard job(s) of the last run failed and are not complete, "
            f"e.g. {lost[0][0]}: {lost[0][1]} (rerun dfprep extract)"
        )
    if last.get("interrupted"):
        report.problem(
            f"{path}: the last run was interrupted before it finished (rerun dfprep extract)"
        )


def _verify_shard(
    files: ShardFiles, report: VerifyReport, totals: Counter
) -> tuple[list[dict], list[str]] | None:
    """One complete shard; returns its video rows and crop keys (None when unreadable)."""
    stats = read_json(files.stats, report)
    missing = [p.name for p in (files.tar, files.index, files.videos) if not p.exists()]
    if missing:
        report.problem(f"{files.stats}: shard marked complete but {', '.join(missing)} missing")
        return None
    index = read_parquet(files.index, CROP_INDEX_SCHEMA, report)
    videos = read_parquet(files.videos, VIDEO_STATUS_SCHEMA, report)
    samples = read_tar(files.tar, report)
    if index is None or videos is None or samples is None or not isinstance(stats, dict):
        if stats is not None and not isinstance(stats, dict):
            report.problem(f"{files.stats}: not a JSON object")
        return None
    vrows = videos.select(["video_id", *MANIFEST_LABELS, "status", "error", "crops"]).to_pylist()
    irows = index.select(["key", "shard", "video_id", "label", "jpeg_bytes"]).to_pylist()
    status = Counter(r["status"] for r in vrows)
    if "faces_dropped" in videos.column_names:  # paired fakes: faces left out as unmanipulated
        _check_pairing(files, videos, stats, report, totals)
    totals.update(
        videos=len(vrows),
        crops=len(irows),
        samples=len(samples),
        **{s: status.get(s, 0) for s in STATUSES},
    )
    _check_stats(files, stats, vrows, irows, report)
    _check_videos_against_index(files, vrows, irows, report)
    by_key = _check_index_against_tar(files, irows, samples, report)
    return vrows, list(by_key)


def _check_pairing(files: ShardFiles, videos, stats: dict, report: VerifyReport, totals) -> None:
    """The faces dropped as unmanipulated: the stats and the thumbnails agree with the table; no
    test video was paired (older extracts did that)."""
    dropped = sum(n or 0 for n in videos["faces_dropped"].to_pylist())  # null: none
    how = (
        [p or "" for p in videos.column("pairing").to_pylist()]
        if ("pairing" in videos.column_names)
        else []
    )
    totals.update(
        faces_dropped=dropped,
        paired=sum(p in ("diff", "mask") for p in how),
        pairing_fallbacks=sum(p.startswith("fallback") for p in how),
    )
    ids, splits = videos["video_id"].to_pylist(), videos["split"].to_pylist()
    blind = [v for v, split, p in zip(ids, splits, how or [""] * len(ids), strict=True)
             if split == TEST_SPLIT and p]  # fmt: skip
    if blind:
        report.problem(
            f"{files.videos}: test video {blind[0]!r} was cropped against its original or mask "
            f"({len(blind)} such video(s)); the test split is label-blind: run dfprep extract again"
        )
    if stats.get("faces_dropped", dropped) != dropped:
        report.problem(
            f"{files.stats}: faces_dropped = {stats.get('faces_dropped')!r}, "
            f"the shard's video table says {dropped}"
        )
    if files.dropped.exists():
        thumbs = read_parquet(files.dropped, DROPPED_SCHEMA, report)
        if thumbs is not None and len(thumbs) > dropped:
            report.problem(f"{files.dropped}: {len(thumbs)} thumbnails for {dropped} dropped faces")


def _check_stats(files: ShardFiles, stats: dict, vrows, irows, report: VerifyReport) -> None:
    """The stats file adds up and agrees with the tables."""
    status = Counter(r["status"] for r in vrows)
    where = str(files.stats)
    want = {"videos": len(vrows), "crops": len(irows), **{s: status.get(s, 0) for s in STATUSES}}
    for k, v in want.items():
        if stats.get(k) != v:
            report.problem(f"{where}: {k} = {stats.get(k)!r}, the shard's tables say {v}")
    parts = [stats.get(s) for s in STATUSES]
    if not all(isinstance(n, int) for n in parts) or sum(parts) != stats.get("videos"):
        report.problem(f"{where}: videos {stats.get('videos')!r} != ok + no_face + failed {parts}")
    odd = sorted(set(status) - set(STATUSES))
    if odd:
        report.problem(f"{files.videos}: unknown status(es) {', '.join(map(str, odd))}")


def _check_videos_against_index(files: ShardFiles, vrows, irows, report: VerifyReport) -> None:
    per_video = Counter(r["video_id"] for r in irows)
    ids = {r["video_id"] for r in vrows}
    for r in vrows:
        n = per_video.get(r["video_id"], 0)
        if r["crops"] != n:
            report.problem(
                f"{files.videos}: {r['video_id']} says {r['crops']} crops, the index has {n}"
            )
        if (r["status"] == "ok") != (n > 0):
            report.problem(
                f"{files.videos}: {r['video_id']} has status {r['status']} with {n} crops"
            )
        if r["status"] == "failed" and not r["error"]:
            report.problem(f"{files.videos}: {r['video_id']} failed without a reason")
    stray = set(per_video) - ids
    if stray:
        report.problem(
            f"{files.index}: crops of video(s) not in the shard's video table: {first(stray)}"
        )
    wrong = {r["shard"] for r in irows} - {files.tar.name}
    if wrong:
        report.problem(
            f"{files.index}: rows name shard(s) {first(wrong)}, expected {files.tar.name}"
        )


def _check_index_against_tar(files: ShardFiles, irows, samples, report: VerifyReport) -> dict:
    """The index and the tar hold the same crops with the same labels; returns key -> index row."""
    by_key = {r["key"]: r for r in irows}
    if len(by_key) != len(irows):
        dup = [k for k, n in Counter(r["key"] for r in irows).items() if n > 1]
        report.problem(f"{files.index}: key(s) listed twice: {first(dup)}")
    tar_keys = {k for k, _ in samples}
    if len(tar_keys) != len(samples):
        dup = [k for k, n in Counter(k for k, _ in samples).items() if n > 1]
        report.problem(f"{files.tar}: sample(s) twice in the tar: {first(dup)}")
    only_index, only_tar = set(by_key) - tar_keys, tar_keys - set(by_key)
    if only_index:
        report.problem(
            f"{files.tar}: {len(only_index)} crop(s) of the index missing from the tar: {first(only_index)}"
        )
    if only_tar:
        report.problem(
            f"{files.tar}: {len(only_tar)} sample(s) not in the index: {first(only_tar)}"
        )
    for key, s in samples:
        r = by_key.get(key)
        if r is None:
            continue
        if s.label is not None and s.label != r["label"]:
            report.problem(
                f"{files.tar}: sample {key}: label {s.label}, the index says {r['label']}"
            )
        if s.video_id is not None and s.video_id != r["video_id"]:
            report.problem(
                f"{files.tar}: sample {key}: video {s.video_id!r}, the index says {r['video_id']!r}"
            )
        if s.jpeg_bytes != r["jpeg_bytes"]:
            report.problem(
                f"{files.tar}: sample {key}: .jpg has {s.jpeg_bytes} bytes, the index says {r['jpeg_bytes']}"
            )
    return by_key


def _verify_manifests(
    manifests: list[Path],
    video_shard: dict[str, str],
    video_rows: dict[str, dict],
    report: VerifyReport,
    totals: Counter,
) -> None:
    from dfprep.manifest import read_manifest

    listed: dict[str, str] = {}  # video id -> shard prefix of its manifest
    missing: list[str] = []
    for m in manifests:
        prefix = manifest_prefix(m)
        for row in read_manifest(m).select(["video_id", *MANIFEST_LABELS]).to_pylist():
            vid = row["video_id"]
            listed[vid] = prefix
            got = video_rows.get(vid)
            if got is None:
                missing.append(vid)
                continue
            diff = [f"{c} {got[c]!r} != {row[c]!r}" for c in MANIFEST_LABELS if got[c] != row[c]]
            if diff:
                report.problem(
                    f"{video_shard[vid]}: {vid} is labelled unlike {m.name}: {'; '.join(diff)}"
                )
    totals["manifest_videos"] = len(listed)
    totals["unaccounted"] = len(missing)
    if missing:
        report.problem(
            f"{len(missing)} of {len(listed)} manifest video(s) in no complete shard "
            f"(failed, killed or not yet run): {first(missing)}"
        )
    prefixes = set(listed.values())
    strays: defaultdict[str, list[str]] = defaultdict(list)
    for vid, shard in video_shard.items():
        if shard_prefix(shard) in prefixes and vid not in listed:
            strays[shard].append(vid)
    for shard, vids in sorted(strays.items()):
        report.problem(
            f"{shard}: {len(vids)} video(s) not in its manifest (a stale shard?): {first(vids)}"
        )
