"""What every dfprep command shares: the typer app and the options several commands take."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dfprep import __version__
from dfprep.config import Params, load_params
from dfprep.core.cli import add_version
from dfprep.core.errors import DfprepError

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
add_version(
    app,
    "dfprep",
    __version__,
    "Deepfake-dataset preprocessing: manifests, 1-FPS face crops, WebDataset shards.",
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


CatalogueOpt = Annotated[
    Path | None,
    typer.Option(
        "--catalogue",
        help="Dataset catalogue YAML (default: the one shipped with dfprep, manifests/catalogue.yaml in a clone).",
    ),
]


def params_from(path: Path | None) -> Params:
    return load_params(path)


def key_values(items: list[str]) -> dict:
    out = {}
    for it in items:
        if "=" not in it:
            raise DfprepError(f"--option expects KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def named_int(v: str, opt: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise DfprepError(f"{opt} expects NAME=N with an integer N, got {v!r}") from None
