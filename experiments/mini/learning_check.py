"""The learning check of the miniature (README "Reproducing the paper"): does the chain learn, and
does it leak? Run in experiments/mini after `dfprep synth` and `dvc repro balance`:

    python learning_check.py [--out runs/learning-check]
    python learning_check.py --sbi [--out runs/learning-check-sbi]

Default: trains the CE-only configuration (train@fsfm: binary labels, no triplet) and its
shuffled-label control (train@control) with params.yaml's `train:`, evaluates both on the test
split of the five training datasets (held-out identities) and prints the in-distribution video AUC
of each: the mean over the datasets, as Table 3's ID column. Targets: CE-only >= 0.85, control
within 0.35-0.65.

--sbi: trains the `sbi` configuration exactly as `dvc repro` does (`dftrain run` with its `args`
from params.yaml: the real crops alone and their pseudo-fakes) and its control (the same with
--shuffle-labels: the labels of half of every video's pairs swapped), and evaluates both the same
way. Targets: SBI's video AUC on FF++'s face swaps (Deepfakes and FaceSwap, the mean over the two
methods as Table 3 averages them) >= 0.75; the control's in-distribution AUC within 0.35-0.65.
It also prints the reenactments' AUC (Face2Face, NeuralTextures), which SBI finds harder.

Exit status 0 when the targets are met, 1 otherwise, 2 for bad input (one line, before any work).

`--out` must be new, empty, or a previous learning check's (its `learning-check.json` lists every
file it wrote, `dfprep.core.owned`): it is replaced only then, and never holds anything else.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import subprocess
import sys
import time
from pathlib import Path

from dfprep.core.cli import message, print_error
from dfprep.core.config import read_params
from dfprep.core.errors import DfprepError, InputError
from dfprep.core.lock import output_lock
from dfprep.core.owned import replacing
from dftrain.config import load_eval_params, load_train_params, with_overrides
from dftrain.data import read_splits
from dftrain.evaluate import evaluate
from dftrain.testset import read_test_set
from dftrain.train import run

TARGET, CHANCE = 0.85, (0.35, 0.65)
SBI_TARGET = 0.75  # FF++ face swaps, held-out people
MARKER = "learning-check.json"


def id_auc(metrics: dict) -> tuple[float, dict[str, float]]:
    per = {d: m["video"]["auc"] for d, m in metrics["datasets"].items()}
    return sum(per.values()) / len(per), per


def ffpp_categories(metrics: dict) -> dict[str, float]:
    """FF++'s video AUC per category (FS: Deepfakes, FaceSwap; RE: Face2Face, NeuralTextures)."""
    cats = metrics["datasets"]["ffpp"].get("categories", {})
    return {c: cats[c]["auc"] for c in ("FS", "RE") if c in cats}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="data/balanced")
    ap.add_argument("--test", default="data/extract/train")
    ap.add_argument("--out", default=None)
    ap.add_argument("--sbi", action="store_true", help="check the sbi configuration instead")
    a = ap.parse_args(argv)
    try:
        return sbi_check(a) if a.sbi else check(a)
    except DfprepError as e:  # bad input: one line, exit 2, nothing touched
        print_error(message(e))
        return e.exit_code
    except subprocess.CalledProcessError as e:  # the sbi run failed: it said why above
        print_error(f"{shlex.join(map(str, e.cmd))}: exit status {e.returncode}")
        return e.returncode


def checked_out(a: argparse.Namespace, default: str):
    """The inputs checked before anything is written; the output folder's lock and owner."""
    read_splits(a.data)
    read_test_set([a.test], "test")  # as evaluate reads it: DIR, or every extract output below it
    out = Path(a.out or default)
    info = {"generator": "learning_check.py", "data": str(a.data), "test": str(a.test)}
    return out, (
        output_lock(out, "learning_check.py"),
        replacing(out, MARKER, info, "learning check", "learning check"),
    )


def check(a: argparse.Namespace) -> int:
    base = load_train_params(a.params)
    base = with_overrides(
        base, **{"model.init": "none", "loss.triplet": "none", "labels.mode": "binary"}
    )
    eval_cfg = load_eval_params(a.params)
    out, (lock, owned) = checked_out(a, "runs/learning-check")
    with lock, owned:
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


def sbi_command(params: str, data: str, out: Path, control: bool) -> list[str]:
    """`dftrain run` of the `sbi` configuration as dvc.yaml's train stage writes it."""
    item = (read_params(params).get("configs") or {}).get("sbi")
    if not isinstance(item, dict) or not item.get("init"):
        raise InputError(f"{params}: no `sbi` entry under configs")
    cmd = ["dftrain", "run", data, "--out", str(out), "--params", params, "--no-progress",
           "--init", str(item["init"]), "--labels", str(item.get("labels", "binary")),
           "--triplet", str(item.get("triplet", "none")),
           *shlex.split(str(item.get("args") or ""))]  # fmt: skip
    return [*cmd, "--shuffle-labels"] if control else cmd


def sbi_check(a: argparse.Namespace) -> int:
    eval_cfg = load_eval_params(a.params)
    out, (lock, owned) = checked_out(a, "runs/learning-check-sbi")
    cmds = {
        n: sbi_command(a.params, a.data, out / n, c) for n, c in (("sbi", 0), ("sbi_control", 1))
    }
    result: dict[str, dict] = {}
    with lock, owned:
        for name, cmd in cmds.items():
            t0 = time.perf_counter()
            print("$ " + shlex.join(cmd), flush=True)
            subprocess.run(cmd, check=True)
            trained = time.perf_counter() - t0
            ev = evaluate(out / name / "checkpoints" / "best", [a.test], out / f"{name}-eval",
                          eval_cfg, name=name)  # fmt: skip
            mean, per = id_auc(ev.metrics)
            cats = ffpp_categories(ev.metrics)
            result[name] = {"id": mean, **cats}
            cells = ", ".join(f"{d} {v:.3f}" for d, v in sorted(per.items()))
            print(f"{name}: FF++ face swaps (FS) {cats.get('FS', float('nan')):.3f}, reenactments "
                  f"(RE) {cats.get('RE', float('nan')):.3f}; in-distribution {mean:.3f} ({cells}); "
                  f"video score {ev.info['aggregate']}; trained in {trained:.0f} s, evaluated in "
                  f"{time.perf_counter() - t0 - trained:.0f} s", flush=True)  # fmt: skip
    fs, ctl = result["sbi"].get("FS", float("nan")), result["sbi_control"]["id"]
    ok_fs = fs >= SBI_TARGET
    ok_ctl = CHANCE[0] <= ctl <= CHANCE[1]
    print(f"SBI learning check: FF++ FS {fs:.3f} (>= {SBI_TARGET}: {'met' if ok_fs else 'NOT met'}); "
          f"RE {result['sbi'].get('RE', float('nan')):.3f} (reported); control {ctl:.3f} "
          f"(within {CHANCE[0]}-{CHANCE[1]}: {'met' if ok_ctl else 'NOT met'})")  # fmt: skip
    return 0 if ok_fs and ok_ctl else 1


if __name__ == "__main__":
    sys.exit(main())
