"""The detector: a timm ViT with mean pooling of the patch tokens, `fc_norm` and a linear head
(or any timm model with a linear head: SBI's EfficientNet-B4, or a small CNN for CPU miniatures).

Initialisation reads local files only (nothing is downloaded) and never unpickles code: FSFM's
`checkpoint-400.pth` is loaded with `torch.load(weights_only=True)` plus the few plain classes its
`args` needs, keeping the encoder and checking that exactly `fc_norm.*` and `head.*` are new.
"""

from __future__ import annotations

import argparse
import pathlib
import pickle
import zipfile
from pathlib import Path
from typing import Any

import timm
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from dfprep.core.errors import ConfigError, InputError, first_line
from dftrain.config import EMBEDDINGS, ModelConfig

NEW_KEYS = frozenset({"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"})


def _path_constructor(name: str, module: str, pure: type) -> Any:
    """A stand-in for pathlib's class NAME that the allow-list knows as MODULE.NAME and that
    builds a PURE path (a Windows path loads on Linux too; the value is never used as a file).

    A checkpoint names a class by module and name as its Python had them: `pathlib.PosixPath` up
    to 3.12, `pathlib._local.PosixPath` from 3.13 (pathlib became a package). The allow-list keys
    a class by its own current `__module__`, so the real class would only match one of the two."""

    def build(*parts: Any) -> Any:
        return pure(*parts)

    build.__module__, build.__name__, build.__qualname__ = module, name, name
    return build


# Plain classes a training script's checkpoint may pickle besides tensors: FSFM's `args`, an
# argparse Namespace whose output_dir can be a Path.
SAFE_GLOBALS = [argparse.Namespace] + [
    _path_constructor(name, module, pure)
    for module in ("pathlib", "pathlib._local")
    for name, pure in (
        ("Path", pathlib.PurePath),
        ("PosixPath", pathlib.PurePosixPath),
        ("PurePath", pathlib.PurePath),
        ("PurePosixPath", pathlib.PurePosixPath),
        ("WindowsPath", pathlib.PureWindowsPath),
        ("PureWindowsPath", pathlib.PureWindowsPath),
    )
]


def is_vit(model: nn.Module) -> bool:
    return isinstance(model, VisionTransformer)


