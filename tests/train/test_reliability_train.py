"""Training survives kill -9: `--resume` ends with the same weights as an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dftrain.bench.synthetic import write_synthetic_shards
from dftrain.checkpoint import load_state, resolve, save_checkpoint

BIN = Path(sys.executable).parent
PARAMS = """train:
  model: {name: vit_tiny_patch16_224, img_size: 32, patch_size: 8, depth: 2, drop_path: 0.1}
  optim: {epochs: 6, batch_size: 16, warmup_epochs: 1.0, lr: 0.0005}
  data: {workers: 1, shuffle_buffer: 64, shuffle_initial: 16}
  log_every: 1
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("killtrain")
    write_synthetic_shards(root / "data", {"train": [32] * 4, "val": [16] * 2}, size=64, seed=1)
    (root / "params.yaml").write_text(PARAMS)
    return root


def _cmd(root: Path, out: Path, *extra: str) -> list:
    return [
        BIN / "dftrain",
        "run",
        root / "data",
        "--out",
        out,
        "--params",
        root / "params.yaml",
        "--no-progress",
        *extra,
    ]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _weights(out: Path) -> dict:
    return load_file(str(out / "checkpoints" / "last" / "model.safetensors"))


def _epoch_done(out: Path) -> int:
    try:
        return json.loads((out / "checkpoints/last/config.json").read_text())["epoch"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return -1


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_weights_of_an_uninterrupted_run(setup, tmp_path):
    ref = tmp_path / "ref"
    done = subprocess.run(_cmd(setup, ref), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rng = random.Random(7)
    for trial in range(2):
        out = tmp_path / f"killed{trial}"
        proc = subprocess.Popen(
            _cmd(setup, out),
            env=_env(),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        t0 = time.time()
        while _epoch_done(out) < trial and proc.poll() is None and time.time() - t0 < 300:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.5))  # somewhere in the next epoch (or its checkpoint)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _epoch_done(out) < 5, (
            "the run finished before it was killed; the test proves nothing"
        )
        res = subprocess.run(
            _cmd(setup, out, "--resume"), env=_env(), capture_output=True, text=True, timeout=600
        )
        assert res.returncode == 0, res.stderr
        a, b = _weights(ref), _weights(out)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), trial


def test_a_checkpoint_swap_cut_between_its_renames_is_recovered(tmp_path):
    vit = torch.nn.Linear(2, 2)
    last = tmp_path / "checkpoints" / "last"
    meta = {"format": "dftrain-checkpoint/1", "epoch": 0}
    save_checkpoint(last, vit, meta, state={"optimizer": {}, "epoch": 0})
    last.rename(last.with_name("last.old"))  # killed after `final -> old`, before `tmp -> final`
    assert load_state(last)["epoch"] == 0 and last.is_dir()
    (tmp_path / "checkpoints" / "best.old").mkdir()
    (tmp_path / "checkpoints" / "best.old" / "config.json").write_text("{}")
    assert resolve(tmp_path) == tmp_path / "checkpoints" / "best"
