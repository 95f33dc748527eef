"""The count check: a manifest's videos per split and class next to what a complete copy gives.

The catalogue records, per dataset, the counts of the paper's Table 1 / Table 2 and of the
publishers' releases (`expected`). A copy with a missing part or a missing label file shows up
at once as a highlighted difference. A known subset, the sample or a miniature that `dfprep synth`
made (its marker file sits above the videos), is said to be one, calmly: only a download can be
missing parts, and a download has no marker. Pure functions over a manifest table, but for the
marker lookup; the table is rich's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from rich.markup import escape
from rich.table import Table

from dfprep.catalogue import CLASSES, DatasetEntry, Expected
from dfprep.schema import LABEL_NAMES, SPLITS

# the marker file `dfprep synth` writes last at the root of what it made (dfprep.synth.ffpp.MARKER,
# dfprep.synth.suite.MARKER; a test keeps them equal) -> what that is
SUBSET_MARKERS = {
    ".dfprep-synth.json": "the sample dataset made by `dfprep synth`",
    ".dfprep-synth-suite.json": "a miniature made by `dfprep synth --layout all`",
}
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


def known_subset(paths: Iterable[str]) -> str:
    """What the videos at PATHS are a known subset of their dataset as (a sample or a miniature
    made by `dfprep synth`: its marker in their common folder or above), or '' for anything else."""
    paths = list(paths)
    if not paths:
        return ""
    try:
        common = Path(os.path.commonpath(paths))
    except ValueError:  # relative and absolute, or different drives
        return ""
    for folder in (common, *common.parents):
        for marker, what in SUBSET_MARKERS.items():
            if (folder / marker).is_file():
                return what
    return ""


@dataclass
class CountCheck:
    dataset: str
    counts: dict[str, int]  # cell -> videos in the manifest
    expected: tuple[Expected, ...]
    differences: list[str] = field(default_factory=list)  # "train: 6,011 (Table 1: 6,010)"
    subset: str = ""  # what the videos are a known subset of the dataset as (known_subset)
    above: list[str] = field(default_factory=list)  # differences with more videos than expected

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def as_subset(self) -> bool:
        """A known subset whose every difference is a shortfall: expected, not a problem."""
        return bool(self.subset and self.differences and not self.above)


def check_counts(
    dataset: str, counts: dict[str, int], entry: DatasetEntry | None, subset: str = ""
) -> CountCheck:
    expected = entry.expected if entry is not None else ()
    check = CountCheck(dataset, counts, expected, subset=subset)
    for e in expected:
        for name, want in e.counts.items():
            got = counts.get(name, 0)
            if got != want:
                check.differences.append(f"{name}: {got:,} ({e.source}: {want:,})")
                if got > want:
                    check.above.append(check.differences[-1])
    return check


def _diff(got: int, want: int, subset: bool) -> str:
    if got == want:
        return f"[green]{want:,}[/green]"
    if subset and got < want:
        return f"[dim]{want:,} ({got - want:+,})[/dim]"
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
                *("" if w is None else _diff(got, w, bool(check.subset)) for w in wants),
                end_section=(c == ALL),
            )
    if not check.expected:
        t.caption = "no expected counts in the catalogue for this dataset"
    elif check.ok:
        t.caption = "[green]matches every recorded count[/green]"
    elif check.as_subset:
        t.caption = (
            f"[cyan]subset[/cyan]: {escape(check.subset)}, fewer videos than the full release "
            f"in {len(check.differences)} cell(s), as expected"
        )
    else:
        t.caption = (
            f"[bold red]{len(check.differences)} difference(s)[/bold red] "
            "(in brackets: manifest minus expected); an incomplete copy, a missing label file "
            "or a non-default option?"
        )
    return t
