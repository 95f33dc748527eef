"""Deepfake-Eval-2024 (video part) as published: video-metadata-publish.csv and video-data/.

The label is `Video Ground Truth` (not the audio one): Real/Fake are kept, an empty or `unknown`
value is left out (counted in the log); anything else is an error. As in the paper (1,076 videos:
112 real, 964 fake), every labelled video is evaluated: all are `test` by default. Option
`split=finetuning` follows the `Finetuning Set` column (Train/Test) instead. No per-video method
is published.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from dfprep.adapters.registry import AdapterOptions, VideoRow, check_listed
from dfprep.adapters.splits import read_options
from dfprep.core.errors import ConfigError, InputError

log = logging.getLogger(__name__)

METADATA = ("video-metadata-publish.csv", "video-metadata-publish-with-links.csv")
VIDEO_DIR = "video-data"
LABELS = {"real": 0, "fake": 1}
UNLABELLED = {"", "unknown"}
SPLITS = {"train": "train", "test": "test"}
COLUMNS = ("Filename", "Video Ground Truth", "Finetuning Set")
SPLIT_MODES = (
    "test",
    "finetuning",
)  # test: every video is test; finetuning: the Finetuning Set column
OPTIONS = {
    "metadata": "",
    "split": "test",
}  # metadata: relative to ROOT; "" = the first of METADATA found


def _metadata(root: Path, name: str) -> Path:
    if name:
        p = root / name
        if not p.is_file():
            raise InputError(f"dfeval2024: metadata not found: {p}")
        return p
    for n in METADATA:
        if (root / n).is_file():
            return root / n
    raise InputError(f"dfeval2024: none of {', '.join(METADATA)} under {root}")


def dfeval2024(root: Path, opts: AdapterOptions) -> list[VideoRow]:
    o = read_options(opts, "dfeval2024", OPTIONS)
    if o["split"] not in SPLIT_MODES:
        raise ConfigError(
            f"dfeval2024: option split must be one of {', '.join(SPLIT_MODES)}, got {o['split']!r}"
        )
    meta = _metadata(root, o["metadata"])
    rows: list[VideoRow] = []
    seen: dict[str, int] = {}
    dropped = 0
    with meta.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        needed = COLUMNS if o["split"] == "finetuning" else COLUMNS[:2]
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{meta}:1: missing column(s) {', '.join(missing)}")
        for rec in reader:
            where = f"{meta}:{reader.line_num}"
            name = (rec["Filename"] or "").strip()
            truth = (rec["Video Ground Truth"] or "").strip()
            if not name:
                raise InputError(f"{where}: empty Filename")
            if name in seen:
                raise InputError(f"{where}: {name} is listed twice (first on line {seen[name]})")
            seen[name] = reader.line_num
            if truth.lower() in UNLABELLED:
                dropped += 1
                continue
            if truth.lower() not in LABELS:
                raise InputError(
                    f"{where}: unknown Video Ground Truth {truth!r} (expected Real or Fake)"
                )
            label = LABELS[truth.lower()]
            fset = (rec.get("Finetuning Set") or "").strip()
            if o["split"] == "finetuning" and fset.lower() not in SPLITS:
                raise InputError(
                    f"{where}: unknown Finetuning Set {fset!r} (expected Train or Test)"
                )
            split = SPLITS[fset.lower()] if o["split"] == "finetuning" else "test"
            rel = f"{VIDEO_DIR}/{name}"
            if check_listed(root, rel, opts, where):
                method, category = ("real", "real") if label == 0 else ("unknown", "unknown")
                rows.append(
                    VideoRow(rel, split, label, method, category, source_id=Path(name).stem)
                )
    if dropped:
        log.warning(
            "dfeval2024: %d video(s) with an empty or unknown Video Ground Truth left out (%s)",
            dropped,
            meta.name,
        )
    return rows
