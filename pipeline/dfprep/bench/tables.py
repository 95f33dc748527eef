"""What `dfprep bench` prints: each result as rich tables (figures, then targets) and notes."""

from __future__ import annotations

import json

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from dfprep.bench.cases import BenchResult
from dfprep.bench.detector import DetectorBench
from dfprep.bench.gpu import GpuBench
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


def detector_tables(res: DetectorBench) -> list[Table | Text]:
    """The detector case: frames/s per engine, precision and batch; agreement, batch invariance,
    the target."""
    t = Table(
        title=f"dfprep bench (detector) on {res.device}: {res.frame_size[0]}x{res.frame_size[1]} "
        f"frames (from {res.source_size[0]}x{res.source_size[1]})"
    )
    for col in ("engine", "precision", "batch", "detector frames/s", "network only frames/s"):
        t.add_column(col, justify="left" if col in ("engine", "precision") else "right")
    network = {(f.engine, f.precision, f.batch): f.fps for f in res.figures if f.what == "network"}
    for f in res.figures:
        if f.what == "detector":
            net = network.get((f.engine, f.precision, f.batch))
            t.add_row(f.engine, f.precision, str(f.batch), f"{f.fps:.1f}",
                      "" if net is None else f"{net:.1f}")  # fmt: skip
    out: list[Table | Text] = [t, Text(f"host: {json.dumps(res.host)}")]
    out.append(
        Text(
            f"scaling a {res.source_size[0]}x{res.source_size[1]} frame to the detection size "
            f"(INTER_AREA), one core: {res.prepare_fps_one_core:.1f} frames/s"
        )
    )
    for precision, same in res.batch_invariant.items():
        out.append(Text(f"faces independent of the batch ({precision}): {'yes' if same else 'NO'}"))
    for precision, diff in res.agreement.items():
        out.append(Text(f"agreement with onnxruntime-cpu ({precision}): {json.dumps(diff)}"))
    if res.target:
        rows = [
            ("detector alone, fp32 (best batch)", f"{res.target['fp32_best_fps']:.0f}",
             res.target["target"], res.target["fp32_met"]),
            (f"detector alone, {res.target['best']['precision']} (best)",
             f"{res.target['best']['fps']:.0f}", res.target["target"], res.target["best_met"]),
        ]  # fmt: skip
        out.append(_targets("target (detector)", rows))
    out += [Text(f"FAILED ({p}): {e}", style="red") for p, e in res.errors.items()]
    return out


def gpu_tables(res: GpuBench) -> list[Table | Text]:
    """The gpu case: sampled frames/s of decode only, CPU extract and GPU extract; targets; the
    paper-scale estimate."""
    t = Table(
        title=f"dfprep bench (gpu): {res.clips} clips, {res.seconds_of_video:.0f} s of video, "
        f"{res.frames_sampled} sampled frames, {res.cores} cores, detector on {res.device}"
    )
    for col in ("run", "seconds", "frames/s", "start-up s (not timed)"):
        t.add_column(col, justify="left" if col == "run" else "right")
    for run, sec in res.seconds.items():
        startup = res.startup.get(run)
        t.add_row(
            run, f"{sec:.2f}", f"{res.fps[run]:.1f}", "" if startup is None else f"{startup:.1f}"
        )
    rows = [(n, str(v["measured"]), v["target"], v["met"]) for n, v in res.targets.items()]
    out: list[Table | Text] = [t, _targets("targets (gpu)", rows)]
    if res.detector:
        out.append(Text(f"detector processes during the GPU extract: {json.dumps(res.detector)}"))
    e = res.estimate
    if e:
        out.append(
            Text(
                f"paper-scale estimate (an ESTIMATE, not a measurement): {e['sampled_frames']:,} "
                f"sampled frames at {e['frames_per_s']:.1f} frames/s = {e['hours']:.2f} h on one "
                f"such host (goal {e['goal']}: {'met' if e['met'] else 'NOT met'})"
            )
        )
    out += [Text(note) for note in res.notes]
    return out


def tables(result) -> list[Table | Text]:
    """Every table of a case's result, in print order."""
    if isinstance(result, PairingBench):
        return pairing_tables(result)
    if isinstance(result, DetectorBench):
        return detector_tables(result)
    if isinstance(result, GpuBench):
        return gpu_tables(result)
    return [
        t for res in (result if isinstance(result, list) else [result]) for t in stage_tables(res)
    ]
