"""Model factory, safe FSFM/timm initialisation, checkpoints and P(fake)."""

from __future__ import annotations

import argparse
import os
import pathlib

import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed

from dfprep.catalogue import train_datasets
from dfprep.core.errors import ConfigError, InputError
from dftrain.checkpoint import checkpoint_meta, load_model, read_meta, save_checkpoint
from dftrain.config import LabelConfig, ModelConfig, TrainConfig
from dftrain.labels import fake_probability, names, resolve
from dftrain.model import WithEmbedding, create_model, initialise, load_fsfm, safe_torch_load
from trainer_helpers import TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fsfm_pretraining_parts(
    dim: int, n_pos: int, dec: int = 512, hidden: int = 4096
) -> dict[str, torch.Tensor]:
    """The non-encoder keys of FSFM's online network (MAE decoder, rep decoder, BYOL heads), real names."""
    t = torch.randn
    parts = {
        "mask_token": t(1, 1, dim),
        "norm.weight": torch.ones(dim),
        "norm.bias": torch.zeros(dim),
        "decoder_embed.weight": t(dec, dim),
        "decoder_embed.bias": t(dec),
        "decoder_pos_embed": t(1, n_pos, dec),
        "decoder_blocks.0.norm1.weight": t(dec),
        "decoder_blocks.0.attn.qkv.weight": t(3 * dec, dec),
        "decoder_norm.weight": t(dec),
        "decoder_pred.weight": t(768, dec),
        "rep_decoder_embed.weight": t(dim, dim),
        "rep_decoder_pos_embed": t(1, n_pos, dim),
        "rep_decoder_blocks.0.mlp.fc1.weight": t(4 * dim, dim),
        "rep_decoder_norm.weight": t(dim),
        "rep_decoder_pred.weight": t(dim, dim),
    }
    for head in ("projector", "predictor"):
        src = dim if head == "projector" else 256
        parts[f"{head}.projection_head.0.weight"] = t(hidden, src)
        parts[f"{head}.projection_head.1.weight"] = t(hidden)
        parts[f"{head}.projection_head.3.weight"] = t(256, hidden)
    return parts


def fsfm_file(
    path: pathlib.Path, encoder: dict[str, torch.Tensor], dim: int, n_pos: int
) -> pathlib.Path:
    """A file laid out like FSFM's released checkpoint-400.pth."""
    model = {**encoder, **fsfm_pretraining_parts(dim, n_pos)}
    args = argparse.Namespace(
        model="fsfm_vit_base_patch16", blr=1.5e-4, epochs=400, output_dir=pathlib.PosixPath("/out")
    )
    ckpt = {
        "model": model,
        "optimizer": {
            "state": {},
            "param_groups": [{"lr": 1e-6, "weight_decay": 0.05, "params": [0, 1]}],
        },
        "epoch": 399,
        "scaler": {
            "scale": 65536.0,
            "growth_factor": 2.0,
            "backoff_factor": 0.5,
            "growth_interval": 2000,
            "_growth_tracker": 10,
        },
        "args": args,
    }
    torch.save(ckpt, path)
    return path


def test_fsfm_vit_b16_real_key_layout(tmp_path):
    model = create_model(ModelConfig(), 2)  # vit_base_patch16_224, global_pool avg
    assert model.pos_embed.shape == (1, 197, 768)
    encoder = {
        k: torch.randn(v.shape, dtype=torch.float16)
        for k, v in model.state_dict().items()
        if k in ("cls_token", "pos_embed") or k.startswith(("patch_embed.", "blocks."))
    }
    assert len([k for k in encoder if k.startswith("blocks.11.")]) == 12
    path = fsfm_file(tmp_path / "checkpoint-400.pth", encoder, 768, 197)
    desc = initialise(model, f"fsfm:{path}", 2e-5)
    assert "fsfm" in desc
    sd = model.state_dict()
    for k in (
        "cls_token",
        "pos_embed",
        "patch_embed.proj.weight",
        "blocks.0.attn.qkv.weight",
        "blocks.11.mlp.fc2.bias",
    ):
        torch.testing.assert_close(sd[k], encoder[k].float())
    assert float(sd["head.weight"].abs().max()) <= 4e-5 and float(sd["head.weight"].std()) > 0
    assert torch.count_nonzero(sd["head.bias"]) == 0
    assert torch.equal(sd["fc_norm.weight"], torch.ones(768)) and torch.equal(
        sd["fc_norm.bias"], torch.zeros(768)
    )
    assert not any(
        k.startswith(("decoder", "rep_decoder", "projector", "predictor", "mask_token")) for k in sd
    )


