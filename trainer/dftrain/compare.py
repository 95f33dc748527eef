"""`dftrain compare DIR...`: several `dftrain eval` outputs side by side in one Table 3.

What it reads is checked first, as `dftrain eval` writes it: every container a table walks is an
object, every rate (AUC, bACC, EER) a number in [0, 1] or null, every count a whole number >= 0.
Anything else is one line naming the file and the key, never a traceback or a cell of 500.0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dfprep.core.errors import InputError
from dfprep.core.files import NotRegular, read_regular_text
from dftrain.results_table import Run, render


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_regular_text(path))
    except NotRegular:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: not found (is {path.parent} a `dftrain eval` output?)") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data


RATES = frozenset({"auc", "bacc", "eer"})
# keys under which metrics.json holds objects (by position: "*" is any dataset, method, scenario)
OBJECTS = (
    ("datasets",), ("datasets", "*"), ("datasets", "*", "summary"), ("datasets", "*", "video"),
    ("datasets", "*", "frame"), ("datasets", "*", "videos"), ("datasets", "*", "categories"),
    ("datasets", "*", "categories", "*"), ("datasets", "*", "methods"),
    ("datasets", "*", "methods", "*"), ("scenarios",), ("scenarios", "*"), ("all",), ("all", "*"),
    ("no_face",),
    *(("no_face", p, *rest) for p in ("drop", "score") for rest in (
        (), ("datasets",), ("datasets", "*"), ("scenarios",), ("scenarios", "*"), ("all",))),
)  # fmt: skip


def _matches(path: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    return len(path) == len(pattern) and all(
        p in ("*", k) for k, p in zip(path, pattern, strict=True)
    )


def _check_value(path: tuple[str, ...], v: Any, where: Path) -> None:
    key = ".".join(path)
    if any(_matches(path, p) for p in OBJECTS):
        if not isinstance(v, Mapping):
            raise InputError(f"{where}: {key}: expected an object, got {json.dumps(v)[:40]}")
        for k, x in v.items():
            _check_value((*path, str(k)), x, where)
        return
    if path[-1] in RATES:
        ok = v is None or (
            isinstance(v, (int, float)) and not isinstance(v, bool)
            and (math.isnan(v) or 0.0 <= v <= 1.0)
        )  # fmt: skip
        if not ok:
            raise InputError(
                f"{where}: {key}: {json.dumps(v)[:40]} is not a rate in [0, 1] (or null)"
            )
    elif isinstance(v, bool) or (isinstance(v, (int, float)) and (v < 0 or v != int(v))):
        raise InputError(
            f"{where}: {key}: {json.dumps(v)[:40]} is not a count (a whole number >= 0)"
        )
    elif isinstance(v, (list, Mapping)):
        raise InputError(f"{where}: {key}: expected a value, got {json.dumps(v)[:40]}")


def check_metrics(metrics: dict[str, Any], where: Path) -> None:
    """A metrics.json as `dftrain eval` writes it (see the module's docstring)."""
    if not isinstance(metrics.get("datasets"), dict):
        raise InputError(f"{where}: no `datasets` section (not written by `dftrain eval`?)")
    for k, v in metrics.items():
        if k == "no_face" and isinstance(v, Mapping):
            v = {p: x for p, x in v.items() if p != "policy"}  # a word, not a figure
        _check_value((str(k),), v, where)


INFO_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "dataset_order": (list,), "roles": (dict,), "threshold": (int, float),
    "no_face": (str,), "no_face_score": (int, float), "init": (str, type(None)),
    "model": (str, type(None)),
}  # fmt: skip


def check_info(info: dict[str, Any], where: Path) -> None:
    """The keys of an info.json that the tables read have the types `dftrain eval` writes."""
    for key, types in INFO_TYPES.items():
        v = info.get(key)
        if key in info and (isinstance(v, bool) or not isinstance(v, types)):
            raise InputError(f"{where}: {key}: {json.dumps(v)[:40]} is not {types[0].__name__}")
    if not all(isinstance(d, str) for d in info.get("dataset_order", [])):
        raise InputError(f"{where}: dataset_order: expected a list of dataset names")
    if not all(isinstance(r, str) for r in info.get("roles", {}).values()):
        raise InputError(f"{where}: roles: expected dataset -> role names")
    t = info.get("threshold", 0.5)
    if not 0.0 <= t <= 1.0:
        raise InputError(f"{where}: threshold: {t} is not in [0, 1]")


def load_run(directory: str | Path, name: str | None = None) -> Run:
    d = Path(directory)
    metrics, info = _load(d / "metrics.json"), _load(d / "info.json")
    check_metrics(metrics, d / "metrics.json")
    check_info(info, d / "info.json")
    return Run(name or str(info.get("name") or d.name), metrics, info)


def compare(
    dirs: list[str | Path],
    names: list[str] | None = None,
    metrics: tuple[str, ...] = ("auc", "bacc"),
    paper: bool = False,
    figure: str | Path | None = None,
) -> str:
    """The Markdown of one table per metric with a row per run (names default to the runs' own).

    paper: the paper's Table 3 layout, rows matched by name, each cell `ours (paper)`, with notes on
    missing datasets, stand-in weights and SBI (`dftrain.paper_table`); figure: per-scenario bars."""
    if not dirs:
        raise InputError("no eval directory given")
    if names and len(names) != len(dirs):
        raise InputError(f"{len(names)} names for {len(dirs)} directories")
    runs = [load_run(d, names[i] if names else None) for i, d in enumerate(dirs)]
    seen: dict[str, int] = {}
    for i, r in enumerate(runs):  # two runs of the same name would be indistinguishable rows
        if r.name in seen:
            runs[i] = Run(f"{r.name} ({dirs[i]})", r.metrics, r.info)
        seen[r.name] = i
    if figure is not None:
        from dftrain.paper_table import scenario_figure

        scenario_figure(runs, figure, metrics[0])
    if paper:
        from dftrain.paper_table import render_paper

        return render_paper(runs, metrics)
    return render(runs, metrics)
