"""Checkpoints: a directory with `model.safetensors` (the ViT's weights), `config.json` (everything
needed to rebuild and use it: architecture, classes, preprocessing, the run's config) and, for the
resumable `last`, `state.pt` (optimiser and loop state, plain tensors and numbers only).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from timm.models.vision_transformer import VisionTransformer

from dfprep.core.errors import first_line
from dfprep.errors import InputError
from dftrain.config import AugConfig, ModelConfig, TrainConfig, to_dict
from dftrain.labels import names, train_datasets
from dftrain.model import create_model, safe_torch_load

FORMAT = "dftrain-checkpoint/1"
WEIGHTS, CONFIG, STATE = "model.safetensors", "config.json", "state.pt"


def checkpoint_meta(cfg: TrainConfig, epoch: int, metrics: dict[str, float]) -> dict[str, Any]:
    """The config.json of a checkpoint: enough to rebuild the model and its input pipeline."""
    classes = names(cfg.labels)
    return {
        "format": FORMAT,
        "model": {**dataclasses.asdict(cfg.model), "num_classes": len(classes)},
        "labels": {
            "mode": cfg.labels.mode,
            "class_names": classes,
            "datasets": list(train_datasets(cfg.labels)),
        },
        "preprocess": {
            "img_size": cfg.model.img_size,
            "mean": list(cfg.aug.mean),
            "std": list(cfg.aug.std),
            "crop_pct": cfg.aug.crop_pct,
            "interpolation": cfg.aug.interpolation,
        },
        "score": "P(fake) = 1 - softmax(logits)[0], the sum over the fake classes",
        "epoch": epoch,
        "metrics": metrics,
        "train_config": to_dict(cfg),
    }


def save_checkpoint(
    directory: str | Path,
    vit: torch.nn.Module,
    meta: dict[str, Any],
    state: dict[str, Any] | None = None,
) -> Path:
    """Write atomically: into DIR.tmp, then swap it in place of DIR."""
    final = Path(directory)
    tmp = final.with_name(final.name + ".tmp")
    recover(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {k: v.detach().to("cpu").contiguous() for k, v in vit.state_dict().items()}
    save_file(weights, str(tmp / WEIGHTS), metadata={"format": FORMAT})
    (tmp / CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
    if state is not None:
        torch.save(state, tmp / STATE)
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def recover(directory: str | Path) -> None:
    """Finish a swap that a kill interrupted between its two renames (DIR.old -> DIR)."""
    final = Path(directory)
    old = final.with_name(final.name + ".old")
    if not final.exists() and old.is_dir():
        old.rename(final)


def resolve(path: str | Path) -> Path:
    """A checkpoint directory, or a run directory (then its `checkpoints/best`)."""
    p = Path(path)
    recover(p)
    recover(p / "checkpoints" / "best")
    if (p / CONFIG).is_file():
        return p
    if (p / "checkpoints" / "best" / CONFIG).is_file():
        return p / "checkpoints" / "best"
    raise InputError(
        f"{p}: not a dftrain checkpoint (no {CONFIG}) nor a run directory with checkpoints/best"
    )


def read_meta(path: str | Path) -> dict[str, Any]:
    p = resolve(path)
    try:
        meta = json.loads((p / CONFIG).read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{p / CONFIG}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{p / CONFIG}: not a {FORMAT} file")
    return meta


def load_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[VisionTransformer, dict[str, Any]]:
    """Rebuild a checkpoint's model for inference (eval mode, no drop path) from its path alone."""
    p = resolve(path)
    meta = read_meta(p)
    m = dict(meta["model"])
    num_classes = int(m.pop("num_classes"))
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    mcfg = ModelConfig(
        **{k: (tuple(v) if isinstance(v, list) else v) for k, v in m.items() if k in known}
    )
    vit = create_model(dataclasses.replace(mcfg, drop_path=0.0, init="none"), num_classes)
    load_weights(vit, p / WEIGHTS)
    return vit.to(device).eval(), meta


def load_weights(vit: torch.nn.Module, path: Path) -> None:
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise InputError(f"{path}: unreadable weights ({e})") from None
    try:
        vit.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise InputError(
            f"{path}: weights do not fit the model in {CONFIG} ({first_line(e)})"
        ) from None


def inference_aug(meta: dict[str, Any]) -> AugConfig:
    """The evaluation preprocessing a checkpoint was validated with (for `transforms.eval_transform`)."""
    pre = meta["preprocess"]
    return AugConfig(
        mean=tuple(pre["mean"]),
        std=tuple(pre["std"]),
        crop_pct=pre["crop_pct"],
        interpolation=pre["interpolation"],
    )


def load_state(path: str | Path) -> dict[str, Any]:
    """The resumable loop state of a `last` checkpoint (loaded without unpickling any code)."""
    recover(path)
    p = Path(path) / STATE
    if not p.is_file():
        raise InputError(f"{p}: not found, nothing to resume")
    state = safe_torch_load(p)
    if not isinstance(state, dict) or "optimizer" not in state or "epoch" not in state:
        raise InputError(f"{p}: not a dftrain training state")
    return state