def _tiny_encoder(img_size: int) -> dict[str, torch.Tensor]:
    src = create_model(ModelConfig(**{**TINY.__dict__, "img_size": img_size}), 2)
    return {
        k: v.clone()
        for k, v in src.state_dict().items()
        if k in ("cls_token", "pos_embed") or k.startswith(("patch_embed.", "blocks."))
    }


def fsfm_interpolated(pe: torch.Tensor, old: int, new: int) -> torch.Tensor:
    """FSFM's util/pos_embed.py interpolate_pos_embed, restated: the cls position kept, the
    patch grid resized by plain bicubic interpolation (align_corners=False, no antialias)."""
    grid = pe[:, 1:].reshape(1, old, old, -1).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(
        grid, size=(new, new), mode="bicubic", align_corners=False
    )
    return torch.cat([pe[:, :1], grid.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)


@pytest.mark.parametrize(("src", "old", "new"), [(16, 2, 4), (64, 8, 4)])
def test_fsfm_pos_embed_is_interpolated_to_the_model_grid_as_fsfm_does(tmp_path, src, old, new):
    """Up (2x2 -> 4x4) and down (8x8 -> 4x4, where timm's default antialias would differ)."""
    enc = _tiny_encoder(src)
    torch.manual_seed(0)  # FSFM's sin-cos table has values of order 1, not timm's 0.02 init
    enc["pos_embed"] = torch.randn_like(enc["pos_embed"])
    path = fsfm_file(tmp_path / "c.pth", enc, 192, old * old + 1)
    model = create_model(TINY, 3)  # img_size 32, patch 8: a 4x4 grid
    load_fsfm(model, path)
    expected = fsfm_interpolated(enc["pos_embed"], old, new)
    torch.testing.assert_close(model.pos_embed.detach(), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.pos_embed.detach()[:, :1], enc["pos_embed"][:, :1])
    antialiased = resample_abs_pos_embed(
        enc["pos_embed"], new_size=[new, new], old_size=[old, old], num_prefix_tokens=1
    )
    gap = float((antialiased - expected).abs().max())
    assert gap > (0.1 if new < old else 1e-2), gap  # timm's default is not FSFM's either way


def _pickled(path: pathlib.Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(path) as z:
        return z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))


def test_checkpoints_naming_pathlib_classes_of_any_python_load(tmp_path, monkeypatch):
    """FSFM's args.output_dir can be a Path: Python <= 3.12 pickles it as pathlib.PosixPath,
    3.13 as pathlib._local.PosixPath (pathlib became a package). Both load on either, with the
    paths as pure paths; 3.13 is simulated by giving PosixPath the module name it has there."""
    import sys
    import types

    enc = _tiny_encoder(32)
    before = fsfm_file(tmp_path / "py312.pth", enc, 192, 17)  # this Python's naming
    monkeypatch.setattr(pathlib.PosixPath, "__module__", "pathlib._local")
    if "pathlib._local" not in sys.modules:
        monkeypatch.setitem(
            sys.modules, "pathlib._local", types.SimpleNamespace(PosixPath=pathlib.PosixPath)
        )
    after = fsfm_file(tmp_path / "py313.pth", enc, 192, 17)
    assert b"pathlib._local" in _pickled(after)
    for path in (before, after):  # under the 3.13 naming
        load_fsfm(create_model(TINY, 2), path)
        assert safe_torch_load(path)["args"].output_dir == pathlib.PurePosixPath("/out")
    monkeypatch.undo()
    if sys.version_info < (3, 13):
        assert b"pathlib._local" not in _pickled(before)
    load_fsfm(create_model(TINY, 2), after)  # a 3.13 file read by this Python
    torch.save({"model": enc, "args": argparse.Namespace(out=pathlib.PureWindowsPath("C:/x"))},
               tmp_path / "win.pth")  # fmt: skip
    assert safe_torch_load(tmp_path / "win.pth")["args"].out == pathlib.PureWindowsPath("C:/x")


