"""dfprep command line: a thin typer layer over the library (every command maps to one function)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dfprep.config import Params, load_params, replace
from dfprep.core.atomic import write_text
from dfprep.core.cli import console, esc, handle_errors
from dfprep.core.errors import DfprepError

app = typer.Typer(
    help="Deepfake-dataset preprocessing: manifests, 1-FPS face crops, WebDataset shards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ParamsOpt = Annotated[
    Path | None,
    typer.Option("--params", help="params.yaml to read defaults from (CLI options override it)."),
]
# the Dask options of extract and balance (run.workers, run.scheduler)
WorkersOpt = Annotated[
    int | None, typer.Option(help="LocalCluster worker processes (0 = one per core).")
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        envvar="DASK_SCHEDULER_ADDRESS",
        help="tcp://HOST:PORT of an existing Dask cluster, or 'inline' (no Dask, for debugging).",
    ),
]


def _params(path: Path | None) -> Params:
    return load_params(path)


@app.command()
@handle_errors
def synth(
    root: Annotated[Path, typer.Argument(help="Folder to write the sample dataset into.")],
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same bytes).")] = None,
    originals: Annotated[int | None, typer.Option(help="Number of real videos (even).")] = None,
    multi_person: Annotated[
        int | None, typer.Option(help="Two-person real videos (even), after the others.")
    ] = None,
    seconds: Annotated[float | None, typer.Option(help="Nominal video length in seconds.")] = None,
    layout: Annotated[
        str | None,
        typer.Option(
            help="ffpp (the FF++ sample) | all (miniatures of the nine datasets, one folder each)."
        ),
    ] = None,
    params: ParamsOpt = None,
) -> None:
    """Write the embedded sample dataset (real faces, FF++ layout, 4 manipulation methods), or with
    --layout all miniatures of every dataset of the paper in their published layouts."""
    from dfprep.synth import synth_ffpp
    from dfprep.synth.suite import synth_suite

    cfg = replace(
        _params(params).synth,
        seed=seed,
        originals=originals,
        multi_person=multi_person,
        seconds=seconds,
        layout=layout,
    )
    info = synth_ffpp(root, cfg) if cfg.layout == "ffpp" else synth_suite(root, cfg)
    per = info.get("per_dataset")
    detail = f": {', '.join(f'{k} {v}' for k, v in per.items())}" if per else ""
    console.print(
        f"wrote {info.get('videos', '?')} videos ({info.get('bytes', 0) / 1e6:.1f} MB, "
        f"{info.get('elapsed_s', 0):.0f} s) to {esc(root)}{esc(detail)}"
    )


CatalogueOpt = Annotated[
    Path | None,
    typer.Option("--catalogue", help="Dataset catalogue YAML (default: manifests/catalogue.yaml)."),
]


@app.command()
@handle_errors
def datasets(
    manifests: Annotated[
        list[Path] | None, typer.Argument(help="With --check: manifest Parquet file(s) to compare.")
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Compare the manifests' videos per split and class with the catalogue's expected counts.",
        ),
    ] = False,
    catalogue: CatalogueOpt = None,
) -> None:
    """Show the dataset catalogue; with --check MANIFEST..., the count check of each manifest."""
    from dfprep.catalogue import catalogue_table, load_catalogue

    cat = load_catalogue(catalogue)
    if not check:
        if manifests:
            raise DfprepError(
                "manifests given without --check (dfprep datasets --check MANIFEST...)"
            )
        Console().print(catalogue_table(cat))
        return
    if not manifests:
        raise DfprepError(
            "--check needs one or more manifest files (dfprep datasets --check MANIFEST...)"
        )
    from dfprep.manifest import read_manifest

    tables = [read_manifest(m) for m in manifests]  # every file is checked before anything prints
    for m, table in zip(manifests, tables, strict=True):
        _print_counts(table, cat, str(m))


def _print_counts(table, cat, where: str) -> None:
    from dfprep.counts import check_counts, count_table, manifest_counts

    for ds, counts in manifest_counts(table).items():
        result = check_counts(ds, counts, cat.get(ds))
        t = count_table(result)
        t.title = f"{where}: {t.title}"
        Console().print(t)


@app.command()
@handle_errors
def manifest(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            "-d",
            help="Dataset name (see `dfprep datasets`); any name with --adapter folder.",
        ),
    ],
    root: Annotated[Path, typer.Option("--root", "-r", help="The dataset as downloaded.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Manifest Parquet file to write.")],
    adapter: Annotated[
        str | None, typer.Option(help="Adapter to use (default: the catalogue entry's).")
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option(help="folder adapter: CSV with path,label[,split,method,category,original]."),
    ] = None,
    skip_missing: Annotated[
        bool, typer.Option(help="Listed files that are absent: warn and count instead of failing.")
    ] = False,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option", help="Adapter option KEY=VALUE, overriding the catalogue's (repeatable)."
        ),
    ] = None,
    faces: Annotated[
        str | None,
        typer.Option(
            help="detect | shipped: the images are face crops as published (default: the catalogue entry's)."
        ),
    ] = None,
    catalogue: CatalogueOpt = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the adapter's informational messages.")
    ] = False,
) -> None:
    """Turn a dataset root into a video manifest (Parquet, one row per video)."""
    import logging

    from rich.logging import RichHandler

    from dfprep.adapters import AdapterOptions
    from dfprep.catalogue import load_catalogue
    from dfprep.core.outputs import output_file
    from dfprep.manifest import build_manifest, write_manifest

    output_file(out, "--out")  # before the work, not after
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_time=False, show_path=False)],
    )
    cat = load_catalogue(catalogue)
    entry = cat.get(dataset)
    if entry is None and adapter is None:
        raise DfprepError(
            f"dataset {dataset!r} is not in {cat.path}; add an entry or pass --adapter folder"
        )
    overrides = _kv(option or [])
    options = cat.options_for(dataset, overrides) if entry is not None else overrides
    opts = AdapterOptions(skip_missing=skip_missing, csv=csv, options=options)
    faces = faces or (entry.faces if entry is not None else "detect")
    table = build_manifest(dataset, root, adapter=adapter or entry.adapter, opts=opts, faces=faces)
    write_manifest(table, out)
    if opts.missing:
        console.print(
            f"[yellow]warning:[/yellow] {len(opts.missing)} listed file(s) missing and skipped, e.g. {esc(opts.missing[0])}"
        )
    counts = table.group_by(["split", "label"]).aggregate([("video_id", "count")]).to_pylist()
    parts = ", ".join(
        f"{c['split']}/{'fake' if c['label'] else 'real'}={c['video_id_count']}"
        for c in sorted(counts, key=lambda c: (c["split"], c["label"]))
    )
    console.print(f"wrote {table.num_rows} videos to {esc(out)} ({parts})")
    _print_counts(table, cat, str(out))


def _kv(items: list[str]) -> dict:
    out = {}
    for it in items:
        if "=" not in it:
            raise DfprepError(f"--option expects KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


@app.command()
@handle_errors
def extract(
    manifests: Annotated[list[Path], typer.Argument(help="Manifest Parquet file(s).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder (shards/ + extract.json).")
    ],
    params: ParamsOpt = None,
    fps: Annotated[float | None, typer.Option(help="Frames sampled per second.")] = None,
    detector: Annotated[str | None, typer.Option(help="retinaface-mnet | insightface.")] = None,
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
    overwrite: Annotated[bool, typer.Option(help="Redo shards that are already complete.")] = False,
    strict: Annotated[
        bool, typer.Option(help="Exit non-zero if any video failed (failed shard jobs always do).")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
    metrics: Annotated[
        Path | None, typer.Option(help="Also write the run summary JSON here (for DVC metrics).")
    ] = None,
) -> None:
    """Decode at 1 FPS, detect faces, crop (+30%, 224x224) and write WebDataset shards, on Dask."""
    from dfprep.core.outputs import output_file
    from dfprep.extract import run_extract
    from dfprep.progress import ExtractProgress, summary_table

    if metrics:
        output_file(metrics, "--metrics")
    p = _params(params)
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
        ),
    )
    with ExtractProgress(console, enabled=progress) as bar:
        summary = run_extract(
            manifests, out, p, overwrite=overwrite, on_event=bar.on_event, on_plan=bar.on_plan
        )
    Console().print(summary_table(summary))
    if metrics:
        import json

        metrics.parent.mkdir(parents=True, exist_ok=True)
        write_text(metrics, json.dumps(summary.as_dict(), indent=1, sort_keys=True))
    for name, err in summary.failed_jobs:
        console.print(f"[red]shard job {esc(name)} failed:[/red] {esc(err)}")
    if summary.errors:
        top = "; ".join(f"{n}x {msg}" for msg, n in list(summary.errors.items())[:5])
        console.print(f"most common problems: {esc(top)}", highlight=False)
    if summary.paired or summary.pairing_fallbacks:
        fb = sum(summary.pairing_fallbacks.values())
        line = f"paired fakes: {summary.paired:,} ({summary.faces_dropped:,} faces dropped as unmanipulated)"
        if fb:
            top = "; ".join(f"{n}x {m}" for m, n in list(summary.pairing_fallbacks.items())[:3])
            line += f"; {fb:,} fell back to the largest faces: {top}"
        console.print(esc(line), highlight=False)
    if summary.interrupted:
        console.print(
            "[yellow]interrupted:[/yellow] finished shards are kept; rerun the same command to resume"
        )
        raise typer.Exit(130)
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


@app.command()
@handle_errors
def bench(
    videos: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Videos to time (default: generated 1080p30 H.264 face videos); pairing: the sample's root."
        ),
    ] = None,
    case: Annotated[
        str | None,
        typer.Option(
            help="stages: where one process's time goes, 1 vs 2 workers; machine: the default options on the whole machine, one shard job, vs a naive process pool; pairing: the largest face vs the manipulated face on the sample."
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
        workers=comma_list(workers), naive=naive,
    )  # fmt: skip
    if json_out:
        output_file(json_out, "--json")
    result = run_case(videos, _params(params), cfg, work_dir)
    out = Console()
    for t in tables(result):
        out.print(t)
    if json_out:
        write_text(json_out, to_json(result))


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
) -> None:
    """Balanced (1:1) training set: every video kept, crops spread over time, shuffled shards."""
    import json

    from dfprep.balance.stage import run_balance
    from dfprep.core.outputs import output_dir, output_file
    from dfprep.distribute import make_client

    output_dir(out)
    if metrics:
        output_file(metrics, "--metrics")
    p = _params(params)
    caps = {}
    if cap_dataset:
        caps["dataset_caps"] = {k: _int(v, "--cap-dataset") for k, v in _kv(cap_dataset).items()}
    if cap_method:
        caps["method_caps"] = {k: _int(v, "--cap-method") for k, v in _kv(cap_method).items()}
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

    def go(client):
        return run_balance(extract_dirs, out, cfg, client=client, retries=run.retries)

    try:
        if run.scheduler == "inline":
            result = go(None)
        else:
            with make_client(run) as client:
                result = go(client)
    except KeyboardInterrupt as e:
        msg = str(e) if str(e) else "nothing was published; rerun the same command"
        console.print(f"[yellow]interrupted:[/yellow] {esc(msg)}", highlight=False)
        raise typer.Exit(130) from None
    sizes = {split: sum(v.values()) for split, v in result.sizes.items()}
    console.print(
        f"wrote {', '.join(f'{n} {s}' for s, n in sizes.items())} samples to {esc(out)} "
        f"({result.source_shards} source shards read once, {result.bytes_written / 1e6:.1f} MB, {result.seconds:.1f} s)"
    )
    md = Path(out) / "stats.md"
    if md.exists():
        Console().print(md.read_text())
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


def _int(v: str, opt: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise DfprepError(f"{opt} expects NAME=N with an integer N, got {v!r}") from None


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
) -> None:
    """Contact sheets per dataset x label, the balance chart and the failure counts, to look at."""
    from dfprep.balance.report import run_report

    cfg = replace(_params(params).report, seed=seed, rows=rows, cols=cols, max_shards=max_shards)
    result = run_report(dirs, out, cfg)
    console.print(
        f"wrote {len(result.sheets)} contact sheet(s)"
        + (", the balance chart" if result.chart else "")
        + (f" and {result.markdown}" if result.markdown else "")
        + f" to {esc(out)}"
    )


@app.command()
@handle_errors
def verify(
    directory: Annotated[Path, typer.Argument(help="An extract or a balance output folder.")],
    manifest: Annotated[
        list[Path] | None,
        typer.Option(
            "--manifest",
            "-m",
            help="Manifest(s) the extract ran on: every video must be accounted for (repeatable).",
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the whole report here as JSON.")
    ] = None,
    show: Annotated[
        int, typer.Option(min=0, help="Discrepancies to print (0 = none, only the count).")
    ] = 20,
) -> None:
    """Check an output on disk: counts add up, index and tars agree, every JSON parses (exit 1 if not)."""
    import json

    from dfprep.verify import verify_output

    if json_out:
        from dfprep.core.outputs import output_file

        output_file(json_out, "--json")
    r = verify_output(directory, manifest)
    for note in r.notes:
        console.print(f"[yellow]note:[/yellow] {esc(note)}", highlight=False, soft_wrap=True)
    for p in r.problems[:show]:
        console.print(f"[red]problem:[/red] {esc(p)}", highlight=False, soft_wrap=True)
    n = len(r.problems) + r.omitted
    if n > show:
        console.print(
            f"... and {n - show} more"
            + (f" (see {esc(json_out)})" if json_out else " (--json for all)")
        )
    if json_out:
        write_text(json_out, json.dumps(r.as_dict(), indent=1))
    counts = ", ".join(f"{k} {v:,}" for k, v in r.counts.items())
    if not r.ok:
        console.print(
            f"[red]{n} problem(s)[/red] in the {r.kind} output {esc(directory)} ({counts})"
        )
        raise typer.Exit(1)
    console.print(f"[green]ok:[/green] {r.kind} output {esc(directory)} ({counts})")


if __name__ == "__main__":
    app()
