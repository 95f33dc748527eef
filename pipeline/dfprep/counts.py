"""The count check: a manifest's videos per split and class next to what a complete copy gives.

The catalogue records, per dataset, the counts of the paper's Table 1 / Table 2 and of the
publishers' releases (`expected`). A copy with a missing part or a missing label file shows up
at once as a highlighted difference. Pure functions over a manifest table; the table is rich's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
from rich.markup import escape
from rich.table import Table

from dfprep.catalogue import CLASSES, DatasetEntry, Expected
from dfprep.schema import LABEL_NAMES, SPLITS

ALL = "all"
ROWS = (*SPLITS, ALL)
COLS = (*CLASSES, ALL)


def cell(split: str, cls: str) -> str:
    """The catalogue's name of a (split, class) cell: total, train, real, train.real..."""
    if split == ALL:
        return "total" if cls == ALL else cls
    return split if cls == ALL else f"{split}.{cls}"


def manifest_counts(table: pa.Table) -> dict[str, dict[str, int]]:
    """dataset -> cell -> videos, every cell of ROWS x COLS (zeros included)."""
    out: dict[str, dict[str, int]] = {}
    rows = (
        table.group_by(["dataset", "split", "label"]).aggregate([("video_id", "count")]).to_pylist()
    )
    for ds in sorted({r["dataset"] for r in rows}):
        out[ds] = dict.fromkeys((cell(s, c) for s in ROWS for c in COLS), 0)
    for r in rows:
        cls = LABEL_NAMES[int(r["label"])]
        for s in (r["split"], ALL):
            for c in (cls, ALL):
                out[r["dataset"]][cell(s, c)] += r["video_id_count"]
    return out


@dataclass
class CountCheck:
    dataset: str
    counts: dict[str, int]  # cell -> videos in the manifest
    expected: tuple[Expected, ...]
    differences: list[str] = field(default_factory=list)  # "train: 6,011 (Table 1: 6,010)"

    @property
    def ok(self) -> bool:
        return not self.differences


def check_counts(dataset: str, counts: dict[str, int], entry: DatasetEntry | None) -> CountCheck:
    expected = entry.expected if entry is not None else ()
    check = CountCheck(dataset, counts, expected)
    for e in expected:
        for name, want in e.counts.items():
            got = counts.get(name, 0)
            if got != want:
                check.differences.append(f"{name}: {got:,} ({e.source}: {want:,})")
    return check


def _diff(got: int, want: int) -> str:
    if got == want:
        return f"[green]{want:,}[/green]"
    return f"[bold red]{want:,} ({got - want:+,})[/bold red]"


def count_table(check: CountCheck) -> Table:
    """One row per split x class that the manifest holds or a source gives; each source's figure
    green when the manifest matches it, red with the manifest's difference when it does not."""
    t = Table(title=f"{escape(check.dataset)}: videos per split and class", title_justify="left")
    t.add_column("split")
    t.add_column("class")
    t.add_column("manifest", justify="right")
    for e in check.expected:
        t.add_column(escape(e.source), justify="right")
    for s in ROWS:
        for c in COLS:
            name = cell(s, c)
            got = check.counts.get(name, 0)
            wants = [e.counts.get(name) for e in check.expected]
            if got == 0 and all(w is None for w in wants):
                continue
            t.add_row(
                s,
                c,
                f"{got:,}",
                *("" if w is None else _diff(got, w) for w in wants),
                end_section=(c == ALL),
            )
    if not check.expected:
        t.caption = "no expected counts in the catalogue for this dataset"
    elif check.ok:
        t.caption = "[green]matches every recorded count[/green]"
    else:
        t.caption = (
            f"[bold red]{len(check.differences)} difference(s)[/bold red] "
            "(in brackets: manifest minus expected); an incomplete copy, a missing label file "
            "or a non-default option?"
        )
    return t
