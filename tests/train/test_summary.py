"""`dftrain summary`: the few numbers a user compares between runs, from an evaluation and the run
it evaluated (the DVC pipelines' summary metrics)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dfprep.core.errors import InputError
from dftrain.cli import app
from dftrain.summary import run_dir_of, summarise


def _eval(tmp_path, name: str, auc: float, ood: bool = True):
    """An eval output and the run directory its checkpoint came from, as dftrain writes them."""
    run = tmp_path / "runs" / name
    (run / "checkpoints" / "best").mkdir(parents=True)
    (run / "dvclive").mkdir()
    live = {"train": {"epoch": 3.0}, "val": {"epoch": 2, "loss": 0.7}, "best/epoch": 1,
            "best/val_loss": 0.5, "time/wall_s": 100.0, "step": 12}  # fmt: skip
    (run / "dvclive" / "metrics.json").write_text(json.dumps(live))
    scenarios = {"in_distribution": {"auc": auc, "bacc": 0.8, "datasets": 5}}
    if ood:
        scenarios["out_of_distribution"] = {"auc": 0.7, "bacc": 0.6, "datasets": 1}
    out = tmp_path / "evals" / name
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps({"datasets": {}, "scenarios": scenarios}))
    info = {"name": name, "checkpoint": str(run / "checkpoints" / "best"), "seconds": 2.5}
    (out / "info.json").write_text(json.dumps(info))
    return out


def test_the_summary_of_one_evaluation_and_of_several(tmp_path):
    one = _eval(tmp_path, "fsfm", 0.9)
    assert summarise([one]) == {
        "ID": {"auc": 0.9, "bacc": 0.8}, "OOD": {"auc": 0.7, "bacc": 0.6},
        "val_loss": 0.5, "best_epoch": 1, "epochs": 3, "wall_s": 102.5,
    }  # fmt: skip
    two = _eval(tmp_path, "fsfm_ba", 0.95, ood=False)
    both = summarise([one, two])
    assert set(both) == {"fsfm", "fsfm_ba"} and "OOD" not in both["fsfm_ba"]
    assert summarise([one], keyed=True) == {"fsfm": summarise([one])}
    assert run_dir_of(tmp_path / "runs" / "x" / "checkpoints" / "best") == tmp_path / "runs" / "x"
    with pytest.raises(InputError, match="same name"):
        summarise([one, tmp_path / "other" / "fsfm"])
    with pytest.raises(InputError, match="not found"):
        summarise([tmp_path / "nothing"])


def test_cli_writes_the_summary_metrics_file(tmp_path):
    one = _eval(tmp_path, "fsfm", 0.9)
    res = CliRunner().invoke(app, ["summary", str(one), "--keyed", "-o", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "s.json").read_text())["fsfm"]["ID"]["auc"] == 0.9