def test_init_paths_expand_the_home_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    enc = _tiny_encoder(32)
    fsfm_file(tmp_path / "checkpoint-400.pth", enc, 192, 17)
    save_file({k: v.contiguous() for k, v in enc.items()}, str(tmp_path / "in1k.safetensors"))
    for spec in ("fsfm:~/checkpoint-400.pth", "timm:~/in1k.safetensors"):
        model = create_model(TINY, 2)
        assert str(tmp_path) in initialise(model, spec, 2e-5)
        torch.testing.assert_close(model.state_dict()["blocks.0.attn.qkv.weight"],
                                   enc["blocks.0.attn.qkv.weight"])  # fmt: skip


def test_fsfm_module_prefix_and_bare_state_dict(tmp_path):
    enc = _tiny_encoder(32)
    torch.save({f"module.{k}": v for k, v in enc.items()}, tmp_path / "bare.pth")
    model = create_model(TINY, 2)
    load_fsfm(model, tmp_path / "bare.pth")
    torch.testing.assert_close(
        model.blocks[1].attn.proj.weight.detach(), enc["blocks.1.attn.proj.weight"]
    )


def test_malicious_checkpoint_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    enc = _tiny_encoder(32)
    torch.save({"model": enc, "epoch": 1, "args": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(InputError, match=r"evil\.pth: refused"):
        load_fsfm(create_model(TINY, 2), tmp_path / "evil.pth")
    assert not marker.exists()


def test_encoder_that_does_not_fit_is_refused(tmp_path):
    enc = {k: v for k, v in _tiny_encoder(32).items() if not k.startswith("blocks.1.")}
    torch.save({"model": enc}, tmp_path / "short.pth")
    with pytest.raises(InputError, match="encoder does not match"):
        load_fsfm(create_model(TINY, 2), tmp_path / "short.pth")
    wide = _tiny_encoder(32)
    wide["blocks.0.mlp.fc1.weight"] = torch.zeros(10, 192)
    torch.save({"model": wide}, tmp_path / "wide.pth")
    with pytest.raises(InputError, match=r"blocks\.0\.mlp\.fc1\.weight"):
        load_fsfm(create_model(TINY, 2), tmp_path / "wide.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"junk\.pth"):
        load_fsfm(create_model(TINY, 2), tmp_path / "junk.pth")
    with pytest.raises(InputError, match="not found"):
        load_fsfm(create_model(TINY, 2), tmp_path / "absent.pth")


def test_timm_imagenet_weights_from_local_safetensors(tmp_path):
    src = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2
    )  # token pool, 1000 classes
    save_file(
        {k: v.contiguous() for k, v in src.state_dict().items()},
        str(tmp_path / "model.safetensors"),
    )
    model = create_model(TINY, 2)
    initialise(model, f"timm:{tmp_path}", 2e-5)
    torch.testing.assert_close(
        model.patch_embed.proj.weight.detach(), src.patch_embed.proj.weight.detach()
    )
    torch.testing.assert_close(
        model.blocks[1].mlp.fc2.weight.detach(), src.blocks[1].mlp.fc2.weight.detach()
    )
    assert model.head.weight.shape == (2, 192)


def test_unknown_model_or_init_is_a_config_error():
    with pytest.raises(ConfigError, match="no_such_vit"):
        create_model(ModelConfig(name="no_such_vit"), 2)
    with pytest.raises(ConfigError, match="init"):
        initialise(create_model(TINY, 2), "imagenet", 2e-5)


@pytest.mark.parametrize(
    ("labels", "n"),
    [
        (LabelConfig("binary"), 2),
        (LabelConfig("category"), 3),
        (LabelConfig("dataset"), 6),
        (LabelConfig("dataset", ("ffpp", "celebdf")), 3),
    ],
)
def test_head_size_per_label_mode(labels, n):
    classes = names(labels)
    assert len(classes) == n and classes[0] == "real"
    model = create_model(TINY, len(classes))
    logits, emb = WithEmbedding(model).eval()(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, n) and emb.shape == (2, 192)


def test_embedding_view_matches_the_plain_forward():
    model = create_model(TINY, 3).eval()
    with torch.no_grad():  # a non-trivial fc_norm, so that before and after it differ
        model.fc_norm.weight.uniform_(0.5, 2.0)
        model.fc_norm.bias.uniform_(-1.0, 1.0)
    x = torch.randn(3, 3, 32, 32)
    mean = model.forward_features(x)[:, 1:].mean(1)  # mean of the non-CLS tokens
    logits, emb = WithEmbedding(model)(x)  # default: post_norm, FSFM's forward_features output
    torch.testing.assert_close(logits, model(x))
    torch.testing.assert_close(emb, model.fc_norm(mean))
    torch.testing.assert_close(model.head(emb), logits)  # exactly what the FC head reads
    logits_pre, emb_pre = WithEmbedding(model, "pre_norm")(x)
    torch.testing.assert_close(logits_pre, logits)
    torch.testing.assert_close(emb_pre, mean)
    assert not torch.allclose(emb_pre, emb)
    with pytest.raises(ValueError, match="unknown embedding"):
        WithEmbedding(model, "cls")


def test_attribution_probabilities_sum_to_p_fake():
    logits = torch.randn(16, 6) * 3
    probs = torch.softmax(logits, -1)
    p_fake = fake_probability(logits)
    torch.testing.assert_close(probs.sum(-1), torch.ones(16))
    torch.testing.assert_close(p_fake, probs[:, 1:].sum(-1))
    torch.testing.assert_close(p_fake, 1 - probs[:, 0])
    assert bool(((p_fake >= 0) & (p_fake <= 1)).all())
    binary = torch.randn(4, 2)
    torch.testing.assert_close(fake_probability(binary), torch.softmax(binary, -1)[:, 1])


def test_checkpoint_round_trip_by_path_alone(tmp_path):
    cfg = TrainConfig(model=TINY, labels=LabelConfig("dataset"))
    model = create_model(TINY, 6).eval()
    save_checkpoint(
        tmp_path / "run" / "checkpoints" / "best", model, checkpoint_meta(cfg, 3, {"val_loss": 0.5})
    )
    loaded, meta = load_model(tmp_path / "run")  # a run directory resolves to checkpoints/best
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x))
    assert meta["labels"]["class_names"] == names(cfg.labels)
    assert meta["preprocess"]["img_size"] == 32 and meta["epoch"] == 3
    assert read_meta(tmp_path / "run" / "checkpoints" / "best")["metrics"] == {"val_loss": 0.5}
    with pytest.raises(InputError, match="not a dftrain checkpoint"):
        load_model(tmp_path)


