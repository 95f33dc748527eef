"""What `dfprep bench` prints: each result as rich tables (figures, then targets) and notes."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from dfprep.bench.cases import BenchResult
from dfprep.bench.pairing import PairingBench

_MET = {True: "yes", False: "[red]NO[/red]"}


def _targets(title: str, rows) -> Table:
    """(ratio, measured, target, met) rows."""
    t = Table(title=title)
    for col in ("ratio", "measured", "target", "met"):
        t.add_column(col)
    for name, measured, target, met in rows:
        t.add_row(name, measured, target, _MET.get(met, ""))
    return t


def stage_tables(res: BenchResult) -> list[Table]:
    """The stages or machine case: seconds per stage against the limit, then the targets."""
    t = Table(
        title=f"dfprep bench ({res.title}): {res.videos} videos, {res.seconds_of_video:.0f} s of "
        f"video, {res.frames_sampled} sampled frames, {res.cores} cores"
    )
    for col, justify in (
        ("stage", "left"),
        ("seconds", "right"),
        ("x real time", "right"),
        ("/ limit", "right"),
    ):
        t.add_column(col, justify=justify)
    for stage, sec in res.timings.items():
        t.add_row(
            stage, f"{sec:.2f}", f"{res.seconds_of_video / sec:.1f}", f"{sec / res.limit:.2f}"
        )
    t.add_row(
        "[bold]decode + detect limit = (decode + detect) / cores[/bold]",
        f"{res.limit:.2f}",
        f"{res.seconds_of_video / res.limit:.1f}",
        "1.00",
    )
    for what, sec in res.startup.items():
        t.add_row(f"[dim]start-up, not in the figures above: {what}[/dim]", f"{sec:.2f}", "", "")
    rows = [
        (name, f"{val:.2f}", res.targets.get(name, {}).get("target", ""),
         res.targets.get(name, {}).get("met"))
        for name, val in res.ratios.items()
    ]  # fmt: skip
    return [t, _targets(f"targets ({res.title})", rows)]


def pairing_tables(res: PairingBench) -> list[Table | Text]:
    """The pairing case: each run's crops and shares, the score separation, targets, notes."""
    t = Table(
        title=f"dfprep bench (pairing): {res.videos} videos, {res.fakes} fakes "
        f"({res.multi_person_fakes} with two people), {escape(res.root)}"
    )
    for col in ("run", "seconds", "fake crops", "manipulated share", "two-person fakes' share",
                "real crops", "faces dropped", "fallbacks"):  # fmt: skip
        t.add_column(col, justify="right")
    for run, sec in res.seconds.items():
        t.add_row(
            run,
            f"{sec:.1f}",
            str(res.fake_crops[run]),
            f"{res.share[run]:.2%}",
            f"{res.share_multi[run]:.2%}",
            str(res.real_crops[run]),
            str(res.faces_dropped[run]),
            str(sum(res.fallbacks[run].values())),
        )
    out: list[Table | Text] = [t]
    for run, sep in res.separation.items():
        out.append(Text(f"scores, {run}: " + ", ".join(f"{k} {v}" for k, v in sep.items())))
    rows = [
        (name, str(tgt["measured"]), tgt["target"], bool(tgt["met"]))
        for name, tgt in res.targets.items()
    ]
    out.append(_targets("targets (pairing)", rows))
    out += [Text(note) for note in res.notes]
    return out


def tables(result: BenchResult | list[BenchResult] | PairingBench) -> list[Table | Text]:
    """Every table of a case's result, in print order."""
    if isinstance(result, PairingBench):
        return pairing_tables(result)
    return [
        t for res in (result if isinstance(result, list) else [result]) for t in stage_tables(res)
    ]
