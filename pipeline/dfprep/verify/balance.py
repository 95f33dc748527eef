"""Checking a balance output (DIR/sizes.json, the split folders, selection.parquet; see
`dfprep.verify`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dfprep.balance.select import BALANCED_SPLITS
from dfprep.core.errors import InputError, first_line
from dfprep.core.files import open_regular
from dfprep.verify.common import Sample, VerifyReport, first, read_json, read_tar, tmp_notes

SELECTION_COLUMNS = ["key", "split", "label", "out_shard", "out_pos"]


def verify_balance(path: str | Path) -> VerifyReport:
    """Check a balance output directory: sizes.json, the shards and selection.parquet agree."""
    root = Path(path)
    report = VerifyReport("balance", str(root))
    if (root / ".buckets").exists():
        report.notes.append(
            f"{root / '.buckets'}: temporary buckets of an interrupted run (the next run removes them)"
        )
    sizes = read_json(root / "sizes.json", report) if (root / "sizes.json").exists() else None
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
            read_json(root / name, report)
        elif sizes is not None:
            report.problem(f"{root / name}: missing")
    totals: Counter = Counter()
    splits = sorted(
        set(sizes or {})
        | {p.name for p in root.iterdir() if p.is_dir() and p.name in BALANCED_SPLITS}
    )
    tar_keys: dict[str, list[tuple[str, Sample]]] = {}
    seen: dict[str, str] = {}
    for split in splits:
        folder = root / split
        listed = dict((sizes or {}).get(split, {}))
        if folder.is_dir():
            tmp_notes(folder, report)
            present = {p.name for p in folder.glob("*.tar")}
        else:
            present = set()
        if sizes is not None:
            if present - set(listed):
                report.problem(
                    f"{folder}: shard(s) not in sizes.json: {first(present - set(listed))}"
                )
            if set(listed) - present:
                report.problem(
                    f"{folder}: shard(s) in sizes.json missing: {first(set(listed) - present)}"
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
    tars: dict[str, list[tuple[str, Sample]]],
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
        with open_regular(path) as f:
            sel = pq.read_table(f, columns=SELECTION_COLUMNS).to_pylist()
    except InputError as e:
        report.problem(str(e))
        return
    except (OSError, pa.ArrowException) as e:
        report.problem(f"{path}: not a readable selection table ({first_line(e)})")
        return
    totals["selected"] = len(sel)
    groups: defaultdict[str, list[dict]] = defaultdict(list)
    for r in sel:
        groups[f"{r['split']}/{r['out_shard']}"].append(r)
    if len({r["key"] for r in sel}) != len(sel):
        dup = [k for k, n in Counter(r["key"] for r in sel).items() if n > 1]
        report.problem(f"{path}: crop(s) selected twice: {first(dup)}")
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
                f"{len(missing)} selected crop(s) missing, e.g. {first(missing, 1)}"
                if missing
                else f"{len(extra)} crop(s) not selected, e.g. {first(extra, 1)}"
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
