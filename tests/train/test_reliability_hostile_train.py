"""The second round of hostile use (issue 24), dftrain's side and the miniature's learning check:
nothing deleted that the tool did not write, the resume state checked like the weights,
compare's inputs validated, outputs checked before the work, read-only and full disks as one
line. The numbers in the section titles are the issue's cases."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import faults as F
from dfprep.core.errors import InputError, WriteError
from dftrain.checkpoint import save_checkpoint
from dftrain.cli import app
from dftrain.model import create_model
from dftrain.train import run
from test_reliability_checkpoints import CFG
from trainer_helpers import TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[2]


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def last(balanced, tmp_path_factory):
    """A run stopped after its first of two epochs: its checkpoints/last resumes."""
    out = tmp_path_factory.mktemp("run") / "r"
    run(balanced, out, CFG, progress=False, stop_after=1)
    return out


def _eval_dir(path: Path, metrics: dict, info: dict | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps(metrics))
    (path / "info.json").write_text(json.dumps(info or {"name": path.name}))
    return path


GOOD = {"datasets": {"ffpp": {"summary": {"auc": 0.9, "bacc": 0.8}}}, "scenarios": {}}


# ---- 1. the learning check never deletes a folder it did not write ---------------------------


def _learning_check(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, REPO / "experiments" / "mini" / "learning_check.py", *map(str, args)],
        cwd=REPO / "experiments" / "mini",
        env=F.clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_learning_check_keeps_an_out_folder_it_did_not_write(balanced, extracted, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "thesis.tex").write_text("months of work")
    res = _learning_check("--out", out, "--data", tmp_path / "nope", "--test", extracted)
    line = F.one_error_line(res)
    assert "nope" in line and (out / "thesis.tex").read_text() == "months of work"
    res = _learning_check("--out", out, "--data", balanced, "--test", extracted)
    line = F.one_error_line(res)
    assert "thesis.tex" in line and (out / "thesis.tex").read_text() == "months of work"
    res = _learning_check("--out", out, "--data", balanced, "--test", tmp_path)
    assert "not an extract output" in F.one_error_line(res)
    # a folder of extract outputs, as the experiment's data/extract/train: taken as evaluate takes
    # it (the check goes on to the output folder, which it refuses)
    shutil.copytree(extracted, tmp_path / "extract" / "train" / "ffpp")
    res = _learning_check("--out", out, "--data", balanced, "--test", tmp_path / "extract")
    assert "thesis.tex" in F.one_error_line(res)


# ---- 4. state.pt is checked like model.safetensors -----------------------------------------


def test_a_flipped_byte_in_state_pt_is_refused(balanced, last, tmp_path):
    r = shutil.copytree(last, tmp_path / "r")
    state = r / "checkpoints" / "last" / "state.pt"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the optimiser's tensors
    state.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"state\.pt: checksum differs from state_sha256"):
        run(balanced, r, CFG, resume=True, progress=False)


def test_an_impossible_epoch_in_state_pt_is_refused(balanced, last, tmp_path):
    r = shutil.copytree(last, tmp_path / "r")
    ckpt = r / "checkpoints" / "last"
    state = torch.load(ckpt / "state.pt", weights_only=True)
    state["epoch"] = 5
    torch.save(state, ckpt / "state.pt")
    with pytest.raises(InputError, match="checksum differs"):
        run(balanced, r, CFG, resume=True, progress=False)
    meta = json.loads((ckpt / "config.json").read_text())
    del meta["state_sha256"]  # as a checkpoint written before the checksum: the epoch is checked
    (ckpt / "config.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"epoch 5 .*2 epochs"):
        run(balanced, r, CFG, resume=True, progress=False)


# ---- 10. one run at a time on a run or eval folder ------------------------------------------


def test_run_and_eval_refuse_a_folder_another_run_holds(balanced, extracted, checkpoint, tmp_path):
    for folder in (tmp_path / "run", tmp_path / "eval"):
        folder.mkdir()
        (folder / ".dfprep.lock").write_text(
            json.dumps({"pid": 4242, "host": "node-17", "command": "dftrain run", "since": 0})
        )
    line = F.one_error_line(cli("run", balanced, "--out", tmp_path / "run", "--init", "none",
                              "--model", "vit_tiny_patch16_224", "--no-progress"))  # fmt: skip
    assert "PID 4242 on node-17" in line
    line = F.one_error_line(cli("eval", checkpoint, "--data", f"ffpp={extracted}", "--out",
                              tmp_path / "eval", "--no-progress"))  # fmt: skip
    assert "PID 4242 on node-17" in line


# ---- 11. read-only folders and a full disk ---------------------------------------------------


def test_read_only_outputs_are_one_line(balanced, extracted, checkpoint, tmp_path):
    ev = _eval_dir(tmp_path / "ev", GOOD)
    with F.read_only(tmp_path / "ro") as ro:
        if ro is None:
            pytest.skip("mounting a read-only tmpfs is not permitted here")
        for args in (
            ("run", balanced, "--out", ro / "r", "--init", "none", "--model",
             "vit_tiny_patch16_224", "--img-size", "32", "--no-progress"),
            ("eval", checkpoint, "--data", f"ffpp={extracted}", "--out", ro / "e",
             "--device", "cpu", "--workers", "0", "--no-progress"),
            ("compare", ev, "--out", ro / "t.md"),
            ("compare", ev, "--figure", ro / "t.png"),
        ):  # fmt: skip
            line = F.one_error_line(cli(*args))
            assert "Read-only file system" in line and str(ro) in line, (args, line)


def test_a_checkpoint_on_a_full_disk_is_a_write_error(checkpoint, tmp_path):
    vit = create_model(TINY, 2)
    meta = json.loads((checkpoint / "config.json").read_text())
    with F.small_tmpfs(tmp_path / "disk", "256k") as disk:
        if disk is None:
            pytest.skip("mounting a tmpfs is not permitted here")
        F.fill(disk, 16_000)
        with pytest.raises(WriteError, match=r"cannot write .*: No space left on device"):
            save_checkpoint(disk / "best", vit, meta)
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no half-written checkpoint


def test_dftrain_run_on_a_full_disk_is_one_line(balanced, tmp_path):
    with F.small_tmpfs(tmp_path / "disk", "1m") as disk:
        if disk is None:
            pytest.skip("mounting a tmpfs is not permitted here")
        F.fill(disk, 200_000)  # room for the logs, not for a checkpoint
        res = cli("run", balanced, "--out", disk / "r", "--init", "none", "--model",
                  "vit_tiny_patch16_224", "--img-size", "32", "--epochs", "1",
                  "--batch-size", "16", "--workers", "0", "--no-progress")  # fmt: skip
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        line = res.output.strip().splitlines()[-1]  # after the run's own log lines
        assert line.startswith("error: cannot write") and "No space left on device" in line
        assert str(disk / "r" / "checkpoints") in line
        assert not list((disk / "r" / "checkpoints").glob("*.tmp"))


# ---- 15. compare validates metrics.json ------------------------------------------------------


@pytest.mark.parametrize(
    "metrics, key",
    [
        ({"datasets": {"ffpp": {"summary": {"auc": 5.0, "bacc": 0.5}}}}, "datasets.ffpp.summary.auc"),
        ({"datasets": {"ffpp": {"summary": {"auc": -3.0}}}}, "datasets.ffpp.summary.auc"),
        ({"datasets": {"ffpp": {"summary": {"auc": "high"}}}}, "datasets.ffpp.summary.auc"),
        ({"datasets": {"ffpp": 3}}, "datasets.ffpp"),
        ({"datasets": {"ffpp": {"summary": [0.9]}}}, "datasets.ffpp.summary"),
        ({"datasets": {"ffpp": {"summary": {"auc": 0.9}, "videos": "many"}}}, "datasets.ffpp.videos"),
        ({"datasets": {"ffpp": {"summary": {"auc": 0.9}}}, "scenarios": []}, "scenarios"),
        ({"datasets": {"ffpp": {"categories": {"FS": {"auc": True}}}}}, "datasets.ffpp.categories.FS.auc"),
        ({"datasets": {"x": {"summary": {"auc": 0.5}, "videos": {"test": -1}}}}, "datasets.x.videos.test"),
    ],
)  # fmt: skip
def test_compare_refuses_metrics_of_the_wrong_type_or_range(tmp_path, metrics, key):
    ev = _eval_dir(tmp_path / "ev", metrics)
    for extra in ((), ("--paper",)):
        line = F.one_error_line(cli("compare", ev, *extra))
        assert f"{ev / 'metrics.json'}: {key}:" in line, line


def test_compare_refuses_an_info_json_of_the_wrong_type(tmp_path):
    ev = _eval_dir(tmp_path / "ev", GOOD, {"name": "x", "dataset_order": 5})
    assert "info.json: dataset_order:" in F.one_error_line(cli("compare", ev))
    ev2 = _eval_dir(tmp_path / "ev2", GOOD, {"name": "x", "roles": ["id"]})
    assert "info.json: roles:" in F.one_error_line(cli("compare", ev2))


# ---- 16. output paths and formats checked before the work ------------------------------------


def test_compare_and_predict_check_figure_paths_first(tmp_path):
    ev = _eval_dir(tmp_path / "ev", GOOD)
    line = F.one_error_line(cli("compare", ev, "--figure", tmp_path / "x.txt"))
    assert "--figure" in line and "x.txt" in line and ".png" in line
    d = tmp_path / "figs"
    d.mkdir()
    line = F.one_error_line(cli("compare", ev, "--figure", d))
    assert "is a directory" in line and not (tmp_path / "figs.png").exists()
    assert cli("compare", ev, "--figure", tmp_path / "t.svg").exit_code == 0
    # predict: the --timeline is checked before the checkpoint is even looked at
    line = F.one_error_line(cli("predict", tmp_path / "no-checkpoint", tmp_path, "--timeline",
                              tmp_path / "t.txt"))  # fmt: skip
    assert "--timeline" in line and "t.txt" in line


def test_a_figure_format_matplotlib_knows_is_accepted(tmp_path):
    ev = _eval_dir(tmp_path / "ev", GOOD)
    for name in ("a.png", "b.PDF", "c.svg"):
        res = cli("compare", ev, "--figure", tmp_path / name)
        assert res.exit_code == 0, res.output
        assert (tmp_path / name).stat().st_size > 0
    assert os.path.exists(tmp_path / "a.png")


# ---- smaller points ------------------------------------------------------------------------


def test_a_sizes_json_naming_a_file_outside_the_split_is_not_a_shard(balanced, tmp_path):
    from dftrain.data import read_splits

    copy = shutil.copytree(balanced, tmp_path / "b")
    sizes = json.loads((copy / "sizes.json").read_text())
    sizes["train"]["/etc/passwd"] = 3
    (copy / "sizes.json").write_text(json.dumps(sizes))
    with pytest.raises(InputError, match=r"train: '/etc/passwd' is not a shard"):
        read_splits(copy)


# ---- 8. a FIFO in place of a shard never blocks eval -----------------------------------------


def test_eval_refuses_a_fifo_in_place_of_a_shard(extracted, checkpoint, tmp_path):
    copy = shutil.copytree(extracted, tmp_path / "x")
    tar = next((copy / "shards").glob("*.tar"))
    tar.unlink()
    os.mkfifo(tar)
    res = subprocess.run(
        [F.BIN / "dftrain", "eval", checkpoint, "--data", f"ffpp={copy}", "--out", tmp_path / "e",
         "--device", "cpu", "--workers", "0", "--no-progress"],
        env=F.clean_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    line = F.one_error_line(res)
    assert tar.name in line and "not a regular file" in line
