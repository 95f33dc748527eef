"""The learning check of the miniature (README "Reproducing the paper"): does the chain learn, and
does it leak? Run in experiments/mini after `dfprep synth` and `dvc repro balance`:

    python learning_check.py [--out runs/learning-check]

Trains the CE-only configuration (train@fsfm: binary labels, no triplet) and its shuffled-label
control (train@control) with params.yaml's `train:`, evaluates both on the test split of the five
training datasets (held-out identities) and prints the in-distribution video AUC of each: the mean
over the datasets, as Table 3's ID column. Targets: CE-only >= 0.85, control within 0.35-0.65.
Exit status 0 when both are met, 1 otherwise, 2 for bad input (one line, before any work).

`--out` must be new, empty, or a previous learning check's (its `learning-check.json` lists every
file it wrote, `dfprep.core.owned`): it is replaced only then, and never holds anything else.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from dfprep.core.cli import message, print_error
from dfprep.core.errors import DfprepError, InputError
from dfprep.core.lock import output_lock
from dfprep.core.owned import replacing
from dfprep.shards import find_shards
from dftrain.config import load_eval_params, load_train_params, with_overrides
from dftrain.data import read_splits
from dftrain.evaluate import evaluate
from dftrain.train import run

TARGET, CHANCE = 0.85, (0.35, 0.65)
MARKER = "learning-check.json"


def id_auc(metrics: dict) -> tuple[float, dict[str, float]]:
    per = {d: m["video"]["auc"] for d, m in metrics["datasets"].items()}
    return sum(per.values()) / len(per), per


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="data/balanced")
    ap.add_argument("--test", default="data/extract/train")
    ap.add_argument("--out", default="runs/learning-check")
    a = ap.parse_args(argv)
    try:
        return check(a)
    except DfprepError as e:  # bad input: one line, exit 2, nothing touched
        print_error(message(e))
        return e.exit_code


def check(a: argparse.Namespace) -> int:
    base = load_train_params(a.params)
    base = with_overrides(
        base, **{"model.init": "none", "loss.triplet": "none", "labels.mode": "binary"}
    )
    eval_cfg = load_eval_params(a.params)
    read_splits(a.data)  # the inputs, before anything is written
    if not find_shards(a.test)[0]:
        raise InputError(f"{a.test}: an extract output without a complete shard")
    out = Path(a.out)
    info = {"generator": "learning_check.py", "data": str(a.data), "test": str(a.test)}
    with (
        output_lock(out, "learning_check.py"),
        replacing(out, MARKER, info, "learning check", "learning check"),
    ):
        result = train_and_evaluate(base, eval_cfg, a, out)
    ok_ce = result["ce_only"] >= TARGET
    ok_ctl = CHANCE[0] <= result["control"] <= CHANCE[1]
    print(f"learning check: CE-only {result['ce_only']:.3f} (>= {TARGET}: {'met' if ok_ce else 'NOT met'}); "
          f"control {result['control']:.3f} (within {CHANCE[0]}-{CHANCE[1]}: {'met' if ok_ctl else 'NOT met'})")  # fmt: skip
    return 0 if ok_ce and ok_ctl else 1


def train_and_evaluate(base, eval_cfg, a: argparse.Namespace, out: Path) -> dict[str, float]:
    """Both configurations trained into OUT and evaluated; name -> in-distribution video AUC."""
    result = {}
    for name, shuffle in (("ce_only", False), ("control", True)):
        cfg = dataclasses.replace(base, labels=dataclasses.replace(base.labels, shuffle=shuffle))
        t0 = time.process_time()
        run(a.data, out / name, cfg, progress=False)
        ev = evaluate(out / name / "checkpoints" / "best", [a.test], out / f"{name}-eval",
                      eval_cfg, name=name)  # fmt: skip
        mean, per = id_auc(ev.metrics)
        result[name] = mean
        cells = ", ".join(f"{d} {v:.3f}" for d, v in sorted(per.items()))
        print(f"{name}: in-distribution video AUC {mean:.3f} ({cells}); "
              f"{time.process_time() - t0:.0f} s CPU in this process", flush=True)  # fmt: skip
    return result


if __name__ == "__main__":
    sys.exit(main())
