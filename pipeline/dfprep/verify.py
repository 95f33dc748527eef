"""dfprep verify: can an output directory be trusted as it is on disk?

Reads everything back, once, with the same readers the later stages use, and reports every
discrepancy (one line each, naming the file) instead of stopping at the first:

- extract output (DIR/shards/): a shard counts once its stats file exists; then its tar, crop
  index and video table must all be there and readable, the stats must add up (videos = ok +
  no_face + failed, crops = index rows = tar samples), the tar and the index must hold exactly the
  same crops with the same labels, every `.json` must parse and agree with its `.cls`, and no video
  or crop may appear twice. Given the manifests, every manifest video must be in exactly one
  complete shard with the manifest's labels, and no shard of a manifest may hold a video it does
  not list.
- balance output (DIR/sizes.json): every shard sizes.json lists exists with that many samples and
  no other shard is there; selection.parquet names the same crops, in the same order and with the
  same labels, as the tars; every JSON file and record parses.

Leftovers that nothing trusts (temporary files of killed runs, shards without a stats file) are
notes, not problems, unless manifests are given and their videos are therefore missing.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dfprep.balance.select import BALANCED_SPLITS
from dfprep.core.atomic import TMP_MARK
from dfprep.core.errors import InputError, first_line
from dfprep.schema import CROP_INDEX_SCHEMA, DROPPED_SCHEMA, STATUSES, VIDEO_STATUS_SCHEMA
from dfprep.shards import (
    ShardFiles,
    check_sample,
    iter_samples,
    manifest_prefix,
    scan_shards,
    shard_prefix,
)

MAX_PROBLEMS = 1000  # kept in full; beyond this only counted (a broken run can have millions)
MANIFEST_LABELS = ("label", "dataset", "split", "method", "category")
SELECTION_COLUMNS = ["key", "split", "label", "out_shard", "out_pos"]
# columns added with pairing: shards written before them are still valid
LATER_COLUMNS = frozenset({"manip_score", "original_id", "pairing", "faces_dropped"})


@dataclass
class VerifyReport:
    kind: str  # "extract" | "balance"
    path: str
    problems: list[str] = field(default_factory=list)  # the output cannot be trusted as it is
    notes: list[str] = field(default_factory=list)  # harmless leftovers worth knowing about
    counts: dict[str, int] = field(default_factory=dict)
    omitted: int = 0  # problems beyond MAX_PROBLEMS, counted only

    @property
    def ok(self) -> bool:
        return not self.problems and not self.omitted

    def problem(self, msg: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(msg)
        else:
            self.omitted += 1

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


@dataclass
class _Sample:
    label: int | None  # from .json (None when it does not parse)
    video_id: str | None
    split: str | None
    jpeg_bytes: int


def verify_output(path: str | Path, manifests: Iterable[str | Path] | None = None) -> VerifyReport:
    """Check an extract or a balance output directory (recognised by its contents)."""
    d = Path(path)
    if (d / "shards").is_dir():
        return verify_extract(d, manifests)
    if manifests:
        raise InputError(
            f"{d}: manifests can only be checked against an extract output (DIR/shards/)"
        )
    if (d / "sizes.json").exists() or (d / "selection.parquet").exists() or (d / "train").is_dir():
        return verify_balance(d)
    if not d.is_dir():
        raise InputError(f"{d}: directory not found")
    raise InputError(
        f"{d}: neither an extract output (no shards/) nor a balance output (no sizes.json)"
    )


# ------------------------------------------------------------------------------------- tars


def read_tar(path: Path, report: VerifyReport) -> list[tuple[str, _Sample]] | None:
    """Every sample of a WebDataset tar, checked member by member; None if it cannot be read."""
    out: list[tuple[str, _Sample]] = []
    try:
        with open(path, "rb") as f:
            for key, members in iter_samples(f, str(path)):
                out.append((key, _check_sample(path, key, members, report)))
    except InputError as e:
        report.problem(str(e))
        return None
    except OSError as e:
        report.problem(f"{path}: cannot read ({e.strerror or e})")
        return None
    return out


def _check_sample(path: Path, key: str, members: dict[str, bytes], report: VerifyReport) -> _Sample:
    where = f"{path}: sample {key}"
    s = check_sample(members, key, jpeg=True)
    for problem in s.problems:
        report.problem(f"{where}: {problem}")
    meta = s.meta or {}
    return _Sample(s.label, meta.get("video_id"), meta.get("split"), len(members.get("jpg", b"")))


def _read_table(path: Path, schema: pa.Schema, report: VerifyReport) -> pa.Table | None:
    try:
        t = pq.read_table(path)
    except (OSError, pa.ArrowException) as e:
        report.problem(f"{path}: not a readable Parquet file ({first_line(e)})")
        return None
    missing = [n for n in schema.names if n not in t.column_names and n not in LATER_COLUMNS]
    if missing:
        report.problem(f"{path}: missing column(s) {', '.join(missing)}")
        return None
    return t


def _read_json(path: Path, report: VerifyReport) -> object | None:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        report.problem(f"{path}: not a readable JSON file ({e})")
        return None


def _tmp_notes(folder: Path, report: VerifyReport) -> None:
    tmp = sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and TMP_MARK in p.name)
    if tmp:
        report.notes.append(
            f"{folder}: {len(tmp)} temporary file(s) of an interrupted run, ignored "
            f"(the next run removes them), e.g. {tmp[0]}"
        )


def _first(items: Iterable[str], n: int = 3) -> str:
    items = sorted(items)
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


# ---------------------------------------------------------------------------------- extract


def verify_extract(path: str | Path, manifests: Iterable[str | Path] | None = None) -> VerifyReport:
    """Check an extract output directory; with manifests, also that every video is accounted for."""
    root = Path(path)
    shards = root / "shards"
    report = VerifyReport("extract", str(root))
    if not shards.is_dir():
        raise InputError(f"{root}: not an extract output directory (no shards/ folder)")
    _tmp_notes(shards, report)
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
            f"failed; not counted, a rerun redoes them): {_first(incomplete)}"
        )
    if manifests:
        _verify_manifests([Path(m) for m in manifests], video_shard, video_rows, report, totals)
    report.counts = dict(totals)
    return report


def _check_last_run(path: Path, shards: Path, report: VerifyReport) -> None:
    """extract.json (the last run's summary): shard jobs it lost that are still not complete."""
    last = _read_json(path, report)
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
    stats = _read_json(files.stats, report)
    missing = [p.name for p in (files.tar, files.index, files.videos) if not p.exists()]
    if missing:
        report.problem(f"{files.stats}: shard marked complete but {', '.join(missing)} missing")
        return None
    index = _read_table(files.index, CROP_INDEX_SCHEMA, report)
    videos = _read_table(files.videos, VIDEO_STATUS_SCHEMA, report)
    samples = read_tar(files.tar, report)
    if index is None or videos is None or samples is None or not isinstance(stats, dict):
        if stats is not None and not isinstance(stats, dict):
            report.problem(f"{files.stats}: not a JSON object")
        return None
    vrows = videos.select(["video_id", *MANIFEST_LABELS, "status", "error", "crops"]).to_pylist()
    irows = index.select(["key", "shard", "video_id", "label", "jpeg_bytes"]).to_pylist()
    status = Counter(r["status"] for r in vrows)
    if "faces_dropped" in videos.column_names:  # paired fakes: faces left out as unmanipulated
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
        if stats.get("faces_dropped", dropped) != dropped:
            report.problem(
                f"{files.stats}: faces_dropped = {stats.get('faces_dropped')!r}, "
                f"the shard's video table says {dropped}"
            )
        if files.dropped.exists():
            thumbs = _read_table(files.dropped, DROPPED_SCHEMA, report)
            if thumbs is not None and len(thumbs) > dropped:
                report.problem(
                    f"{files.dropped}: {len(thumbs)} thumbnails for {dropped} dropped faces"
                )
    totals.update(
        videos=len(vrows),
        crops=len(irows),
        samples=len(samples),
        **{s: status.get(s, 0) for s in STATUSES},
    )

    # the stats file adds up and agrees with the tables
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

    # video table vs crop index
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
            f"{files.index}: crops of video(s) not in the shard's video table: {_first(stray)}"
        )
    wrong = {r["shard"] for r in irows} - {files.tar.name}
    if wrong:
        report.problem(
            f"{files.index}: rows name shard(s) {_first(wrong)}, expected {files.tar.name}"
        )

    # crop index vs tar
    by_key = {r["key"]: r for r in irows}
    if len(by_key) != len(irows):
        dup = [k for k, n in Counter(r["key"] for r in irows).items() if n > 1]
        report.problem(f"{files.index}: key(s) listed twice: {_first(dup)}")
    tar_keys = {k for k, _ in samples}
    if len(tar_keys) != len(samples):
        dup = [k for k, n in Counter(k for k, _ in samples).items() if n > 1]
        report.problem(f"{files.tar}: sample(s) twice in the tar: {_first(dup)}")
    only_index, only_tar = set(by_key) - tar_keys, tar_keys - set(by_key)
    if only_index:
        report.problem(
            f"{files.tar}: {len(only_index)} crop(s) of the index missing from the tar: {_first(only_index)}"
        )
    if only_tar:
        report.problem(
            f"{files.tar}: {len(only_tar)} sample(s) not in the index: {_first(only_tar)}"
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
    return vrows, list(by_key)


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
            f"(failed, killed or not yet run): {_first(missing)}"
        )
    prefixes = set(listed.values())
    strays: defaultdict[str, list[str]] = defaultdict(list)
    for vid, shard in video_shard.items():
        if shard_prefix(shard) in prefixes and vid not in listed:
            strays[shard].append(vid)
    for shard, vids in sorted(strays.items()):
        report.problem(
            f"{shard}: {len(vids)} video(s) not in its manifest (a stale shard?): {_first(vids)}"
        )


