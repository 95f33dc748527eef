"""dfprep command line: a thin typer layer over the library (every command maps to one function).

One module per group of commands; importing them registers the commands on `app`, in the order
`dfprep --help` lists them (the data flow: synth, datasets, manifest, extract, bench, balance,
report, verify)."""

# isort: off
from dfprep.cli._shared import app
from dfprep.cli import data, extract, bench, balance, verify  # noqa: F401  (registers the commands)
# isort: on

__all__ = ["app"]
