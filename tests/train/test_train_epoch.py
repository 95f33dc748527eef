"""One epoch is one pass: every training sample is read exactly once per epoch over all ranks and
loader workers (bar the documented remainder of fewer than one global batch), with the same number
of steps on every rank; checked on the plan, in process, and under DDP (torchrun, 2 gloo ranks x 3
workers)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import torch

from dfprep.core.errors import InputError
from dftrain.bench.synthetic import write_synthetic_shards
from dftrain.data import (
    Split,
    TrainStream,
    batches_per_rank,
    epoch_order,
    loader,
    pieces,
    read_splits,
    reader_range,
)

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:This DataLoader will create"),
]


class KeyDecoder:
    """Decodes a sample to (its index in `keys`, 0), so a batch tells which samples it holds."""

    def __init__(self, keys: list[str]):
        self.index = {k: i for i, k in enumerate(keys)}

    def __call__(self, sample: dict) -> tuple[torch.Tensor, int]:
        return torch.tensor(self.index[sample["__key__"]]), 0


def uneven_shards(root: Path, keep: list[int]) -> Path:
    """Synthetic train shards holding `keep[i]` samples each (like real balance output), 2 val shards."""
    write_synthetic_shards(root, {"train": keep, "val": [max(keep)] * 2}, size=16)
    return root


def epoch_keys(split: Split, seed: int, epoch: int) -> list[str]:
    """Every train key in the epoch's order (the shard order shuffled with seed and epoch)."""
    from dftrain.data import read_samples

    order = [split.shards[i] for i in epoch_order(split, seed, epoch)]
    return [s["__key__"] for s in read_samples(iter(order))]


def check_epoch(seen: list[str], split: Split, seed: int, epoch: int, batch: int, world: int):
    """Each key at most once; all of them except the last N mod (batch x world) of the order."""
    order = epoch_keys(split, seed, epoch)
    twice = [k for k, n in Counter(seen).items() if n > 1]
    assert not twice, f"seen twice: {twice[:5]}"
    used = batches_per_rank(split, batch, world) * batch * world
    assert len(order) - used == split.total % (batch * world) < batch * world
    assert sorted(seen) == sorted(order[:used])  # the remainder is the order's tail, nothing else


@pytest.mark.parametrize("sizes", [(5, 7, 3, 9, 1), (6, 6, 6, 6), (100, 1, 50), (13,)])
def test_the_readers_plans_partition_one_pass(sizes):
    split = Split("train", tuple(f"s{i}.tar" for i in range(len(sizes))), sizes)
    for batch, world, workers in itertools.product((1, 2, 4), (1, 2, 3), (1, 2, 3, 5)):
        if split.total < batch * world:
            continue
        steps = batches_per_rank(split, batch, world)
        taken = []
        for rank in range(world):
            rank_samples = 0
            for w in range(workers):
                first, count = reader_range(steps, batch, rank, world, w, workers)
                assert count % batch == 0
                plan = pieces(split, 0, 2, first, count)
                assert sum(p.stop - p.start for p in plan) == count
                taken += [(p.shard, j) for p in plan for j in range(p.start, p.stop)]
                rank_samples += count
            assert rank_samples == steps * batch  # the same number of steps on every rank
        assert len(taken) == len(set(taken)) == steps * batch * world


def test_every_key_once_in_process_over_ranks_and_workers(tmp_path):
    split = read_splits(uneven_shards(tmp_path / "d", [12, 5, 12, 9, 10]))["train"]  # 48
    keys = epoch_keys(split, 0, 0)
    for batch, world, workers in ((4, 2, 3), (3, 2, 2), (5, 1, 3)):  # remainders 0, 0, 3
        for epoch in (0, 1):
            steps = batches_per_rank(split, batch, world)
            seen = []
            for rank in range(world):
                stream = TrainStream(
                    split, KeyDecoder(keys), batch, steps, epoch=epoch, seed=0, rank=rank,
                    world=world, shuffle_buffer=8, shuffle_initial=2,
                )  # fmt: skip
                got = list(loader(stream, workers, 2, seed=0))
                assert len(got) == steps and all(len(x) == batch for x, _ in got)
                seen += [keys[i] for x, _ in got for i in x.tolist()]
            check_epoch(seen, split, 0, epoch, batch, world)


