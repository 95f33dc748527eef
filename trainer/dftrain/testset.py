"""The test list and its crops, read from `dfprep extract` outputs (the Parquet tables, not the images).

The test list is every video of the chosen split in the complete shards' `*.videos.parquet`,
whatever its status (ok, no_face, failed): a video that yielded no crop still has to be scored and
counted. An extract directory with an unfinished shard is refused, since its videos would be missing
from the list without anyone noticing. So is a test video whose crops were chosen against its
original or mask (an extract made before the test split became label-blind): its score would
depend on ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dfprep.core.errors import InputError
from dfprep.schema import TEST_SPLIT
from dfprep.shards import read_extract_shards


@dataclass(frozen=True)
class Source:
    """`NAME=DIR` on the command line: the videos of dataset NAME in extract output DIR (all when
    no name is given)."""

    root: Path
    dataset: str | None = None

    def __str__(self) -> str:
        return f"{self.dataset}={self.root}" if self.dataset else str(self.root)


def parse_source(spec: str | Source) -> Source:
    if isinstance(spec, Source):
        return spec
    name, eq, root = str(spec).partition("=")
    if not eq:
        return Source(Path(spec))
    if not name or not root:
        raise InputError(f"--data {spec!r}: expected NAME=EXTRACT_DIR or EXTRACT_DIR")
    return Source(Path(root), name)


@dataclass
class TestSet:
    videos: pa.Table  # dfprep.shards.VIDEO_COLUMNS, one row per test video, sorted by video_id
    crops: (
        pa.Table
    )  # dfprep.shards.INDEX_COLUMNS + shard_path, the crops of those videos in index order

    def jobs(self) -> list[tuple[str, frozenset[str]]]:
        """(shard tar path, keys wanted from it) in shard order."""
        out: dict[str, set[str]] = {}
        for path, key in zip(
            self.crops["shard_path"].to_pylist(), self.crops["key"].to_pylist(), strict=True
        ):
            out.setdefault(path, set()).add(key)
        return [(p, frozenset(k)) for p, k in out.items()]


def check_label_blind(videos_file: Path) -> None:
    """A test video whose faces were chosen against its original or mask (its `pairing` is set)
    is refused: extracts made before the test split became label-blind did that."""
    if "pairing" not in pq.read_schema(videos_file).names:  # written before pairing existed
        return
    t = pq.read_table(videos_file, columns=["video_id", "split", "pairing"])
    paired = t.filter(
        pc.and_(
            pc.equal(t["split"], TEST_SPLIT),
            pc.invert(pc.equal(pc.fill_null(t["pairing"], ""), "")),
        )
    )
    if len(paired):
        raise InputError(
            f"{videos_file}: test video {paired['video_id'][0].as_py()!r} was cropped against its "
            f"original or mask (pairing {paired['pairing'][0].as_py()!r}; {len(paired)} such "
            "video(s)): made before the test split became label-blind; run `dfprep extract` again"
        )


def read_extract(root: Path, split: str | None = None) -> tuple[pa.Table, pa.Table]:
    """(videos, crops + shard_path) of every shard of an extract output; an unfinished shard is
    an error, and so is a paired test video when SPLIT is the test split (`check_label_blind`)."""
    complete, incomplete = read_extract_shards(root)
    if incomplete:
        raise InputError(
            f"{incomplete[0]}: unfinished shard (no .stats.json); finish `dfprep extract` first "
            f"({len(incomplete)} shard(s) in {root})"
        )
    if not complete:
        raise InputError(f"{root}: no complete shard in shards/")
    if split == TEST_SPLIT:
        for shard in complete:
            check_label_blind(shard.files.videos)
    videos, crops = [], []
    for shard in complete:
        c = shard.index
        videos.append(shard.videos)
        crops.append(
            c.append_column("shard_path", pa.array([str(shard.files.tar)] * len(c), pa.string()))
        )
    return pa.concat_tables(videos), pa.concat_tables(crops)


def select(source: Source, videos: pa.Table, crops: pa.Table, split: str) -> TestSet:
    """The test videos of one source and their crops; an unknown dataset or an empty split is an error."""
    all_videos = videos
    if source.dataset is not None:
        present = sorted(set(all_videos["dataset"].to_pylist()))
        if source.dataset not in present:
            raise InputError(
                f"{source}: no video of dataset {source.dataset!r} in {source.root} "
                f"(datasets there: {', '.join(present)})"
            )
        all_videos = all_videos.filter(pc.equal(all_videos["dataset"], source.dataset))
    test = all_videos.filter(pc.equal(all_videos["split"], split))
    if len(test) == 0:
        splits = sorted(set(all_videos["split"].to_pylist()))
        raise InputError(f"{source}: no {split!r} video (splits there: {', '.join(splits)})")
    test_crops = crops.filter(pc.is_in(crops["video_id"], value_set=test["video_id"]))
    return TestSet(test.sort_by("video_id"), test_crops)


def _checked(ts: TestSet, where: str) -> TestSet:
    """Video ids and crop keys unique; each video's crop count matches its status row."""
    if pc.count_distinct(ts.videos["video_id"]).as_py() != len(ts.videos):
        dup = _first_duplicate(ts.videos["video_id"].to_pylist())
        raise InputError(f"{where}: video {dup!r} is listed more than once (extracted twice?)")
    if pc.count_distinct(ts.crops["key"]).as_py() != len(ts.crops):
        dup = _first_duplicate(ts.crops["key"].to_pylist())
        raise InputError(f"{where}: crop {dup!r} appears more than once (extracted twice?)")
    for what, table, col in (
        ("video", ts.videos, "label"),
        ("crop", ts.crops, "label"),
        ("crop", ts.crops, "video_label"),
    ):
        bad = pc.filter(
            table,
            pc.invert(pc.fill_null(pc.is_in(table[col], pa.array([0, 1], table[col].type)), False)),
        )
        if len(bad):  # a label outside {0, 1} would be scored as fake (or crash the metrics)
            name = bad["video_id" if what == "video" else "key"][0].as_py()
            raise InputError(
                f"{where}: {what} {name!r} has {col} {bad[col][0].as_py()!r}; labels are 0 (real) or 1 (fake)"
            )
    counts = dict.fromkeys(ts.videos["video_id"].to_pylist(), 0)
    for vid in ts.crops["video_id"].to_pylist():
        counts[vid] += 1
    for vid, status, n in zip(
        ts.videos["video_id"].to_pylist(),
        ts.videos["status"].to_pylist(),
        ts.videos["crops"].to_pylist(),
        strict=True,
    ):
        if counts[vid] != n or (status == "ok") != (n > 0):
            raise InputError(
                f"{where}: video {vid!r} has status {status} and {n} crop(s) in its status row "
                f"but {counts[vid]} in the crop index"
            )
    return ts


