"""Checkpoints: a directory with `model.safetensors` (the ViT's weights), `config.json` (everything
needed to rebuild and use it: architecture, classes, preprocessing, the run's config) and, for the
resumable `last`, `state.pt` (optimiser and loop state, plain tensors and numbers only).
config.json records the checksum of the weights and of the state; every load checks them.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from timm.models.vision_transformer import VisionTransformer

from dfprep.core.atomic import fsync_dir, fsync_tree, writing
from dfprep.core.errors import InputError, first_line
from dftrain.config import AugConfig, ModelConfig, TrainConfig, to_dict, train_config_from_dict
from dftrain.labels import names, train_datasets
from dftrain.model import create_model, safe_torch_load

FORMAT = "dftrain-checkpoint/1"
WEIGHTS, CONFIG, STATE = "model.safetensors", "config.json", "state.pt"


def checkpoint_meta(
    cfg: TrainConfig, epoch: int, metrics: dict[str, float], data: dict[str, str] | None = None
) -> dict[str, Any]:
    """The config.json of a checkpoint: enough to rebuild the model and its input pipeline.

    `data`: the balanced directory trained on and its identity (`dftrain.data.data_identity`)."""
    meta = _derived(cfg)
    meta.update(epoch=epoch, metrics=metrics, train_config=to_dict(cfg))
    if data is not None:
        meta["data"] = data
    return meta


DERIVED = ("format", "model", "labels", "preprocess", "score")  # functions of train_config


def _derived(cfg: TrainConfig) -> dict[str, Any]:
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
    }


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(
    directory: str | Path,
    vit: torch.nn.Module,
    meta: dict[str, Any],
    state: dict[str, Any] | None = None,
) -> Path:
    """Write atomically: into DIR.tmp, then swap it in place of DIR. A write that fails (a full
    disk) is a one-line WriteError naming the file, and DIR.tmp is removed."""
    final = Path(directory)
    tmp = final.with_name(final.name + ".tmp")
    recover(final)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_tmp(tmp, vit, meta, state)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)
    return final


def _write_tmp(
    tmp: Path, vit: torch.nn.Module, meta: dict[str, Any], state: dict[str, Any] | None
) -> None:
    with writing(tmp):
        tmp.mkdir(parents=True)
    weights = {k: v.detach().to("cpu").contiguous() for k, v in vit.state_dict().items()}
    with writing(tmp / WEIGHTS):
        try:
            save_file(weights, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        except SafetensorError as e:  # its I/O errors are not OSErrors
            raise _as_os_error(e) from None
    meta = {**meta, "weights_sha256": file_sha256(tmp / WEIGHTS)}  # checked on every load
    if state is not None:
        with writing(tmp / STATE):
            torch.save(state, tmp / STATE)
        meta["state_sha256"] = file_sha256(tmp / STATE)  # checked on every resume
    with writing(tmp / CONFIG):
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
        fsync_tree(tmp)  # the files are on disk before the swap makes them the checkpoint


def _as_os_error(e: SafetensorError) -> OSError:
    """safetensors' I/O error as the OSError it wraps ("... (os error 28)")."""
    m = re.search(r"os error (\d+)", str(e))
    code = int(m.group(1)) if m else errno.EIO
    return OSError(code, os.strerror(code))


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
    check_meta(meta, p / CONFIG)
    return meta


def check_meta(meta: dict[str, Any], where: Path) -> TrainConfig:
    """A config.json must be what `checkpoint_meta` writes: its train_config passes the same
    validation as params.yaml, and everything derived from it (architecture, classes,
    preprocessing) agrees with it, so an edited or damaged field cannot slip through."""
    missing = [k for k in (*DERIVED, "train_config", "weights_sha256") if k not in meta]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)}")
    if not isinstance(meta["train_config"], dict):
        raise InputError(f"{where}: train_config is not a mapping")
    cfg = train_config_from_dict(meta["train_config"], str(where))
    want = json.loads(json.dumps(_derived(cfg)))
    for key in DERIVED:
        got = meta[key]
        if got != want[key]:
            sub = (
                next((k for k in want[key] if got.get(k) != want[key][k]), "")
                if isinstance(got, dict) and isinstance(want[key], dict)
                else ""
            )
            name = f"{key}.{sub}" if sub else key
            got_v = got.get(sub) if sub else got
            want_v = want[key][sub] if sub else want[key]
            raise InputError(
                f"{where}: {name} is {got_v!r}, but its train_config implies {want_v!r} (edited or damaged)"
            )
    return cfg


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
    load_weights(vit, p / WEIGHTS, meta["weights_sha256"])
    vit.pretrained_cfg = {**getattr(vit, "pretrained_cfg", {}), **pretrained_cfg(meta)}
    if hasattr(vit, "default_cfg"):
        vit.default_cfg = vit.pretrained_cfg
    return vit.to(device).eval(), meta


