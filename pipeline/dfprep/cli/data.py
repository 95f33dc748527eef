"""dfprep synth, datasets and manifest: the sample data, the catalogue, dataset roots -> manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dfprep.cli._shared import (
    CatalogueOpt,
    ParamsOpt,
    app,
    key_values,
    params_from,
)
from dfprep.config import replace
from dfprep.core.cli import console, esc, handle_errors, log_handler, stdout
from dfprep.core.errors import DfprepError
from dfprep.core.progress import PROGRESS_HELP


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
    progress: Annotated[bool, typer.Option(help=PROGRESS_HELP)] = True,
) -> None:
    """Write the embedded sample dataset (real faces, FF++ layout, 4 manipulation methods), or with
    --layout all miniatures of every dataset of the paper in their published layouts."""
    from dfprep.core.progress import Reporter
    from dfprep.synth import synth_ffpp
    from dfprep.synth.suite import synth_suite

    cfg = replace(
        params_from(params).synth,
        seed=seed,
        originals=originals,
        multi_person=multi_person,
        seconds=seconds,
        layout=layout,
    )
    unit = "originals" if cfg.layout == "ffpp" else "videos"  # ffpp: an original with its fakes
    with Reporter("synth", unit, mode=progress) as bar:
        count = lambda done, total: bar.update(completed=done, total=total)  # noqa: E731
        info = (synth_ffpp if cfg.layout == "ffpp" else synth_suite)(root, cfg, count)
    per = info.get("per_dataset")
    detail = f": {', '.join(f'{k} {v}' for k, v in per.items())}" if per else ""
    console.print(
        f"wrote {info.get('videos', '?')} videos ({info.get('bytes', 0) / 1e6:.1f} MB, "
        f"{info.get('elapsed_s', 0):.0f} s) to {esc(root)}{esc(detail)}"
    )


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
        stdout.print(catalogue_table(cat))
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
    from dfprep.counts import check_counts, count_table, known_subset, manifest_counts

    subset = known_subset(table.column("path").to_pylist())
    for ds, counts in manifest_counts(table).items():
        result = check_counts(ds, counts, cat.get(ds), subset)
        t = count_table(result)
        t.title = f"{esc(where)}: {t.title}"
        stdout.print(t)


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

    from dfprep.adapters import AdapterOptions
    from dfprep.catalogue import load_catalogue
    from dfprep.core.outputs import output_file
    from dfprep.manifest import build_manifest, write_manifest

    output_file(out, "--out")  # before the work, not after
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[log_handler()],
    )
    cat = load_catalogue(catalogue)
    entry = cat.get(dataset)
    if entry is None and adapter is None:
        raise DfprepError(
            f"dataset {dataset!r} is not in {cat.path}; add an entry or pass --adapter folder"
        )
    overrides = key_values(option or [])
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
