"""`dftrain summary`: the few numbers a user compares between runs, as one small metrics file.

A DVC pipeline declares it as its summary metrics, so `dvc exp show` and `dvc metrics diff` lead
with these and the detail files (the run's `dvclive/metrics.json`, the evaluation's
`metrics.json`) stay one `--keep` away. Per evaluated run:

    {"ID": {"auc": .., "bacc": ..}, "OOD": {..}, "wild": {..},  # video level, per scenario present
     "val_loss": .., "best_epoch": .., "epochs": .., "wall_s": ..}

`val_loss` is the best checkpoint's validation loss (what the checkpoint was selected on),
`epochs` the epochs trained, `wall_s` the training's wall time plus the evaluation's scoring time.
The training numbers come from the run directory of the checkpoint that was evaluated (info.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dfprep.core.errors import InputError
from dftrain.compare import load_run
from dftrain.results_table import SCENARIO_SHORT

__all__ = ["run_dir_of", "summarise", "summary"]


def run_dir_of(checkpoint: str | Path) -> Path:
    """The run directory of a checkpoint directory (RUN/checkpoints/best), or the path itself."""
    p = Path(checkpoint)
    return p.parent.parent if p.parent.name == "checkpoints" else p


def _training(run: Path) -> dict[str, Any]:
    """best val loss, best epoch, epochs trained and wall seconds from RUN/dvclive/metrics.json."""
    path = run / "dvclive" / "metrics.json"
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not readable JSON ({e})") from None
    out: dict[str, Any] = {}
    if "best/val_loss" in m:
        out["val_loss"] = m["best/val_loss"]
    if "best/epoch" in m:
        out["best_epoch"] = m["best/epoch"]
    val_epoch = (m.get("val") or {}).get("epoch")
    if val_epoch is not None:
        out["epochs"] = int(val_epoch) + 1  # epochs are counted from 0
    if "time/wall_s" in m:
        out["wall_s"] = m["time/wall_s"]
    return out


def summary(eval_dir: str | Path) -> dict[str, Any]:
    """The summary of one `dftrain eval` output (see the module's docstring)."""
    run = load_run(eval_dir)
    out: dict[str, Any] = {}
    for scenario, short in SCENARIO_SHORT.items():
        s = run.metrics.get("scenarios", {}).get(scenario)
        if s:
            out[short] = {"auc": s.get("auc"), "bacc": s.get("bacc")}
    train = _training(run_dir_of(run.info.get("checkpoint", "")))
    out.update({k: v for k, v in train.items() if k != "wall_s"})
    if "wall_s" in train:
        out["wall_s"] = round(float(train["wall_s"]) + float(run.info.get("seconds") or 0.0), 1)
    return out


def summarise(eval_dirs: list[str | Path], keyed: bool = False) -> dict[str, Any]:
    """One evaluation: its summary; several, or `keyed`: {directory name: summary}."""
    if not eval_dirs:
        raise InputError("no eval directory given")
    if len(eval_dirs) == 1 and not keyed:
        return summary(eval_dirs[0])
    names = [Path(d).name for d in eval_dirs]
    if len(set(names)) != len(names):
        raise InputError(f"eval directories with the same name: {', '.join(map(str, eval_dirs))}")
    return {n: summary(d) for n, d in zip(names, eval_dirs, strict=True)}