# ---------------------------------------------------------------------------------- balance


def verify_balance(path: str | Path) -> VerifyReport:
    """Check a balance output directory: sizes.json, the shards and selection.parquet agree."""
    root = Path(path)
    report = VerifyReport("balance", str(root))
    if (root / ".buckets").exists():
        report.notes.append(
            f"{root / '.buckets'}: temporary buckets of an interrupted run (the next run removes them)"
        )
    sizes = _read_json(root / "sizes.json", report) if (root / "sizes.json").exists() else None
    if not (root / "sizes.json").exists():
        report.problem(
            f"{root}: no sizes.json, so balance did not finish (it is written last): rerun dfprep balance"
        )
    elif not isinstance(sizes, dict) or not all(
        isinstance(v, dict) and all(isinstance(n, int) for n in v.values()) for v in sizes.values()
    ):
        if sizes is not None:
            report.problem(f"{root / 'sizes.json'}: expected {{split: {{shard: count}}}}")
        sizes = None
    for name in ("stats.json",):
        if (root / name).exists():
            _read_json(root / name, report)
        elif sizes is not None:
            report.problem(f"{root / name}: missing")
    totals: Counter = Counter()
    splits = sorted(
        set(sizes or {})
        | {p.name for p in root.iterdir() if p.is_dir() and p.name in BALANCED_SPLITS}
    )
    tar_keys: dict[str, list[tuple[str, _Sample]]] = {}
    seen: dict[str, str] = {}
    for split in splits:
        folder = root / split
        listed = dict((sizes or {}).get(split, {}))
        if folder.is_dir():
            _tmp_notes(folder, report)
            present = {p.name for p in folder.glob("*.tar")}
        else:
            present = set()
        if sizes is not None:
            if present - set(listed):
                report.problem(
                    f"{folder}: shard(s) not in sizes.json: {_first(present - set(listed))}"
                )
            if set(listed) - present:
                report.problem(
                    f"{folder}: shard(s) in sizes.json missing: {_first(set(listed) - present)}"
                )
        for name in sorted(present):
            samples = read_tar(folder / name, report)
            if samples is None:
                continue
            totals["shards"] += 1
            totals["samples"] += len(samples)
            tar_keys[f"{split}/{name}"] = samples
            if name in listed and len(samples) != listed[name]:
                report.problem(
                    f"{folder / name}: {len(samples)} samples, sizes.json says {listed[name]}"
                )
            for key, s in samples:
                if key in seen:
                    report.problem(f"crop {key!r} is in two shards: {seen[key]} and {split}/{name}")
                seen[key] = f"{split}/{name}"
                if s.split is not None and s.split != split:
                    report.problem(
                        f"{folder / name}: sample {key} is a {s.split} crop in the {split} split"
                    )
    _verify_selection(root, tar_keys, report, totals, required=sizes is not None)
    report.counts = dict(totals)
    return report


