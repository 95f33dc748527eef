"""A non-ViT timm model (a small CNN) through the trainer's model, optimiser and checkpoint paths,
and the colour jitter that timm adds when RandAugment is off (`train.aug.color_jitter`)."""

from __future__ import annotations

import pytest
import torch
from torchvision import transforms as T

from dfprep.core.errors import ConfigError
from dftrain.config import AugConfig, ModelConfig, OptimConfig
from dftrain.model import WithEmbedding, create_model, initialise
from dftrain.optim import build_optimizer, param_groups
from dftrain.transforms import train_transform


def _jitters(tf) -> bool:
    """A ColorJitter that changes something (timm keeps a no-op one at strength 0)."""
    return any(
        isinstance(t, T.ColorJitter) and t.brightness is not None
        for t in getattr(tf, "transforms", [])
    )


def test_color_jitter_follows_the_parameter_when_randaugment_is_off():
    # the mini experiment's crops: timm used to add ColorJitter(0.4) silently with auto_augment ''
    assert _jitters(train_transform(AugConfig(auto_augment="", re_prob=0.0), 32))
    assert not _jitters(train_transform(AugConfig(auto_augment="", color_jitter=0.0), 32))
    assert not _jitters(train_transform(AugConfig(), 32))  # RandAugment: no jitter (timm's rule)


def test_a_cnn_trains_through_with_embedding_and_one_optimizer_group_per_decay():
    cfg = ModelConfig(name="resnet10t", img_size=32, init="none", drop_path=0.0)
    model = create_model(cfg, 3)
    assert initialise(model, "none", 2e-5) == "random init"
    logits, emb = WithEmbedding(model)(torch.randn(4, 3, 32, 32))
    assert logits.shape == (4, 3) and emb.shape == (4, model.num_features)
    groups = param_groups(model, 0.05, 0.75)
    assert [g["weight_decay"] for g in groups] == [0.0, 0.05]
    assert all(g["lr_scale"] == 1.0 for g in groups)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    opt = build_optimizer(model, OptimConfig(lr=1e-3), torch.device("cpu"))
    x, y = torch.randn(8, 3, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    first = None
    for _ in range(15):  # it fits a tiny batch: the loss falls
        loss = torch.nn.functional.cross_entropy(WithEmbedding(model)(x)[0], y)
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < first


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"patch_size": 8}, r"^train\.model\.patch_size: 8 applies to ViTs only"),
        ({"depth": 3}, r"^train\.model\.depth: 3 applies to ViTs only"),
        ({"init": "fsfm:/x/checkpoint-400.pth"}, r"^train\.model\.init: .*not a ViT"),
    ],
)
def test_vit_only_settings_on_a_cnn_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        create_model(ModelConfig(name="resnet10t", img_size=32, **kwargs), 2)