def create_model(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """A randomly initialised timm model with a `num_classes` head.

    A ViT (the paper's model: `global_pool='avg'`, the mean of the non-CLS tokens -> fc_norm ->
    head) takes img_size, patch_size and depth; any other timm model (a small CNN such as
    resnet10t, for CPU miniatures: a ViT from random weights learns next to nothing from a few
    hundred crops; SBI's EfficientNet-B4) is built with its own global average pooling and head;
    it starts from random weights (`init` none) or from ImageNet weights of the same architecture
    (`timm:PATH`); FSFM's loader is ViT-only.
    """
    common: dict[str, Any] = dict(
        pretrained=False, num_classes=num_classes, global_pool="avg", drop_path_rate=cfg.drop_path,
        drop_rate=cfg.drop_rate,
    )  # fmt: skip
    vit_kwargs: dict[str, Any] = {"img_size": cfg.img_size}
    if cfg.patch_size:
        vit_kwargs["patch_size"] = cfg.patch_size
    if cfg.depth:
        vit_kwargs["depth"] = cfg.depth
    try:
        try:
            model = timm.create_model(cfg.name, **common, **vit_kwargs)
        except TypeError as e:  # not a ViT: no img_size / patch_size / depth arguments
            if "img_size" not in str(e) and "patch_size" not in str(e) and "depth" not in str(e):
                raise
            model = timm.create_model(cfg.name, **common)
    except (RuntimeError, TypeError, ValueError, AssertionError) as e:
        raise ConfigError(
            f"train.model.name: cannot build {cfg.name!r} ({first_line(e)})"
        ) from None
    if not is_vit(model):
        for key in ("patch_size", "depth"):
            if getattr(cfg, key):
                raise ConfigError(
                    f"train.model.{key}: {getattr(cfg, key)} applies to ViTs only, {cfg.name!r} is not one (use 0)"
                )
        kind = cfg.init.partition(":")[0]
        if kind == "fsfm":
            raise ConfigError(
                f"train.model.init: {cfg.init!r} loads a ViT encoder, {cfg.name!r} is not a ViT (use timm:PATH or none)"
            )
        if not callable(getattr(model, "get_classifier", None)) or not isinstance(
            model.get_classifier(), nn.Linear
        ):
            raise ConfigError(f"train.model.name: {cfg.name!r} has no linear classifier head")
        return model
    if model.pos_embed is None or isinstance(model.fc_norm, nn.Identity):
        raise ConfigError(
            f"train.model.name: {cfg.name!r} is not a timm ViT with an absolute position embedding and fc_norm"
        )
    return model


def init_head(model: nn.Module, std: float) -> None:
    """The fresh head of a ViT (FSFM/MAE: truncated normal of `std`); a CNN keeps timm's own init."""
    if not is_vit(model):
        return
    nn.init.trunc_normal_(model.head.weight, std=std, a=-2 * std, b=2 * std)
    nn.init.zeros_(model.head.bias)


def initialise(model: nn.Module, spec: str, head_std: float) -> str:
    """Apply `fsfm:PATH`, `timm:PATH` (`~` expanded) or `none`; returns a one-line description
    for the log."""
    kind, _, path = spec.partition(":")
    path = str(Path(path).expanduser()) if path else path
    if kind == "fsfm" and not is_vit(model):
        raise ConfigError(
            f"train.model.init: {spec!r} loads a ViT encoder into a model that is not a ViT"
        )
    if kind == "fsfm":
        load_fsfm(model, path)
    elif kind == "timm":
        load_timm(model, path)
    elif kind != "none" or path:
        raise ConfigError(f"train.model.init: {spec!r}: use fsfm:PATH, timm:PATH or none")
    init_head(model, head_std)
    if kind == "none":
        return "random init"
    return (
        f"{kind} encoder from {path}"
        if is_vit(model)
        else f"{kind} weights (all but the head) from {path}"
    )


def safe_torch_load(path: str | Path) -> Any:
    """torch.load that can only build tensors and plain containers (and an argparse Namespace
    with paths, as pure paths)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"checkpoint not found: {p}")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if "GLOBAL" in ln or "nsupported" in ln]
        why = lines[0] if lines else first_line(e)
        raise InputError(f"{p}: refused, the file would need unsafe code to load ({why})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise InputError(f"{p}: not a readable PyTorch checkpoint ({first_line(e)})") from None
    except (IndexError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
        # the unpickler choking on a file that is no pickle at all (a text file, random bytes)
        raise InputError(
            f"{p}: not a PyTorch checkpoint ({type(e).__name__} while unpickling)"
        ) from None


def _state_dict_of(obj: Any, where: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if (
        not isinstance(obj, dict)
        or not obj
        or not all(isinstance(v, torch.Tensor) for v in obj.values())
    ):
        raise InputError(
            f"{where}: no state dict of tensors (expected a dict with 'model' or a plain state dict)"
        )
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def encoder_part(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ViT encoder: cls_token, pos_embed, patch_embed.*, blocks.* (drops norm, heads, decoders)."""
    return {
        k: v
        for k, v in state.items()
        if k in ("cls_token", "pos_embed") or k.startswith(("patch_embed.", "blocks."))
    }


def load_encoder(model: VisionTransformer, state: dict[str, torch.Tensor], where: Path) -> None:
    """Load encoder weights, resizing pos_embed to the model's grid as FSFM does (plain bicubic);
    exactly NEW_KEYS stay fresh."""
    enc = encoder_part(state)
    if "pos_embed" not in enc or "cls_token" not in enc:
        raise InputError(f"{where}: no ViT encoder in the checkpoint (cls_token/pos_embed missing)")
    target = model.state_dict()
    pe = enc["pos_embed"]
    if (
        pe.shape != target["pos_embed"].shape
        and pe.ndim == 3
        and pe.shape[-1] == target["pos_embed"].shape[-1]
    ):
        n_prefix = model.num_prefix_tokens
        old = pe.shape[1] - n_prefix
        side = round(old**0.5)
        if side * side != old:
            raise InputError(f"{where}: pos_embed has {old} patch positions, not a square grid")
        # FSFM's interpolate_pos_embed: plain bicubic (align_corners=False), no antialiasing
        # (timm's default antialias changes a 14x14 -> 7x7 grid by up to 0.21)
        enc["pos_embed"] = resample_abs_pos_embed(
            pe.float(),
            new_size=list(model.patch_embed.grid_size),
            old_size=[side, side],
            num_prefix_tokens=n_prefix,
            interpolation="bicubic",
            antialias=False,
        ).to(pe.dtype)
    wrong = [
        f"{k} {tuple(v.shape)} != {tuple(target[k].shape)}"
        for k, v in enc.items()
        if k in target and v.shape != target[k].shape
    ]
    if wrong:
        raise InputError(f"{where}: shapes do not fit the model: {'; '.join(wrong[:3])}")
    missing, unexpected = model.load_state_dict(enc, strict=False)
    if set(missing) != NEW_KEYS or unexpected:
        detail = (
            sorted(set(missing) - NEW_KEYS)[:4]
            or sorted(unexpected)[:4]
            or sorted(NEW_KEYS - set(missing))
        )
        raise InputError(
            f"{where}: encoder does not match the model ({len(missing)} missing, {len(unexpected)} unexpected keys, e.g. {', '.join(detail)})"
        )


def load_fsfm(model: VisionTransformer, path: str | Path) -> None:
    """FSFM's released pre-training checkpoint (`{'model', 'optimizer', 'epoch', 'scaler', 'args'}`)."""
    p = Path(path).expanduser()
    load_encoder(model, _state_dict_of(safe_torch_load(p), p), p)


def load_timm(model: nn.Module, path: str | Path) -> None:
    """ImageNet weights of the same timm architecture from a local file (.safetensors or .pth/.bin):
    a ViT's encoder, or every weight of another model but its classifier."""
    p = Path(path).expanduser()
    if p.is_dir():
        found = [p / n for n in ("model.safetensors", "pytorch_model.bin") if (p / n).is_file()]
        if not found:
            raise InputError(f"{p}: no model.safetensors or pytorch_model.bin in the directory")
        p = found[0]
    if p.suffix == ".safetensors":
        if not p.is_file():
            raise InputError(f"checkpoint not found: {p}")
        try:
            state = load_file(p)
        except (SafetensorError, OSError) as e:
            raise InputError(f"{p}: not a readable safetensors file ({e})") from None
    else:
        state = _state_dict_of(safe_torch_load(p), p)
    if is_vit(model):
        load_encoder(model, state, p)
    else:
        load_backbone(model, state, p)


def load_backbone(model: nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    """Every weight of a model that is not a ViT except its classifier (the ImageNet head's 1000
    classes are not ours), which keeps timm's fresh init; anything else missing, unexpected or
    of another shape is an error."""
    head = {f"{n}.{k}" for n, m in model.named_modules() if m is model.get_classifier()
            for k in m.state_dict()}  # fmt: skip
    body = {k: v for k, v in state.items() if k not in head}
    target = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} != {tuple(target[k].shape)}"
             for k, v in body.items() if k in target and v.shape != target[k].shape]  # fmt: skip
    if wrong:
        raise InputError(f"{where}: shapes do not fit the model: {'; '.join(wrong[:3])}")
    missing, unexpected = model.load_state_dict(body, strict=False)
    missing = sorted(set(missing) - head)
    if missing or unexpected:
        detail = (missing or sorted(unexpected))[:4]
        raise InputError(
            f"{where}: weights do not match the model ({len(missing)} missing, {len(unexpected)} "
            f"unexpected keys, e.g. {', '.join(detail)}): are they of this architecture?"
        )


class WithEmbedding(nn.Module):
    """Training view of the model: (logits, triplet embedding) from one forward.

    The embedding is the pooled feature after `fc_norm` (`post_norm`: what FSFM's forward_features
    returns, the head's input) or before it (`pre_norm`: the raw mean of the patch tokens).
    A model that is not a ViT has no norm after its pooling: both are its pooled features.
    Wrapping (rather than calling the ViT's parts from outside) keeps DDP's gradient hooks working.
    """

    def __init__(self, vit: nn.Module, embedding: str = "post_norm"):
        super().__init__()
        if embedding not in EMBEDDINGS:
            raise ValueError(f"unknown embedding {embedding!r} (use {', '.join(EMBEDDINGS)})")
        self.vit, self.embedding = vit, embedding

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.vit
        if not is_vit(v):  # a CNN: globally pooled features (no norm after the pooling) -> head
            pooled = v.forward_head(v.forward_features(x), pre_logits=True)
            return v.get_classifier()(pooled), pooled
        pooled = v.pool(v.forward_features(x))
        normed = v.fc_norm(pooled)
        logits = v.head(v.head_drop(normed))
        return logits, normed if self.embedding == "post_norm" else pooled