def pretrained_cfg(meta: dict[str, Any]) -> dict[str, Any]:
    """timm's pretrained_cfg of a checkpoint (config.json): its own input size, mean/std (FSFM's
    VGGFace2 statistics by default), crop 1.0 and class names, so that timm tooling
    (`timm.data.resolve_data_config`, `create_transform`) prepares images as the model was
    validated; no URL or hub id: nothing is ever downloaded."""
    pre = meta["preprocess"]
    size = int(pre["img_size"])
    return {
        "architecture": meta["model"]["name"], "tag": "dftrain", "url": "", "hf_hub_id": "",
        "custom_load": False, "input_size": (3, size, size), "fixed_input_size": True,
        "interpolation": pre["interpolation"], "crop_pct": float(pre["crop_pct"]),
        "crop_mode": "center", "mean": tuple(pre["mean"]), "std": tuple(pre["std"]),
        "num_classes": int(meta["model"]["num_classes"]),
        "label_names": list(meta["labels"]["class_names"]),
    }  # fmt: skip


def timm_kwargs(meta: dict[str, Any], weights: str | Path) -> dict[str, Any]:
    """`timm.create_model(**timm_kwargs(meta, WEIGHTS))` rebuilds a checkpoint's model with timm
    alone, from its safetensors file (docs/train.md, "The checkpoint in timm")."""
    m = meta["model"]
    kwargs: dict[str, Any] = {
        "model_name": m["name"], "pretrained": True, "num_classes": int(m["num_classes"]),
        "global_pool": "avg",
        "pretrained_cfg_overlay": {**pretrained_cfg(meta), "file": str(weights)},
    }  # fmt: skip
    import timm

    if timm.models.model_entrypoint(m["name"]).__module__ == VisionTransformer.__module__:
        kwargs["img_size"] = int(m["img_size"])  # the ViT's size; a CNN takes any
        kwargs.update({k: int(m[k]) for k in ("patch_size", "depth") if m.get(k)})
    return kwargs


def load_weights(vit: torch.nn.Module, path: Path, sha256: str | None = None) -> None:
    """Load `path` into `vit`; with `sha256` (from config.json), only if the file still has it."""
    if sha256 is not None and path.is_file() and file_sha256(path) != sha256:
        raise InputError(
            f"{path}: checksum differs from weights_sha256 in {CONFIG} (damaged or replaced)"
        )
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
    """The resumable loop state of a `last` checkpoint (loaded without unpickling any code),
    checked against the checksum its config.json records (checkpoints written before the
    checksum have none); `check_epochs` then checks its counts against the run."""
    recover(path)
    p = Path(path) / STATE
    if not p.is_file():
        raise InputError(f"{p}: not found, nothing to resume")
    try:
        meta = json.loads((Path(path) / CONFIG).read_text())
    except (OSError, ValueError):
        meta = {}
    want = meta.get("state_sha256") if isinstance(meta, dict) else None
    if want is not None and file_sha256(p) != want:
        raise InputError(
            f"{p}: checksum differs from state_sha256 in {CONFIG} (damaged or replaced)"
        )
    state = safe_torch_load(p)
    if not isinstance(state, dict) or "optimizer" not in state or "epoch" not in state:
        raise InputError(f"{p}: not a dftrain training state")
    return state


def check_epochs(state: dict, meta: dict, path: str | Path, epochs: int) -> None:
    """A resumed loop state's epoch counts agree with each other, with its config.json (META)
    and with the run's EPOCHS: an edited or mixed-up state is refused, not resumed."""
    p = Path(path) / STATE
    done, best, history = state.get("epoch"), state.get("best_epoch"), state.get("history")
    if isinstance(done, bool) or not isinstance(done, int) or done < 1:
        raise InputError(f"{p}: epoch {done!r} is not a count of finished epochs")
    if done > epochs:
        raise InputError(
            f"{p}: epoch {done} is more than the run's {epochs} epochs (edited or damaged)"
        )
    if isinstance(meta.get("epoch"), int) and meta["epoch"] + 1 != done:
        raise InputError(
            f"{p}: epoch {done}, but {CONFIG} was written after epoch {meta['epoch']} "
            f"(the state of another checkpoint?)"
        )
    if not isinstance(best, int) or not -1 <= best < done:
        raise InputError(f"{p}: best_epoch {best!r} is not one of the {done} epochs done")
    if isinstance(history, list) and len(history) != done:
        raise InputError(f"{p}: {len(history)} epochs of history for {done} epochs done")
