"""The trainer's inputs: sizes.json checked against the tars, resume bound to its data, checkpoint
damage noticed (weights checksum, config.json validated like params.yaml), one-line CLI errors."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dfprep.core.errors import ConfigError, InputError
from dftrain.bench.synthetic import write_synthetic_shards
from dftrain.checkpoint import load_model
from dftrain.cli import app
from dftrain.config import DataConfig, OptimConfig, TrainConfig
from dftrain.data import read_splits
from dftrain.train import run
from trainer_helpers import TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = TrainConfig(
    model=TINY,
    optim=OptimConfig(epochs=2, batch_size=16, warmup_epochs=0.5, lr=5e-4),
    data=DataConfig(workers=0, shuffle_buffer=64, shuffle_initial=16),
)


def _balanced(root, seed=0, per_shard=32):
    write_synthetic_shards(root, {"train": [per_shard] * 2, "val": [16]}, size=32, seed=seed)
    return root


def _one_error_line(res) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


# ---- 5. sizes.json against the tars ---------------------------------------------------------


@pytest.mark.parametrize("factor", [10, 0.03])
def test_sizes_json_counts_are_checked_against_the_tars(balanced, tmp_path, factor):
    copy = shutil.copytree(balanced, tmp_path / "b")
    sizes = json.loads((copy / "sizes.json").read_text())
    name = sorted(sizes["train"])[0]
    sizes["train"][name] = max(1, int(sizes["train"][name] * factor))
    (copy / "sizes.json").write_text(json.dumps(sizes))
    with pytest.raises(
        InputError, match=rf"{name}: 32 samples, .*sizes.json says {sizes['train'][name]}"
    ):
        read_splits(copy)
    params = tmp_path / "p.yaml"
    params.write_text(
        "train:\n  model: {name: vit_tiny_patch16_224, img_size: 32, patch_size: 8, depth: 2}\n"
    )
    line = _one_error_line(
        _cli("run", copy, "--out", tmp_path / "r", "-p", params, "--no-progress")
    )
    assert "sizes.json says" in line and not (tmp_path / "r").exists()
    assert read_splits(balanced)["train"].total == 64  # the intact directory passes


# ---- 6. resume identity -------------------------------------------------------------------


def test_resume_on_a_different_balanced_directory_is_refused(balanced, tmp_path):
    other = _balanced(tmp_path / "other", seed=1, per_shard=40)  # another balance: other sizes
    run(balanced, tmp_path / "r", CFG, progress=False, stop_after=1)
    meta = json.loads((tmp_path / "r" / "checkpoints" / "last" / "config.json").read_text())
    assert meta["data"]["dir"] == str(balanced.resolve()) and len(meta["data"]["identity"]) == 16
    with pytest.raises(ConfigError, match=r"other data .*resume with the same balanced directory"):
        run(other, tmp_path / "r", CFG, resume=True, progress=False)
    reselected = shutil.copytree(balanced, tmp_path / "reselected")  # same shards, other selection
    (reselected / "selection.parquet").write_bytes(b"another selection")
    with pytest.raises(ConfigError, match=r"other data"):
        run(reselected, tmp_path / "r", CFG, resume=True, progress=False)
    moved = shutil.copytree(balanced, tmp_path / "moved")  # the same data elsewhere: fine
    done = run(moved, tmp_path / "r", CFG, resume=True, progress=False)
    assert [h["epoch"] for h in done.history] == [0, 1]


# ---- 7. checkpoint integrity ------------------------------------------------------------------


def test_flipped_weight_bytes_are_refused(checkpoint, tmp_path):
    copy = shutil.copytree(checkpoint, tmp_path / "c")
    w = copy / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-100] ^= 0xFF  # inside the last tensor: still a valid safetensors file
    w.write_bytes(bytes(data))
    with pytest.raises(InputError, match="checksum differs from weights_sha256"):
        load_model(copy)
    load_model(checkpoint)  # the intact one loads


def _edit(meta: dict, what: str) -> None:
    if what == "swapped class_names":
        meta["labels"]["class_names"] = meta["labels"]["class_names"][::-1]
    elif what == "labels.mode banana":
        meta["labels"]["mode"] = "banana"
    elif what == "train_config labels.mode banana":
        meta["train_config"]["labels"]["mode"] = "banana"
    elif what == "crop_pct 0":
        meta["preprocess"]["crop_pct"] = 0
    elif what == "train_config crop_pct 0":
        meta["train_config"]["aug"]["crop_pct"] = 0
    elif what == "no preprocess":
        del meta["preprocess"]
    elif what == "no checksum":
        del meta["weights_sha256"]
    elif what == "num_classes":
        meta["model"]["num_classes"] = 3


@pytest.mark.parametrize(
    "what, needle",
    [
        ("swapped class_names", "labels.class_names"),
        ("labels.mode banana", "labels.mode"),
        ("train_config labels.mode banana", "train.labels.mode"),
        ("crop_pct 0", "preprocess.crop_pct"),
        ("train_config crop_pct 0", "train.aug.crop_pct"),
        ("no preprocess", "missing preprocess"),
        ("no checksum", "missing weights_sha256"),
        ("num_classes", "model.num_classes"),
    ],
)
def test_an_edited_config_json_is_refused(checkpoint, tmp_path, what, needle):
    copy = shutil.copytree(checkpoint, tmp_path / "c")
    meta = json.loads((copy / "config.json").read_text())
    _edit(meta, what)
    (copy / "config.json").write_text(json.dumps(meta))
    with pytest.raises((InputError, ConfigError), match=needle.replace(".", r"\.")):
        load_model(copy)


# ---- 8 / 9. one-line errors of dftrain eval, run --init, bench, predict ---------------------------


@pytest.mark.parametrize("label", [-1, 2])
def test_eval_on_extract_output_with_labels_outside_0_1(extracted, checkpoint, tmp_path, label):
    copy = shutil.copytree(extracted, tmp_path / "x")
    vt = next((copy / "meta").glob("*.videos.parquet"))
    t = pq.read_table(vt)
    labels = t["label"].to_pylist()
    labels[0] = label
    pq.write_table(
        t.set_column(
            t.schema.get_field_index("label"),
            "label",
            __import__("pyarrow").array(labels, t.schema.field("label").type),
        ),
        vt,
    )
    line = _one_error_line(
        _cli(
            "eval",
            checkpoint,
            "--data",
            f"ffpp={copy}",
            "--out",
            tmp_path / "e",
            "--device",
            "cpu",
            "--workers",
            "0",
            "--no-progress",
        )
    )
    assert f"label {label}" in line and "0 (real) or 1 (fake)" in line


def test_eval_on_a_config_json_without_preprocess(extracted, checkpoint, tmp_path):
    copy = shutil.copytree(checkpoint, tmp_path / "c [x]")
    meta = json.loads((copy / "config.json").read_text())
    del meta["preprocess"]
    (copy / "config.json").write_text(json.dumps(meta))
    line = _one_error_line(
        _cli(
            "eval",
            copy,
            "--data",
            f"ffpp={extracted}",
            "--out",
            tmp_path / "e",
            "--device",
            "cpu",
            "--workers",
            "0",
            "--no-progress",
        )
    )
    assert "c [x]/config.json: missing preprocess" in line
    f = tmp_path / "file"
    f.write_text("x")
    line = _one_error_line(
        _cli("eval", checkpoint, "--data", f"ffpp={extracted}", "--out", f, "--device", "cpu")
    )
    assert "exists and is not a directory" in line


def test_run_with_a_text_file_as_init_and_out_as_a_file(balanced, tmp_path):
    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    params = tmp_path / "p.yaml"
    params.write_text(
        "train:\n  model: {name: vit_tiny_patch16_224, img_size: 32, patch_size: 8, depth: 2}\n"
        "  optim: {epochs: 1, batch_size: 16}\n  data: {workers: 0}\n"
    )
    line = _one_error_line(
        _cli(
            "run",
            balanced,
            "--out",
            tmp_path / "r",
            "-p",
            params,
            "--init",
            f"timm:{text}",
            "--no-progress",
        )
    )
    assert str(text) in line and "not a PyTorch checkpoint" in line
    (tmp_path / "f").write_text("x")
    line = _one_error_line(
        _cli("run", balanced, "--out", tmp_path / "f", "-p", params, "--no-progress")
    )
    assert "exists and is not a directory" in line


def test_bench_worker_counts_and_predict_on_a_text_file(checkpoint, tmp_path):
    assert "bench.workers: -3 is not in" in _one_error_line(_cli("bench", "--workers", "-3"))
    assert "bench.workers: expected an integer" in _one_error_line(
        _cli("bench", "--workers", "two")
    )
    notes = tmp_path / "file.txt"
    notes.write_text("just text\n" * 100)
    res = _cli("predict", checkpoint, notes, "--json", "--device", "cpu")
    assert res.exit_code == 1
    (video,) = json.loads(res.stdout)["videos"]
    assert video["verdict"] == "unreadable" and "a text file, not a video" in video["error"]


def test_resume_check_keeps_working_with_an_older_meta_without_data(balanced, tmp_path):
    """Checkpoints written before the data identity existed still resume (nothing to compare)."""
    cfg = dataclasses.replace(CFG, optim=dataclasses.replace(CFG.optim, epochs=2))
    run(balanced, tmp_path / "r", cfg, progress=False, stop_after=1)
    cfg_path = tmp_path / "r" / "checkpoints" / "last" / "config.json"
    meta = json.loads(cfg_path.read_text())
    del meta["data"]
    cfg_path.write_text(json.dumps(meta))
    assert len(run(balanced, tmp_path / "r", cfg, resume=True, progress=False).history) == 2
