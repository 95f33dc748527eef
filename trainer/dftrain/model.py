"""The detector: a timm ViT with mean pooling of the patch tokens, `fc_norm` and a linear head.

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
# Plain classes a training script's checkpoint may pickle besides tensors (FSFM's `args`).
SAFE_GLOBALS = [
    argparse.Namespace,
    pathlib.PosixPath,
    pathlib.PurePosixPath,
    pathlib.WindowsPath,
    pathlib.PureWindowsPath,
]


def create_model(cfg: ModelConfig, num_classes: int) -> VisionTransformer:
    """Randomly initialised ViT (`global_pool='avg'`: mean of the non-CLS tokens -> fc_norm -> head)."""
    kwargs: dict[str, Any] = dict(
        pretrained=False,
        num_classes=num_classes,
        global_pool="avg",
        drop_path_rate=cfg.drop_path,
        img_size=cfg.img_size,
    )
    if cfg.patch_size:
        kwargs["patch_size"] = cfg.patch_size
    if cfg.depth:
        kwargs["depth"] = cfg.depth
    try:
        model = timm.create_model(cfg.name, **kwargs)
    except (RuntimeError, TypeError, ValueError, AssertionError) as e:
        raise ConfigError(
            f"train.model.name: cannot build {cfg.name!r} ({first_line(e)})"
        ) from None
    if (
        not isinstance(model, VisionTransformer)
        or model.pos_embed is None
        or isinstance(model.fc_norm, nn.Identity)
    ):
        raise ConfigError(
            f"train.model.name: {cfg.name!r} is not a timm ViT with an absolute position embedding and fc_norm"
        )
    return model


def init_head(model: VisionTransformer, std: float) -> None:
    nn.init.trunc_normal_(model.head.weight, std=std, a=-2 * std, b=2 * std)
    nn.init.zeros_(model.head.bias)


def initialise(model: VisionTransformer, spec: str, head_std: float) -> str:
    """Apply `fsfm:PATH`, `timm:PATH` or `none`; returns a one-line description for the log."""
    kind, _, path = spec.partition(":")
    if kind == "fsfm":
        load_fsfm(model, path)
    elif kind == "timm":
        load_timm(model, path)
    elif kind != "none" or path:
        raise ConfigError(f"train.model.init: {spec!r}: use fsfm:PATH, timm:PATH or none")
    init_head(model, head_std)
    return "random init" if kind == "none" else f"{kind} encoder from {path}"


def safe_torch_load(path: str | Path) -> Any:
    """torch.load that can only build tensors and plain containers (and an argparse Namespace)."""
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
    """Load encoder weights, resizing pos_embed to the model's grid; exactly NEW_KEYS stay fresh."""
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
        enc["pos_embed"] = resample_abs_pos_embed(
            pe.float(),
            new_size=list(model.patch_embed.grid_size),
            old_size=[side, side],
            num_prefix_tokens=n_prefix,
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
    p = Path(path)
    load_encoder(model, _state_dict_of(safe_torch_load(p), p), p)


def load_timm(model: VisionTransformer, path: str | Path) -> None:
    """ImageNet weights of the same timm architecture from a local file (.safetensors or .pth/.bin)."""
    p = Path(path)
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
    load_encoder(model, state, p)


class WithEmbedding(nn.Module):
    """Training view of the ViT: (logits, triplet embedding) from one forward.

    The embedding is the pooled feature after `fc_norm` (`post_norm`: what FSFM's forward_features
    returns, the head's input) or before it (`pre_norm`: the raw mean of the patch tokens).
    Wrapping (rather than calling the ViT's parts from outside) keeps DDP's gradient hooks working.
    """

    def __init__(self, vit: VisionTransformer, embedding: str = "post_norm"):
        super().__init__()
        if embedding not in EMBEDDINGS:
            raise ValueError(f"unknown embedding {embedding!r} (use {', '.join(EMBEDDINGS)})")
        self.vit, self.embedding = vit, embedding

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.vit
        pooled = v.pool(v.forward_features(x))
        normed = v.fc_norm(pooled)
        logits = v.head(v.head_drop(normed))
        return logits, normed if self.embedding == "post_norm" else pooled
