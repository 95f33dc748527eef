"""`python -m dftrain ...` = the `dftrain` command (where the package is on PYTHONPATH, not installed)."""

from dftrain.cli import app

app(prog_name="dftrain")
