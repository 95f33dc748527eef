"""dfprep balance and report: the balanced training set and the contact sheets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dfprep.cli._shared import (
    ParamsOpt,
    SchedulerOpt,
    WorkersOpt,
    app,
    key_values,
    named_int,
    params_from,
)
from dfprep.config import replace
from dfprep.core.atomic import write_text
from dfprep.core.cli import console, esc, handle_errors, stdout
from dfprep.core.progress import PROGRESS_HELP
from dfprep.core.signals import exit_code


@app.command()
@handle_errors
def balance(
    extract_dirs: Annotated[
        list[Path], typer.Argument(help="Output folder(s) of `dfprep extract`.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder: train/, val/, sizes.json, stats.*")
    ],
    params: ParamsOpt = None,
    total: Annotated[
        int | None,
        typer.Option(help="Train crops, both classes (0 = as many as the ratio allows)."),
    ] = None,
    val_total: Annotated[
        int | None, typer.Option(help="Val crops, both classes (0 = as many as the ratio allows).")
    ] = None,
    ratio: Annotated[float | None, typer.Option(help="real : fake crops (1.0 = 1:1).")] = None,
    scope: Annotated[
        str | None, typer.Option(help="dataset: the ratio inside each dataset (Table 1) | global.")
    ] = None,
    keep: Annotated[
        str | None, typer.Option(help="scope dataset: the class kept whole, real | minority.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Selection and shuffle seed.")] = None,
    samples_per_shard: Annotated[int | None, typer.Option(help="Samples per output shard.")] = None,
    min_shards: Annotated[
        int | None, typer.Option(help="At least this many shards per split.")
    ] = None,
    cap_dataset: Annotated[
        list[str] | None,
        typer.Option("--cap-dataset", help="NAME=N: at most N crops of a dataset (repeatable)."),
    ] = None,
    cap_method: Annotated[
        list[str] | None,
        typer.Option("--cap-method", help="NAME=N: at most N crops of a method (repeatable)."),
    ] = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    metrics: Annotated[
        Path | None, typer.Option(help="Also write stats.json here (for DVC metrics).")
    ] = None,
    progress: Annotated[bool, typer.Option(help=PROGRESS_HELP)] = True,
) -> None:
    """Balanced (1:1) training set: every video kept, crops spread over time, shuffled shards."""
    from dfprep.balance.stage import run_balance
    from dfprep.core.outputs import output_dir, output_file
    from dfprep.core.progress import Phases
    from dfprep.distribute import make_client

    output_dir(out)
    if metrics:
        output_file(metrics, "--metrics")
    p = params_from(params)
    caps = {}
    if cap_dataset:
        caps["dataset_caps"] = {
            k: named_int(v, "--cap-dataset") for k, v in key_values(cap_dataset).items()
        }
    if cap_method:
        caps["method_caps"] = {
            k: named_int(v, "--cap-method") for k, v in key_values(cap_method).items()
        }
    cfg = replace(
        p.balance,
        total=total,
        val_total=val_total,
        ratio=ratio,
        scope=scope,
        keep=keep,
        seed=seed,
        samples_per_shard=samples_per_shard,
        min_shards=min_shards,
        **caps,
    )
    run = replace(p.run, workers=workers, scheduler=scheduler)

    show = Phases("balance", {"read": "source shards", "write": "shards"}, progress)

    def go(client):
        return run_balance(
            extract_dirs, out, cfg, client=client, progress=show, retries=run.retries
        )

    try:
        if run.scheduler == "inline":
            result = go(None)
        else:
            with make_client(run) as client:
                result = go(client)
    except KeyboardInterrupt as e:
        msg = str(e) if str(e) else "interrupted: nothing was published; rerun the same command"
        console.print(f"[yellow]{esc(msg)}[/yellow]", highlight=False)
        raise typer.Exit(exit_code(e)) from None
    finally:
        show.close()
    sizes = {split: sum(v.values()) for split, v in result.sizes.items()}
    console.print(
        f"wrote {', '.join(f'{n} {s}' for s, n in sizes.items())} samples to {esc(out)} "
        f"({result.source_shards} source shards read once, {result.bytes_written / 1e6:.1f} MB, {result.seconds:.1f} s)"
    )
    md = Path(out) / "stats.md"
    if md.exists():
        stdout.print(md.read_text(), markup=False)  # the data's names, printed as they are
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {esc(note)}", highlight=False)
    if metrics:  # the plan per split only: the full statistics stay in DIR/stats.json
        metrics.parent.mkdir(parents=True, exist_ok=True)
        plans = {
            split: v.get("plan", {})
            for split, v in result.stats.get("splits", {}).items()
            if v.get("plan")
        }
        write_text(metrics, json.dumps(plans, indent=1, sort_keys=True))


@app.command()
@handle_errors
def report(
    dirs: Annotated[
        list[Path], typer.Argument(help="A balance output, or extract output folder(s).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the PNGs and report.md.")],
    params: ParamsOpt = None,
    seed: Annotated[int | None, typer.Option(help="Which crops are shown.")] = None,
    rows: Annotated[int | None, typer.Option(help="Contact sheet rows.")] = None,
    cols: Annotated[int | None, typer.Option(help="Contact sheet columns.")] = None,
    max_shards: Annotated[
        int | None, typer.Option(help="Shards opened per dataset x label.")
    ] = None,
    per_video: Annotated[
        int | None, typer.Option(help="Crops of one video on a sheet at most.")
    ] = None,
) -> None:
    """Contact sheets per dataset x label, the balance chart, the failure counts and the videos to
    check (named with their reasons), to look at."""
    from dfprep.balance.report import run_report

    options = dict(seed=seed, rows=rows, cols=cols, max_shards=max_shards, per_video=per_video)
    result = run_report(dirs, out, replace(params_from(params).report, **options))
    console.print(
        f"wrote {len(result.sheets)} contact sheet(s)"
        + (", the balance chart" if result.chart else "")
        + (f", {result.problems.name}" if result.problems else "")
        + (f" and {result.markdown}" if result.markdown else "")
        + f" to {esc(out)}"
    )
