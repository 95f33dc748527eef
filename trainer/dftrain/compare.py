"""`dftrain compare DIR...`: several `dftrain eval` outputs side by side in one Table 3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dfprep.core.errors import InputError
from dftrain.results_table import Run, render


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: not found (is {path.parent} a `dftrain eval` output?)") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data


def load_run(directory: str | Path, name: str | None = None) -> Run:
    d = Path(directory)
    metrics, info = _load(d / "metrics.json"), _load(d / "info.json")
    if not isinstance(metrics.get("datasets"), dict):
        raise InputError(
            f"{d / 'metrics.json'}: no `datasets` section (not written by `dftrain eval`?)"
        )
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