def test_a_shard_shorter_than_sizes_json_says_is_an_error(tmp_path):
    root = uneven_shards(tmp_path / "d", [6, 6])
    sizes = json.loads((root / "sizes.json").read_text())
    sizes["train"]["train-000001.tar"] = 9
    (root / "sizes.json").write_text(json.dumps(sizes))
    with pytest.raises(InputError, match=r"train-000001\.tar: 6 samples, .*sizes\.json says 9"):
        read_splits(root)  # checked at start-up, from the tar headers
    # a shard that shrinks after start-up is still caught by the stream itself
    sizes["train"]["train-000001.tar"] = 6
    (root / "sizes.json").write_text(json.dumps(sizes))
    split = read_splits(root)["train"]
    shorter = uneven_shards(tmp_path / "e", [6, 4])
    shutil.copy(shorter / "train" / "train-000001.tar", root / "train" / "train-000001.tar")
    stream = TrainStream(split, KeyDecoder(epoch_keys(split, 0, 0)), 5, 3, epoch=0, seed=0)
    with pytest.raises(
        InputError, match=r"train-000001\.tar: holds 4 sample\(s\), fewer than the 6"
    ):
        list(stream)


DDP_SCRIPT = """
import json, sys
import torch.distributed as dist
from dftrain import distributed
from dftrain.data import TrainStream, batches_per_rank, loader, read_samples, read_splits
from test_train_epoch import KeyDecoder

out, batch, workers, dirs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
d = distributed.setup("cpu")
result = {}
for data in dirs:
    split = read_splits(data)["train"]
    keys = [s["__key__"] for s in read_samples(iter(split.shards))]
    steps = batches_per_rank(split, batch, d.world)
    for epoch in (0, 1):
        stream = TrainStream(split, KeyDecoder(keys), batch, steps, epoch=epoch, seed=5,
                             rank=d.rank, world=d.world, shuffle_buffer=8, shuffle_initial=2)
        mine = [[keys[i] for i in x.tolist()] for x, _ in loader(stream, workers, 2, seed=epoch)]
        everyone = distributed.gather(mine, d)
        result[f"{data}|{epoch}"] = everyone
if d.main:
    with open(out, "w") as f:
        json.dump(result, f)
distributed.teardown(d)
"""


@pytest.mark.slow
def test_every_key_once_per_epoch_under_ddp_two_ranks_three_workers(tmp_path):
    """torchrun, 2 gloo ranks x 3 loader workers, uneven shards: 56 samples (7 steps of 4 per rank,
    every key once) and 59 (the same steps; the order's last 3 samples left out)."""
    exact = uneven_shards(tmp_path / "exact", [12, 5, 12, 9, 10, 8])  # 56 = 7 x 4 x 2
    rest = uneven_shards(tmp_path / "rest", [12, 5, 12, 9, 10, 11])  # 59 = 56 + 3
    script = tmp_path / "collect.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    out = tmp_path / "keys.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(out), "4", "3", str(exact), str(rest)]  # fmt: skip
    tests_dir = str(Path(__file__).parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    for data in (exact, rest):
        split = read_splits(data)["train"]
        for epoch in (0, 1):
            ranks = result[f"{data}|{epoch}"]
            assert [len(r) for r in ranks] == [7, 7]  # the same number of steps on both ranks
            assert all(len(b) == 4 for r in ranks for b in r)
            seen = [k for r in ranks for b in r for k in b]
            check_epoch(seen, split, 5, epoch, 4, 2)
            if data == exact:
                assert sorted(seen) == sorted(epoch_keys(split, 5, epoch))  # all 56, once each
