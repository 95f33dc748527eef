"""The one optimiser update of `dftrain run` (forward, loss, backward, step), and the updates of
the same signature: `train_step`, `sam_step` (SAM, SBI's, when `optim.sam_rho` > 0), chosen by
`step_of`. `autocast` and `maybe_compile` are shared by training, validation, inference and the
benchmarks, which time this very step."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from dftrain.config import TrainConfig
from dftrain.losses import objective
from dftrain.optim import sam_ascend, sam_descend

__all__ = [
    "autocast",
    "forward_backward",
    "maybe_compile",
    "sam_step",
    "step_of",
    "train_step",
    "update",
]


def autocast(device: torch.device, amp: str):
    """bf16 autocast on CUDA ('auto' or 'bf16'); fp32 on CPU unless 'bf16' is asked for."""
    on = amp == "bf16" or (amp == "auto" and device.type == "cuda")
    if not on:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def maybe_compile(module: torch.nn.Module, cfg: TrainConfig) -> torch.nn.Module:
    """`torch.compile(module)` when train.compile is set (the weights stay shared with `module`)."""
    if not cfg.compile:
        return module
    return torch.compile(module, backend=cfg.compile_backend)


def forward_backward(module: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, targets: torch.Tensor, ty: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # fmt: skip
    """Forward (bf16 autocast on CUDA), CE + w x triplet, fresh gradients by backward."""
    with autocast(x.device, cfg.amp):
        logits, emb = module(x)
    loss, parts = objective(logits, emb, targets, ty, cfg.loss)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    return loss, parts


def update(opt: torch.optim.Optimizer, cfg: TrainConfig, clip_params) -> None:
    if cfg.optim.clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(clip_params, cfg.optim.clip_grad)
    opt.step()


def train_step(
    module: torch.nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    targets: torch.Tensor,
    ty: torch.Tensor,
    cfg: TrainConfig,
    clip_params,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One optimiser update: forward (bf16 autocast on CUDA), CE + w x triplet, backward, gradient
    clipping of `clip_params` (when optim.clip_grad > 0), step. Returns the loss and its parts,
    on the device (no host sync)."""
    loss, parts = forward_backward(module, opt, x, targets, ty, cfg)
    update(opt, cfg, clip_params)
    return loss, parts


def sam_step(module, opt, x, targets, ty, cfg: TrainConfig, clip_params):  # train_step's signature
    """One SAM update (Foret et al. 2021), as SBI trains: the gradient at w, a move to
    w + rho g/||g|| (optim.sam_rho), a second forward/backward there, back to w, and the base
    optimizer's step with that second gradient (clipped when optim.clip_grad > 0). Batch-norm
    statistics update in both passes, as in SBI. Returns the first pass's loss and parts."""
    params = [p for g in opt.param_groups for p in g["params"]]
    loss, parts = forward_backward(module, opt, x, targets, ty, cfg)
    moves = sam_ascend(params, cfg.optim.sam_rho)
    forward_backward(module, opt, x, targets, ty, cfg)
    sam_descend(params, moves)
    update(opt, cfg, clip_params)
    return loss, parts


def step_of(cfg: TrainConfig) -> Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """The update a config asks for: `sam_step` when optim.sam_rho > 0, else `train_step`."""
    return sam_step if cfg.optim.sam_rho > 0 else train_step
