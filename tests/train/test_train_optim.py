"""Layer-decay parameter groups, the warm-up + cosine schedule, and the trainer's params."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import yaml

from dfprep.core.errors import ConfigError
from dftrain.config import (
    VGGFACE2_MEAN,
    LossConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    check_config,
    effective_lr,
    load_train_params,
    resolve_init,
    train_defaults,
    with_overrides,
)
from dftrain.model import create_model
from dftrain.optim import build_optimizer, layer_id, lr_at, param_groups, set_lr
from trainer_helpers import TINY


def _where(groups):
    return {n: (g["layer"], g["lr_scale"], g["weight_decay"]) for g in groups for n in g["names"]}


def test_layer_ids_follow_the_vit_recipe():
    assert [layer_id(n, 13) for n in ("cls_token", "pos_embed", "patch_embed.proj.weight")] == [
        0,
        0,
        0,
    ]
    assert layer_id("blocks.0.attn.qkv.weight", 13) == 1
    assert layer_id("blocks.11.mlp.fc2.bias", 13) == 12
    assert layer_id("fc_norm.weight", 13) == 13 and layer_id("head.bias", 13) == 13


def test_groups_scales_and_weight_decay_on_a_two_block_vit():
    model = create_model(TINY, 2)
    groups = param_groups(model, weight_decay=0.05, layer_decay=0.75)
    w = _where(groups)
    top = 3  # depth 2 -> layers 0 (embeddings), 1, 2 (blocks), 3 (fc_norm, head)
    assert w["cls_token"] == (0, 0.75**top, 0.0)
    assert w["pos_embed"] == (0, 0.75**top, 0.0)
    assert w["patch_embed.proj.weight"] == (0, 0.75**top, 0.05)
    assert w["patch_embed.proj.bias"] == (0, 0.75**top, 0.0)
    assert w["blocks.0.attn.qkv.weight"] == (1, 0.75**2, 0.05)
    assert w["blocks.0.norm1.weight"] == (1, 0.75**2, 0.0)
    assert w["blocks.1.mlp.fc1.weight"] == (2, 0.75, 0.05)
    assert w["blocks.1.mlp.fc1.bias"] == (2, 0.75, 0.0)
    assert w["fc_norm.weight"] == (3, 1.0, 0.0)
    assert w["head.weight"] == (3, 1.0, 0.05)
    assert w["head.bias"] == (3, 1.0, 0.0)
    names = [n for g in groups for n in g["names"]]
    assert sorted(names) == sorted(
        n for n, _ in model.named_parameters()
    )  # each parameter exactly once


def test_optimizer_applies_the_scales():
    model = create_model(TINY, 2)
    opt = build_optimizer(model, OptimConfig(lr=1e-3, layer_decay=0.5), torch.device("cpu"))
    assert isinstance(opt, torch.optim.AdamW)
    set_lr(opt, 1e-3)
    lrs = {n: g["lr"] for g in opt.param_groups for n in g["names"]}
    assert lrs["head.weight"] == pytest.approx(1e-3)
    assert lrs["blocks.1.attn.proj.weight"] == pytest.approx(5e-4)
    assert lrs["blocks.0.attn.proj.weight"] == pytest.approx(2.5e-4)
    assert lrs["pos_embed"] == pytest.approx(1.25e-4)
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)


def test_schedule_values_at_chosen_steps():
    base, low, total, warm = 1e-4, 1e-6, 3000, 500  # e.g. 30 epochs of 100 steps, 5 warm-up epochs
    assert lr_at(0, total, warm, base, low) == 0.0
    assert lr_at(250, total, warm, base, low) == pytest.approx(5e-5)
    assert lr_at(499, total, warm, base, low) == pytest.approx(base * 499 / 500)
    assert lr_at(500, total, warm, base, low) == pytest.approx(base)
    assert lr_at(1750, total, warm, base, low) == pytest.approx((base + low) / 2)
    assert lr_at(1125, total, warm, base, low) == pytest.approx(
        low + (base - low) * 0.5 * (1 + math.cos(math.pi / 4))
    )
    assert lr_at(3000, total, warm, base, low) == pytest.approx(low)
    assert lr_at(0, 100, 0, base, low) == pytest.approx(base)  # no warm-up starts at the peak
    steps = [lr_at(s, total, warm, base, low) for s in range(500, 3001, 50)]
    assert all(a >= b for a, b in itertools.pairwise(steps))


def test_defaults_are_the_papers():
    cfg = TrainConfig()
    assert cfg.model.name == "vit_base_patch16_224" and cfg.model.drop_path == 0.1
    o = cfg.optim
    assert (o.blr, o.weight_decay, o.layer_decay, o.warmup_epochs, o.epochs, o.batch_size) == (
        1e-4,  # "a basic learning rate of 0.0001": blr, lr = blr x global batch / 256
        0.05,
        0.75,
        5.0,
        30,
        64,
    )
    assert cfg.aug.auto_augment == "rand-m9-mstd0.5-inc1" and cfg.aug.re_prob == 0.25
    assert cfg.aug.mean == VGGFACE2_MEAN and cfg.loss.triplet == "batch_all"
    assert o.lr == 0.0  # unset: the blr rule applies
    assert (cfg.loss.embedding, cfg.loss.reduction) == ("post_norm", "batch")
    assert cfg.model.init == ""  # unset: required for the paper's model (resolve_init)


def test_effective_lr_is_blr_times_global_batch_over_256_unless_lr_is_set():
    o = OptimConfig()
    assert effective_lr(o, 1) == (pytest.approx(2.5e-5), 64, "blr 0.0001 x global batch 64 / 256")
    assert effective_lr(o, 4)[:2] == (pytest.approx(1e-4), 256)  # 4 processes x 64
    assert effective_lr(OptimConfig(batch_size=32, blr=2.5e-4), 2)[0] == pytest.approx(6.25e-5)
    fixed = OptimConfig(lr=3e-4)
    assert effective_lr(fixed, 8) == (3e-4, 512, "optim.lr 0.0003, as given")
    with pytest.raises(
        ConfigError, match=r"train\.optim\.min_lr: 1e-06 is above the peak lr 7\.8125e-07"
    ):
        effective_lr(OptimConfig(batch_size=2), 1)
    with pytest.raises(ConfigError, match=r"optim\.blr"):
        check_config(TrainConfig(optim=OptimConfig(blr=0.0)))
    with pytest.raises(ConfigError, match=r"optim\.min_lr"):
        check_config(TrainConfig(optim=OptimConfig(lr=1e-7)))


def test_the_papers_model_needs_an_explicit_init():
    with pytest.raises(
        ConfigError, match=r"--init fsfm:PATH/checkpoint-400\.pth .* or --init none"
    ) as e:
        resolve_init(TrainConfig())
    assert "\n" not in str(e.value)
    for init in ("none", "fsfm:w/checkpoint-400.pth", "timm:w.safetensors"):
        cfg = TrainConfig(model=ModelConfig(init=init))
        assert resolve_init(cfg) == cfg
    tiny = TrainConfig(model=ModelConfig(name="vit_tiny_patch16_224"))
    assert resolve_init(tiny).model.init == "none"  # other architectures: unset = random init


def test_loss_choices_are_validated():
    with pytest.raises(ConfigError, match=r"train\.loss\.embedding: 'cls'"):
        check_config(TrainConfig(loss=LossConfig(embedding="cls")))
    with pytest.raises(ConfigError, match=r"train\.loss\.reduction: 'sum'"):
        check_config(TrainConfig(loss=LossConfig(reduction="sum")))


def test_load_train_params_reads_the_train_section(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text(
        "decode: {fps: 1.0}\ntrain:\n  optim: {lr: 0.0002, epochs: 3}\n  labels: {mode: dataset, datasets: [ffpp, dfdc]}\n"
    )
    cfg = load_train_params(p)
    assert cfg.optim.lr == 2e-4 and cfg.optim.epochs == 3 and cfg.optim.batch_size == 64
    assert cfg.labels.datasets == ("ffpp", "dfdc")
    p.write_text("train:\n  optim: {learning_rate: 0.1}\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        load_train_params(p)
    p.write_text("train:\n  loss: {triplet: semi_hard}\n")
    with pytest.raises(ConfigError, match=r"params\.yaml: train\.loss\.triplet"):
        load_train_params(p)
    assert load_train_params(None) == TrainConfig()


def test_mixup_with_a_triplet_loss_is_refused():
    with pytest.raises(ConfigError, match="mixup"):
        check_config(TrainConfig(loss=LossConfig(triplet="hard", mixup=0.8)))
    ok = check_config(TrainConfig(loss=LossConfig(triplet="none", mixup=0.8, cutmix=1.0)))
    assert ok.loss.mixup == 0.8


def test_overrides_by_dotted_name():
    cfg = with_overrides(
        TrainConfig(),
        **{"optim.lr": 3e-4, "labels.mode": "category", "seed": 5, "model.name": None},
    )
    assert (cfg.optim.lr, cfg.labels.mode, cfg.seed, cfg.model.name) == (
        3e-4,
        "category",
        5,
        "vit_base_patch16_224",
    )
    with pytest.raises(ConfigError, match="init"):
        with_overrides(TrainConfig(), **{"model.init": "fsfm"})  # needs :PATH


def test_train_defaults_round_trip_through_params_yaml(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"train": train_defaults()}))
    assert load_train_params(p) == TrainConfig()
