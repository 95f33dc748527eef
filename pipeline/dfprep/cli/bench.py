"""dfprep bench: extraction timings (the library is dfprep.bench)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dfprep.cli._shared import (
    ParamsOpt,
    app,
    params_from,
)
from dfprep.core.atomic import write_text
from dfprep.core.cli import handle_errors, stdout


def wxh(text: str | None) -> tuple | None:
    """--size WxH as a (w, h) for `bench.size` (its rule refuses what is not two even numbers)."""
    if text is None:
        return None
    parts = text.lower().split("x")
    return tuple(int(p) if p.strip().isdigit() else p for p in parts)


@app.command()
@handle_errors
def bench(
    videos: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Videos or folders of videos to time (default: generated 1080p30 H.264 face videos); pairing: the sample's root."
        ),
    ] = None,
    case: Annotated[
        str | None,
        typer.Option(
            help="stages: where one process's time goes, 1 vs 2 workers; machine: the default options on the whole machine, one shard job, vs a naive process pool; pairing: the largest face vs the manipulated face on the sample; detector: the detector alone at --batches, torch on --device and ONNX Runtime; gpu: decode only, CPU extract and extract's GPU mode on the whole machine, with the targets and the paper-scale estimate."
        ),
    ] = None,
    n: Annotated[
        int | None, typer.Option(help="Generated videos (default: 4 for stages, 12 for machine).")
    ] = None,
    seconds: Annotated[
        float | None, typer.Option(help="Length of each generated video (default: 20).")
    ] = None,
    gop: Annotated[
        int | None,
        typer.Option(help="Keyframe interval of generated videos (default 0: x264's 250)."),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="x264 preset(s) of generated videos, comma-separated (default: superfast for stages, superfast,ultrafast for machine; ultrafast has no B-frames)."
        ),
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option(help="stages: Dask worker counts to time, comma-separated (default: 1,2)."),
    ] = None,
    naive: Annotated[
        bool | None, typer.Option(help="Also time the naive OpenCV baseline (default: yes).")
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(help="WxH of generated videos (default: 1920x1080)."),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="detector, gpu: auto | cpu | cuda, where torch detects (gpu, cpu: the GPU mode's detector process on the CPU)."
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="detector: fp32,tf32,fp16 (default: all three on CUDA, fp32 on the CPU)."
        ),
    ] = None,
    batches: Annotated[
        str | None, typer.Option(help="detector: frames per call timed (default: 1,32,128).")
    ] = None,
    onnx: Annotated[
        bool | None,
        typer.Option(
            help="detector: also ONNX Runtime on the CPU, and the agreement (default: yes)."
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(help="detector: CPU threads per engine (default 0: every core)."),
    ] = None,
    measure: Annotated[
        float | None,
        typer.Option(help="detector: the least seconds each figure is measured over (default: 3)."),
    ] = None,
    repeat: Annotated[
        int | None,
        typer.Option(help="gpu: times each video is timed (hard links; default 1)."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the figures as JSON here.")
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="Scratch folder (videos are reused if present).")
    ] = None,
    params: ParamsOpt = None,
) -> None:
    """Time decode, detection and extract against the decode + detect limit and a naive baseline."""
    from dfprep.bench import BenchConfig, run_case, to_json
    from dfprep.bench.tables import tables
    from dfprep.core.cli import comma_list
    from dfprep.core.outputs import output_file

    cfg = BenchConfig.for_case(
        case, n=n, seconds=seconds, gop=gop, preset=comma_list(preset),
        workers=comma_list(workers), naive=naive, size=wxh(size), device=device,
        precision=comma_list(precision), batches=comma_list(batches), onnx=onnx,
        threads=threads, measure=measure, repeat=repeat,
    )  # fmt: skip
    if json_out:
        output_file(json_out, "--json")
    result = run_case(
        videos,
        params_from(params),
        cfg,
        work_dir,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        json_out=json_out,
    )
    out = stdout
    for t in tables(result):
        out.print(t)
    if json_out:
        write_text(json_out, to_json(result))