def _verify_selection(
    root: Path,
    tars: dict[str, list[tuple[str, _Sample]]],
    report: VerifyReport,
    totals: Counter,
    required: bool,
) -> None:
    path = root / "selection.parquet"
    if not path.exists():
        if required:
            report.problem(f"{path}: missing")
        return
    try:
        sel = pq.read_table(path, columns=SELECTION_COLUMNS).to_pylist()
    except (OSError, pa.ArrowException) as e:
        report.problem(f"{path}: not a readable selection table ({first_line(e)})")
        return
    totals["selected"] = len(sel)
    groups: defaultdict[str, list[dict]] = defaultdict(list)
    for r in sel:
        groups[f"{r['split']}/{r['out_shard']}"].append(r)
    if len({r["key"] for r in sel}) != len(sel):
        dup = [k for k, n in Counter(r["key"] for r in sel).items() if n > 1]
        report.problem(f"{path}: crop(s) selected twice: {_first(dup)}")
    for shard in sorted(set(groups) - set(tars)):
        report.problem(
            f"{path}: {len(groups[shard])} crop(s) selected for {shard}, which is not there"
        )
    for shard, samples in sorted(tars.items()):
        rows = sorted(groups.get(shard, []), key=lambda r: r["out_pos"])
        keys = [k for k, _ in samples]
        if [r["key"] for r in rows] != keys:
            missing = {r["key"] for r in rows} - set(keys)
            extra = set(keys) - {r["key"] for r in rows}
            what = (
                f"{len(missing)} selected crop(s) missing, e.g. {_first(missing, 1)}"
                if missing
                else f"{len(extra)} crop(s) not selected, e.g. {_first(extra, 1)}"
                if extra
                else "the same crops in another order"
            )
            report.problem(f"{root / shard}: does not match {path.name}: {what}")
            continue
        for r, (key, s) in zip(rows, samples, strict=True):
            if s.label is not None and s.label != r["label"]:
                report.problem(
                    f"{root / shard}: sample {key}: label {s.label}, {path.name} says {r['label']}"
                )
