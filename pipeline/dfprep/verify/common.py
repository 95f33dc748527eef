"""What both checks share: the report, and reading a tar, a Parquet table or a JSON file back
with every problem recorded instead of raised."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dfprep.core.atomic import TMP_MARK
from dfprep.core.errors import InputError, first_line
from dfprep.core.files import open_regular, read_regular_text
from dfprep.schema import LATER_COLUMNS
from dfprep.shards import check_sample, iter_samples

MAX_PROBLEMS = 1000  # kept in full; beyond this only counted (a broken run can have millions)


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
class Sample:
    label: int | None  # from .json (None when it does not parse)
    video_id: str | None
    split: str | None
    jpeg_bytes: int


def read_tar(path: Path, report: VerifyReport) -> list[tuple[str, Sample]] | None:
    """Every sample of a WebDataset tar, checked member by member; None if it cannot be read."""
    out: list[tuple[str, Sample]] = []
    try:
        with open_regular(path) as f:
            for key, members in iter_samples(f, str(path)):
                out.append((key, sample_record(path, key, members, report)))
    except InputError as e:
        report.problem(str(e))
        return None
    except OSError as e:
        report.problem(f"{path}: cannot read ({e.strerror or e})")
        return None
    return out


def sample_record(path: Path, key: str, members: dict[str, bytes], report: VerifyReport) -> Sample:
    where = f"{path}: sample {key}"
    s = check_sample(members, key, jpeg=True)
    for problem in s.problems:
        report.problem(f"{where}: {problem}")
    meta = s.meta or {}
    return Sample(s.label, meta.get("video_id"), meta.get("split"), len(members.get("jpg", b"")))


def read_parquet(path: Path, schema: pa.Schema, report: VerifyReport) -> pa.Table | None:
    try:
        with open_regular(path) as f:
            t = pq.read_table(f)
    except InputError as e:
        report.problem(str(e))
        return None
    except (OSError, pa.ArrowException) as e:
        report.problem(f"{path}: not a readable Parquet file ({first_line(e)})")
        return None
    missing = [n for n in schema.names if n not in t.column_names and n not in LATER_COLUMNS]
    if missing:
        report.problem(f"{path}: missing column(s) {', '.join(missing)}")
        return None
    return t


def read_json(path: Path, report: VerifyReport) -> object | None:
    try:
        return json.loads(read_regular_text(path))
    except InputError as e:
        report.problem(str(e))
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        report.problem(f"{path}: not a readable JSON file ({e})")
        return None


def tmp_notes(folder: Path, report: VerifyReport) -> None:
    tmp = sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and TMP_MARK in p.name)
    if tmp:
        report.notes.append(
            f"{folder}: {len(tmp)} temporary file(s) of an interrupted run, ignored "
            f"(the next run removes them), e.g. {tmp[0]}"
        )


def first(items: Iterable[str], n: int = 3) -> str:
    items = sorted(items)
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")
