"""dfprep verify: check an extract or balance output on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dfprep.cli._shared import (
    app,
)
from dfprep.core.atomic import write_text
from dfprep.core.cli import console, esc, handle_errors


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