def _first_duplicate(values: list[str]) -> str:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    return ""


def expand_sources(sources: list[Source]) -> list[Source]:
    """A DIR without shards/ stands for every extract output below it (DIR/*/shards, DIR/*/*/shards,
    ...), e.g. the experiment's data/extract/<role>/<dataset>; a DIR with none is left to fail."""
    out: list[Source] = []
    for s in sources:
        found = (
            []
            if (s.root / "shards").is_dir() or not s.root.is_dir()
            else sorted(
                p.parent
                for p in s.root.rglob("shards")
                if p.is_dir() and not p.parent.name.startswith(".")
            )
        )
        out += [Source(r, s.dataset) for r in found] if found else [s]
    return out


def read_test_set(sources: list[str | Source], split: str) -> TestSet:
    """The union of several sources; a video in two of them is an error, not a double count."""
    if not sources:
        raise InputError("no --data given")
    srcs = expand_sources([parse_source(s) for s in sources])
    tables: dict[Path, tuple[pa.Table, pa.Table]] = {}  # each directory read once
    for s in srcs:
        if s.root not in tables:
            tables[s.root] = read_extract(s.root, split)
    parts = [_checked(select(s, *tables[s.root], split), str(s)) for s in srcs]
    merged = TestSet(
        pa.concat_tables([p.videos for p in parts]).sort_by("video_id"),
        pa.concat_tables([p.crops for p in parts]),
    )
    return _checked(merged, " + ".join(map(str, srcs)))
