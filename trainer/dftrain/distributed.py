"""Process-group setup for `torchrun` (DDP) and a single process on CPU or one GPU."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from dfprep.core.errors import ConfigError


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # this process created the group (and destroys it at the end)

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> Dist:
    """Join torchrun's process group when WORLD_SIZE > 1; pick cuda:LOCAL_RANK or the CPU."""
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"train.device: {device!r} is not one of auto, cpu, cuda")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda requested but no GPU is available")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    owns = world > 1 and not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    dev = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    return Dist(rank, world, local, dev, owns)


def gather(obj: Any, d: Dist) -> list[Any]:
    """Every rank's `obj`, in rank order (a one-element list without a process group)."""
    if d.world == 1:
        return [obj]
    out: list[Any] = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def teardown(d: Dist) -> None:
    if d.owns_group and dist.is_initialized():
        dist.destroy_process_group()