def test_a_loaded_checkpoint_tells_timm_its_preprocessing_and_timm_alone_rebuilds_it(tmp_path):
    import json

    from timm.data import resolve_data_config

    from dftrain.checkpoint import timm_kwargs

    cfg = TrainConfig(model=TINY)
    model = create_model(TINY, 2).eval()
    best = tmp_path / "run" / "checkpoints" / "best"
    save_checkpoint(best, model, checkpoint_meta(cfg, 1, {"val_loss": 0.5}))
    loaded, meta = load_model(best)
    data = resolve_data_config(model=loaded)  # what timm tooling would feed the model
    assert data["input_size"] == (3, 32, 32) and data["crop_pct"] == 1.0
    assert data["mean"] == cfg.aug.mean and data["std"] == cfg.aug.std  # VGGFace2's, not 0.5
    assert loaded.pretrained_cfg["label_names"] == ["real", "fake"]
    x = torch.randn(2, 3, 32, 32)
    rebuilt = timm.create_model(**timm_kwargs(meta, best / "model.safetensors")).eval()
    torch.testing.assert_close(rebuilt(x), model(x))
    assert resolve_data_config(model=rebuilt) == data
    # the recipe of docs/train.md: config.json and the safetensors file, timm alone
    c = json.loads((best / "config.json").read_text())
    pre, m = c["preprocess"], c["model"]
    plain = timm.create_model(
        m["name"], pretrained=True, num_classes=m["num_classes"], global_pool="avg",
        img_size=m["img_size"], patch_size=m["patch_size"], depth=m["depth"],
        pretrained_cfg_overlay=dict(
            file=str(best / "model.safetensors"), custom_load=False, num_classes=m["num_classes"],
            input_size=(3, pre["img_size"], pre["img_size"]), mean=tuple(pre["mean"]),
            std=tuple(pre["std"]), crop_pct=pre["crop_pct"], interpolation=pre["interpolation"],
        ),
    ).eval()  # fmt: skip
    torch.testing.assert_close(plain(x), model(x))
    assert resolve_data_config(model=plain) == data


def test_dataset_classes_follow_the_catalogue_order():
    resolved = resolve(LabelConfig("dataset"))
    assert resolved.datasets == tuple(train_datasets())
    assert names(resolved) == ["real", *train_datasets()]
    assert resolve(LabelConfig("dataset", ("dfdc", "ffpp"))).datasets == ("dfdc", "ffpp")
