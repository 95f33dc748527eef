"""dfprep extract: manifests -> face-crop shards, with progress and the run summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dfprep.cli._shared import (
    ParamsOpt,
    SchedulerOpt,
    WorkersOpt,
    app,
    params_from,
)
from dfprep.config import replace
from dfprep.core.atomic import write_text
from dfprep.core.cli import console, esc, handle_errors, stdout
from dfprep.core.errors import EXIT_INTERRUPTED, EXIT_TERMINATED
from dfprep.core.progress import PROGRESS_HELP


@app.command()
@handle_errors
def extract(
    manifests: Annotated[list[Path], typer.Argument(help="Manifest Parquet file(s).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder (shards/ + extract.json).")
    ],
    params: ParamsOpt = None,
    fps: Annotated[float | None, typer.Option(help="Frames sampled per second.")] = None,
    detector: Annotated[
        str | None, typer.Option(help="retinaface-mnet | retinaface-mnet-torch | insightface.")
    ] = None,
    model_path: Annotated[
        str | None, typer.Option(help="insightface: local .onnx or model-pack folder.")
    ] = None,
    videos_per_shard: Annotated[int | None, typer.Option(help="Videos per shard job.")] = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    retries: Annotated[
        int | None, typer.Option(help="Re-runs of a shard job whose worker died.")
    ] = None,
    video_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds per video before it is recorded as failed (0 = none)."),
    ] = None,
    detect_device: Annotated[
        str | None,
        typer.Option(
            help="cpu | auto | cuda: where faces are detected (cuda: one detector process per GPU; docs/gpu.md)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Redo shards that are already complete.")] = False,
    strict: Annotated[
        bool, typer.Option(help="Exit non-zero if any video failed (failed shard jobs always do).")
    ] = False,
    progress: Annotated[bool, typer.Option(help=PROGRESS_HELP)] = True,
    metrics: Annotated[
        Path | None, typer.Option(help="Also write the run summary JSON here (for DVC metrics).")
    ] = None,
) -> None:
    """Decode at 1 FPS, detect faces, crop (+30%, 224x224) and write WebDataset shards, on Dask."""
    from dfprep.core.outputs import output_file
    from dfprep.extract import run_extract
    from dfprep.problems import PROBLEMS_FILE
    from dfprep.progress import ExtractProgress, summary_table

    if metrics:
        output_file(metrics, "--metrics")
    p = params_from(params)
    p = replace(
        p,
        decode=replace(p.decode, fps=fps),
        detect=replace(p.detect, backend=detector, model_path=model_path),
        shard=replace(p.shard, videos_per_shard=videos_per_shard),
        run=replace(
            p.run,
            workers=workers,
            scheduler=scheduler,
            retries=retries,
            video_timeout=video_timeout,
            detect_device=detect_device,
        ),
    )
    with ExtractProgress(console, enabled=progress) as bar:
        summary = run_extract(
            manifests, out, p, overwrite=overwrite, on_event=bar.on_event, on_plan=bar.on_plan
        )
    if summary.migrated:
        console.print(
            f"moved {summary.migrated} shard table(s) from shards/ to meta/ (the tars alone in "
            "shards/, as WebDataset clients read them)", highlight=False,
        )  # fmt: skip
    stdout.print(summary_table(summary))
    if metrics:
        import json

        metrics.parent.mkdir(parents=True, exist_ok=True)
        write_text(metrics, json.dumps(summary.as_dict(), indent=1, sort_keys=True))
    for name, err in summary.failed_jobs:
        console.print(f"[red]shard job {esc(name)} failed:[/red] {esc(err)}")
    if summary.errors:
        top = "; ".join(f"{n}x {msg}" for msg, n in list(summary.errors.items())[:5])
        console.print(f"most common problems: {esc(top)}", highlight=False)
    if summary.problems:
        counts = ", ".join(f"{n:,} {kind}" for kind, n in summary.problems.items())
        console.print(
            f"videos to check: {esc(counts)} (all of them, with their reasons: "
            f"{esc(Path(summary.out) / PROBLEMS_FILE)})",
            highlight=False,
        )
        for r in summary.problem_videos:
            console.print(
                f"  {esc(r['problem'])}: {esc(r['video_id'])}: {esc(r['reason'])}", highlight=False
            )
    if summary.paired or summary.pairing_fallbacks:
        fb = sum(summary.pairing_fallbacks.values())
        line = f"paired fakes: {summary.paired:,} ({summary.faces_dropped:,} faces dropped as unmanipulated)"
        if fb:
            top = "; ".join(f"{n}x {m}" for m, n in list(summary.pairing_fallbacks.items())[:3])
            line += f"; {fb:,} fell back to the largest faces: {top}"
        console.print(esc(line), highlight=False)
    if summary.interrupted:
        what = "terminated (SIGTERM)" if summary.signal == "SIGTERM" else "interrupted"
        console.print(
            f"[yellow]{what}:[/yellow] finished shards are kept; rerun the same command to resume"
        )
        raise typer.Exit(EXIT_TERMINATED if summary.signal == "SIGTERM" else EXIT_INTERRUPTED)
    if summary.failed_jobs:
        console.print(
            f"[red]error:[/red] {len(summary.failed_jobs)} shard job(s) failed; their videos are "
            "not accounted for: rerun the same command"
        )
        raise typer.Exit(1)
    if summary.ok == 0:
        console.print("[red]error:[/red] no video produced a face crop")
        raise typer.Exit(1)
    if strict and (summary.failed or summary.failed_jobs):
        raise typer.Exit(1)
