"""End-to-end `dftrain run` on synthetic shards with a tiny ViT: learning, resume, every label/loss/init mode."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from dfprep.core.errors import ConfigError
from dftrain.bench.synthetic import write_synthetic_shards
from dftrain.checkpoint import load_model
from dftrain.cli import app
from dftrain.config import (
    AugConfig,
    DataConfig,
    LabelConfig,
    LossConfig,
    OptimConfig,
    TrainConfig,
)
from dftrain.labels import fake_probability
from dftrain.model import create_model
from dftrain.monitor import truncate_after
from dftrain.train import run
from trainer_helpers import TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_cfg(**sections) -> TrainConfig:
    base = TrainConfig(
        model=TINY,
        optim=OptimConfig(epochs=1, batch_size=16, warmup_epochs=0.5, lr=5e-4),
        data=DataConfig(workers=0, shuffle_buffer=64, shuffle_initial=16),
        log_every=1,
    )
    return dataclasses.replace(base, **sections)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """128 train crops in 4 shards, 32 val crops in 2, 64 px (the trainer resizes to 32)."""
    root = tmp_path_factory.mktemp("balanced")
    write_synthetic_shards(root, {"train": [32] * 4, "val": [16] * 2}, size=64, seed=0)
    return root


def _tsv(path):
    with path.open() as f:
        return [float(r[1]) for r in list(csv.reader(f, delimiter="\t"))[1:]]


def test_loss_goes_down_within_a_few_dozen_steps(shards, tmp_path):
    cfg = tiny_cfg(
        optim=OptimConfig(epochs=4, batch_size=16, warmup_epochs=0.5, lr=5e-4),
        aug=AugConfig(auto_augment="", re_prob=0.0, scale=(0.6, 1.0)),
    )
    result = run(shards, tmp_path / "run", cfg, progress=False)
    losses = _tsv(tmp_path / "run" / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv")
    assert len(losses) == 32  # 128 crops / 16 per step x 4 epochs
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    assert result.best_epoch >= 0 and len(result.history) == 4
    assert (tmp_path / "run" / "checkpoints" / "best" / "model.safetensors").is_file()


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(shards, tmp_path):
    cfg = tiny_cfg(
        model=dataclasses.replace(TINY, drop_path=0.1),  # stochastic depth must replay too
        optim=OptimConfig(epochs=2, batch_size=32, warmup_epochs=1.0, lr=5e-4),
        data=DataConfig(workers=2, shuffle_buffer=64, shuffle_initial=16),
        log_every=2,
    )
    run(shards, tmp_path / "a", cfg, progress=False)
    first = run(shards, tmp_path / "b", cfg, progress=False, stop_after=1)
    assert len(first.history) == 1
    with pytest.raises(ConfigError, match="already holds a run"):
        run(shards, tmp_path / "b", cfg, progress=False)
    changed = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, lr=1e-3))
    with pytest.raises(ConfigError, match=r"train\.optim\.lr"):
        run(shards, tmp_path / "b", changed, resume=True, progress=False)
    other = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, workers=1))
    with pytest.raises(
        ConfigError, match=r"train\.data\.workers"
    ):  # workers shape the sample order
        run(shards, tmp_path / "b", other, resume=True, progress=False)
    faster = dataclasses.replace(
        cfg, data=dataclasses.replace(cfg.data, prefetch=1), log_every=1
    )  # run-only settings
    second = run(shards, tmp_path / "b", faster, resume=True, progress=False)
    assert [h["epoch"] for h in second.history] == [0, 1]
    a = load_file(str(tmp_path / "a" / "checkpoints" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoints" / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = _tsv(tmp_path / "b" / "dvclive" / "plots" / "metrics" / "val" / "epoch.tsv")
    assert steps == [0.0, 1.0]  # one validation row per epoch, none doubled by the resume


@pytest.mark.parametrize("labels", ["binary", "category", "dataset"])
@pytest.mark.parametrize("triplet", ["none", "batch_all", "hard", "easy_positive"])
def test_every_label_mode_with_every_triplet_strategy(shards, tmp_path, labels, triplet):
    cfg = tiny_cfg(
        labels=LabelConfig(labels),
        loss=LossConfig(
            triplet=triplet, triplet_labels="binary" if labels == "dataset" else "train"
        ),
    )
    result = run(shards, tmp_path / "r", cfg, progress=False, stop_after=1)
    h = result.history[0]
    assert ("train_triplet" in h) == (triplet != "none")
    assert h["val_n"] == 32 and 0.0 <= h["val_auc"] <= 1.0
    model, meta = load_model(tmp_path / "r")
    n = {"binary": 2, "category": 3, "dataset": 6}[labels]
    assert len(meta["labels"]["class_names"]) == n
    logits = model(torch.randn(4, 3, 32, 32))
    assert logits.shape == (4, n)
    torch.testing.assert_close(fake_probability(logits), 1 - torch.softmax(logits, -1)[:, 0])


def test_fsfm_and_timm_initialisation_through_run(shards, tmp_path):
    src = create_model(TINY, 2)
    encoder = {
        k: v
        for k, v in src.state_dict().items()
        if k.startswith(("blocks.", "patch_embed.")) or k in ("cls_token", "pos_embed")
    }
    torch.save(
        {
            "model": {
                **encoder,
                "mask_token": torch.zeros(1, 1, 192),
                "decoder_embed.weight": torch.zeros(8, 192),
            },
            "epoch": 399,
        },
        tmp_path / "fsfm.pth",
    )
    timm_src = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2
    )
    save_file(
        {k: v.contiguous() for k, v in timm_src.state_dict().items()},
        str(tmp_path / "in1k.safetensors"),
    )
    for init in (f"fsfm:{tmp_path / 'fsfm.pth'}", f"timm:{tmp_path / 'in1k.safetensors'}"):
        cfg = tiny_cfg(model=dataclasses.replace(TINY, init=init))
        out = tmp_path / init.split(":")[0]
        assert run(shards, out, cfg, progress=False).history


def test_mixup_cutmix_for_cross_entropy_runs(shards, tmp_path):
    cfg = tiny_cfg(loss=LossConfig(triplet="none", mixup=0.8, cutmix=1.0, label_smoothing=0.1))
    assert run(shards, tmp_path / "mix", cfg, progress=False).history[0]["train_ce"] > 0
    with pytest.raises(ConfigError, match="mixup"):
        run(
            shards,
            tmp_path / "bad",
            tiny_cfg(loss=LossConfig(triplet="hard", mixup=0.8)),
            progress=False,
        )


def _params(tmp_path, **extra):
    text = "train:\n  model: {name: vit_tiny_patch16_224, img_size: 32, patch_size: 8, depth: 2}\n"
    text += "  optim: {epochs: 1, batch_size: 16, warmup_epochs: 0.5}\n  data: {workers: 0, shuffle_buffer: 64, shuffle_initial: 16}\n"
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_cli_run_and_one_line_errors(shards, tmp_path):
    runner = CliRunner()
    params = _params(tmp_path)
    res = runner.invoke(
        app,
        [
            "run",
            str(shards),
            "-o",
            str(tmp_path / "c"),
            "-p",
            str(params),
            "--labels",
            "category",
            "--triplet",
            "hard",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "best epoch 0" in res.output
    # no terminal here: the progress as lines in the log, the last one with the whole count
    assert re.search(
        r"train: (\d+)/\1 steps \(100%\) .* done in .* epoch 1\.00 · loss \d", res.stderr
    )
    _, meta = load_model(tmp_path / "c")
    assert meta["labels"]["mode"] == "category"
    # no lr given: blr 1e-4 x global batch 16 / 256, logged and recorded with the run
    assert meta["schedule"]["effective_lr"] == pytest.approx(6.25e-6)
    assert (
        meta["schedule"]["global_batch"] == 16 and meta["train_config"]["model"]["init"] == "none"
    )
    assert meta["schedule"]["left_out_per_epoch"] == 0  # 128 = 8 steps x 16
    assert "peak lr 6.25e-06 (blr 0.0001 x global batch 16 / 256)" in res.output
    live = json.loads((tmp_path / "c" / "dvclive" / "metrics.json").read_text())
    assert live["lr/effective"] == pytest.approx(6.25e-6)
    assert live["time/wall_s"] > 0  # the summary's wall time
    curves = tmp_path / "c" / "dvclive" / "plots" / "images" / "curves.png"
    assert curves.read_bytes()[:4] == b"\x89PNG"  # the curves with no network to view them
    res = runner.invoke(
        app, ["run", str(shards), "-o", str(tmp_path / "d"), "-p", str(params), "--triplet", "semi"]
    )
    assert res.exit_code == 2 and "error: options: train.loss.triplet: 'semi'" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["run", str(tmp_path), "-o", str(tmp_path / "e"), "-p", str(params)])
    assert res.exit_code == 2 and "sizes.json: not found" in res.output


def test_cli_refuses_the_papers_model_without_init(shards, tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("train:\n  optim: {epochs: 1, batch_size: 16}\n  data: {workers: 0}\n")
    res = CliRunner().invoke(
        app, ["run", str(shards), "-o", str(tmp_path / "v"), "-p", str(params)]
    )
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "error: train.model.init: the paper's vit_base_patch16_224 is FSFM-initialised: pass --init "
        "fsfm:PATH/checkpoint-400.pth (FSFM's VF2_ViT-B weights), or --init none to train from random weights"
    ]
    assert not (tmp_path / "v").exists()  # refused before any work


def test_cli_bench_reports_loader_throughput_and_no_gpu(shards):
    res = CliRunner().invoke(
        app,
        [
            "bench",
            str(shards),
            "--workers",
            "0,1",
            "--batches",
            "2",
            "--batch",
            "8",
            "--img-size",
            "32",
        ],
    )
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("loader")]
    assert len(lines) == 2 and all("samples/s" in ln for ln in lines)
    if not torch.cuda.is_available():
        assert "no GPU" in res.output


@pytest.mark.slow
def test_ddp_two_cpu_processes_under_torchrun(shards, tmp_path):
    """Two gloo ranks, uneven val shards per rank: the run must finish (no hang) and validate every frame."""
    params = _params(tmp_path)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "dftrain.cli", "run", str(shards), "-o", str(tmp_path / "ddp"), "-p", str(params),
           "--device", "cpu", "--batch-size", "8", "--workers", "1", "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    _, meta = load_model(tmp_path / "ddp")
    assert meta["metrics"]["val_n"] == 32
    assert meta["train_config"]["optim"]["batch_size"] == 8


def test_resume_drops_metric_rows_of_an_interrupted_epoch(tmp_path):
    tsv = tmp_path / "train" / "loss.tsv"
    tsv.parent.mkdir()
    tsv.write_text("step\tloss\n" + "".join(f"{s}\t{1 / s}\n" for s in range(1, 11)))
    truncate_after(tmp_path, 6)
    assert [int(r.split("\t")[0]) for r in tsv.read_text().splitlines()[1:]] == [1, 2, 3, 4, 5, 6]
