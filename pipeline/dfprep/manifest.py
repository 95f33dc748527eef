"""Dataset root -> video manifest (Parquet, one row per video, `schema.MANIFEST_SCHEMA`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dfprep.adapters import AdapterOptions, VideoRow, get_adapter
from dfprep.errors import InputError
from dfprep.schema import CATEGORIES, FACES, INPUT_KINDS, MANIFEST_SCHEMA, SPLITS, make_video_id


def rows_to_table(dataset: str, root: Path, rows: list[VideoRow], faces: str = "detect") -> pa.Table:
    """Validate adapter rows and turn them into a manifest table sorted by video_id.

    `faces` is the dataset's mode (the catalogue's `faces`): `shipped` applies to image folders
    only, whose images are then the publisher's face crops; videos are always detected."""
    if faces not in FACES:
        raise InputError(f"{dataset}: faces must be one of {', '.join(FACES)}, got {faces!r}")
    root = root.resolve()
    base = str(root).rstrip("/")  # string joins: a pathlib join per video costs seconds on DFDC's 128K
    records = []
    for r in rows:
        where = f"{dataset}: {r.relpath}"
        if r.label not in (0, 1):
            raise InputError(f"{where}: label must be 0 or 1, got {r.label!r}")
        if r.split not in SPLITS:
            raise InputError(f"{where}: unknown split {r.split!r}")
        if r.category not in CATEGORIES:
            raise InputError(f"{where}: unknown category {r.category!r}")
        if (r.label == 0) != (r.category == "real"):
            raise InputError(f"{where}: label {r.label} does not agree with category {r.category!r}")
        if r.kind not in INPUT_KINDS:
            raise InputError(f"{where}: unknown input kind {r.kind!r}")
        segs = None
        if r.fake_segments is not None:
            segs = [{"start": float(a), "end": float(b)} for a, b in r.fake_segments]
        records.append(
            {
                "video_id": make_video_id(dataset, r.relpath),
                "path": f"{base}/{r.relpath}",
                "dataset": dataset,
                "split": r.split,
                "split_derived": bool(r.split_derived),
                "label": int(r.label),
                "method": r.method,
                "category": r.category,
                "source_id": r.source_id,
                "kind": r.kind,
                "frame_stride": int(r.frame_stride),
                "fake_segments": segs,
                "faces": faces if r.kind == "frames" else "detect",
            }
        )
    dup = [vid for vid, n in Counter(rec["video_id"] for rec in records).items() if n > 1]
    if dup:
        paths = [rec["path"] for rec in records if rec["video_id"] == dup[0]]
        raise InputError(f"{dataset}: duplicate video id {dup[0]!r} for {' and '.join(paths[:2])}")
    records.sort(key=lambda rec: rec["video_id"])
    return pa.Table.from_pylist(records, schema=MANIFEST_SCHEMA)


def build_manifest(
    dataset: str, root: str | Path, adapter: str | None = None, opts: AdapterOptions | None = None,
    faces: str = "detect",
) -> pa.Table:
    root = Path(root)
    if faces not in FACES:
        raise InputError(f"{dataset}: faces must be one of {', '.join(FACES)}, got {faces!r}")
    if not root.is_dir():
        raise InputError(f"dataset root not found: {root}")
    opts = opts or AdapterOptions()
    rows = list(get_adapter(adapter or dataset)(root, opts))
    if not rows:
        raise InputError(f"{dataset}: no videos found under {root}")
    return rows_to_table(dataset, root, rows, faces)


def write_manifest(table: pa.Table, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(out)
    return out


def read_manifest(path: str | Path) -> pa.Table:
    """Read and check a manifest written by `write_manifest` (or by hand, with the same columns)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"manifest not found: {path}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"{path}: not a Parquet manifest ({str(e).splitlines()[0]})") from None
    missing = [n for n in MANIFEST_SCHEMA.names if n not in table.column_names]
    required = {"video_id", "path", "dataset", "split", "label", "method", "category"}
    if required & set(missing):
        raise InputError(f"{path}: missing column(s) {', '.join(sorted(required & set(missing)))}")
    for name in missing:  # optional columns get their defaults
        default = {"split_derived": False, "source_id": "", "kind": "video", "frame_stride": 1,
                   "faces": "detect"}.get(name)
        field = MANIFEST_SCHEMA.field(name)
        table = table.append_column(field, pa.array([default] * table.num_rows, type=field.type))
    table = table.select(MANIFEST_SCHEMA.names).cast(MANIFEST_SCHEMA)
    ids = table.column("video_id").to_pylist()
    dup = [vid for vid, n in Counter(ids).items() if n > 1]
    if dup:
        raise InputError(f"{path}: duplicate video id {dup[0]!r}")
    return table
