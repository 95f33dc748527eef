"""Fixtures of the trainer's reliability tests: a balanced set, an untrained checkpoint, an
extract output with test videos (each made once per module that asks for it)."""

from __future__ import annotations

import pytest
import torch

from dfprep.adapters import VideoRow
from dfprep.config import Params, replace
from dfprep.extract import run_extract
from dfprep.manifest import rows_to_table, write_manifest
from dfprep.synth import make_face_video
from dftrain.bench.synthetic import write_synthetic_shards
from dftrain.checkpoint import checkpoint_meta, save_checkpoint
from dftrain.config import LabelConfig, TrainConfig
from dftrain.labels import names
from dftrain.model import create_model
from trainer_helpers import TINY


@pytest.fixture(scope="module")
def balanced(tmp_path_factory):
    """A tiny balance output: train 2 x 32 samples, val 16, 32 px."""
    root = tmp_path_factory.mktemp("balanced")
    write_synthetic_shards(root, {"train": [32, 32], "val": [16]}, size=32, seed=0)
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained binary TINY checkpoint (checkpoints/best's layout)."""
    torch.manual_seed(0)
    cfg = TrainConfig(model=TINY, labels=LabelConfig(mode="binary"))
    vit = create_model(TINY, len(names(cfg.labels)))
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "best", vit, checkpoint_meta(cfg, 0, {})
    )


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """An extract output of two 1 s test videos of `ffpp`, a fake and a real."""
    base = tmp_path_factory.mktemp("ex")
    make_face_video(base / "v" / "a.mp4", fps=5, size=(160, 128), seconds=1.0, seed=1)
    make_face_video(base / "v" / "b.mp4", fps=5, size=(160, 128), seconds=1.0, seed=2)
    rows = [
        VideoRow("a.mp4", "test", 1, "Deepfakes", "FS"),
        VideoRow("b.mp4", "test", 0, "real", "real"),
    ]
    m = write_manifest(rows_to_table("ffpp", base / "v", rows), base / "m.parquet")
    run_extract([m], base / "out", replace(Params(), run=replace(Params().run, scheduler="inline")))
    return base / "out"
