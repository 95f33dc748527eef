"""The WebDataset input stream: sizes.json checks, equal batches per rank, exact val coverage, bad samples."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image
from torch.utils.data import DataLoader

from dfprep.core.errors import ConfigError, InputError
from dftrain.bench.synthetic import write_synthetic_shards
from dftrain.config import AugConfig, LabelConfig
from dftrain.data import (
    EvalStream,
    SampleDecoder,
    Split,
    TrainStream,
    batches_per_rank,
    check_workers,
    loader,
    read_splits,
    worker_share,
)
from dftrain.transforms import eval_transform, train_transform

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _keyed(t: torch.Tensor) -> list[float]:
    """A per-image fingerprint (eval transform is deterministic) to compare streams."""
    return [round(float(v), 4) for v in t.flatten(1).sum(1)]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    # uneven shards, like real `dfprep balance` output
    write_synthetic_shards(root, {"train": [6, 2, 6, 6, 4], "val": [6] * 3}, size=32, seed=1)
    return root


def _decoder(train: bool = False, mode: str = "binary") -> SampleDecoder:
    tf = train_transform(AugConfig(), 32) if train else eval_transform(AugConfig(), 32)
    return SampleDecoder(tf, LabelConfig(mode))


def test_read_splits(shards):
    splits = read_splits(shards)
    assert splits["train"].total == 6 * 3 + 2 + 4 and len(splits["train"].shards) == 5
    assert splits["val"].total == 18


def test_sizes_json_problems_name_the_culprit(shards, tmp_path):
    with pytest.raises(InputError, match=r"sizes\.json: not found"):
        read_splits(tmp_path)
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    (tmp_path / "sizes.json").write_text(json.dumps({"train": {"a.tar": 3}, "val": {"b.tar": 1}}))
    with pytest.raises(InputError, match=r"a\.tar: listed in sizes\.json but not found"):
        read_splits(tmp_path)
    (tmp_path / "train" / "a.tar").write_bytes(b"")
    (tmp_path / "train" / "extra.tar").write_bytes(b"")
    (tmp_path / "val" / "b.tar").write_bytes(b"")
    with pytest.raises(InputError, match=r"extra\.tar: shard not listed"):
        read_splits(tmp_path)
    (tmp_path / "train" / "extra.tar").unlink()
    (tmp_path / "sizes.json").write_text(json.dumps({"train": {"a.tar": "3"}, "val": {"b.tar": 1}}))
    with pytest.raises(InputError, match=r"train\.a\.tar: sample count"):
        read_splits(tmp_path)


def test_every_rank_gets_the_same_number_of_full_batches(shards):
    split = read_splits(shards)["train"]
    bs, world = 4, 2
    n = batches_per_rank(split, bs, world)
    assert n == 24 // 8
    for workers in (0, 2):
        for rank in range(world):
            stream = TrainStream(
                split,
                _decoder(),
                bs,
                n,
                epoch=0,
                seed=3,
                rank=rank,
                world=world,
                shuffle_buffer=8,
                shuffle_initial=4,
            )
            got = list(loader(stream, workers, 2, seed=0))
            assert len(got) == n
            assert all(x.shape == (bs, 3, 32, 32) and y.shape == (bs,) for x, y in got)
    assert [worker_share(7, w, 3) for w in range(3)] == [3, 2, 2]


def test_train_stream_is_a_function_of_seed_and_epoch(shards):
    split = read_splits(shards)["train"]

    def run(epoch):
        stream = TrainStream(
            split, _decoder(), 4, 5, epoch=epoch, seed=0, shuffle_buffer=8, shuffle_initial=4
        )
        return [v for x, _ in stream for v in _keyed(x)]

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_too_many_readers_for_the_shards_is_an_error(shards):
    split = read_splits(shards)["train"]
    check_workers(split, 2, 2)
    with pytest.raises(ConfigError, match=r"5 shard\(s\) for 2 process\(es\) x 3 worker\(s\)"):
        check_workers(split, 3, 2)
    with pytest.raises(InputError, match="fewer than one batch"):
        batches_per_rank(split, 16, 2)


def test_validation_reads_every_sample_once_over_ranks_and_workers(shards):
    split = read_splits(shards)["val"]
    reference = [v for x, _ in EvalStream(split, _decoder(), 5) for v in _keyed(x)]
    assert len(reference) == 18
    seen = []
    for rank in range(2):
        stream = EvalStream(split, _decoder(), 5, rank=rank, world=2)
        for x, _ in DataLoader(stream, batch_size=None, num_workers=2):
            seen += _keyed(x)
    assert sorted(seen) == sorted(reference)


def _one_sample_shard(tmp_path, meta: dict, cls: bytes, jpg: bytes | None = None):
    if jpg is None:
        buf = io.BytesIO()
        Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(buf, "JPEG")
        jpg = buf.getvalue()
    path = tmp_path / "one.tar"
    with wds.TarWriter(str(path)) as sink:
        sink.write(
            {
                "__key__": "ffpp-x_s00000_0",
                "jpg": jpg,
                "cls": cls,
                "json": json.dumps(meta).encode(),
            }
        )
    return next(iter(wds.tarfile_samples([{"url": str(path)}])))


META = {
    "video_id": "ffpp-x",
    "dataset": "ffpp",
    "split": "train",
    "label": 1,
    "video_label": 1,
    "category": "FS",
    "method": "DF",
    "key": "ffpp-x_s00000_0",
    "time": 0.0,
}


def test_decoder_maps_labels_per_mode(tmp_path):
    sample = _one_sample_shard(tmp_path, META, b"1")
    assert _decoder(mode="binary")(sample)[1] == 1
    assert _decoder(mode="category")(sample)[1] == 1
    assert _decoder(mode="dataset")(sample)[1] == 1  # ffpp is the first training dataset
    x, _ = _decoder(train=True)(sample)
    assert x.shape == (3, 32, 32)


@pytest.mark.parametrize(
    ("meta", "cls", "jpg", "message"),
    [
        (META, b"0", None, r"\.cls 0 disagrees with the \.json label 1"),
        ({**META, "category": "unknown"}, b"1", None, "category 'unknown'"),
        ({k: v for k, v in META.items() if k != "label"}, b"1", None, "missing field 'label'"),
        (META, b"1", b"not a jpeg", "undecodable .jpg"),
    ],
)
def test_bad_samples_are_errors_naming_shard_and_key(tmp_path, meta, cls, jpg, message):
    sample = _one_sample_shard(tmp_path, meta, cls, jpg)
    with pytest.raises(InputError, match=message) as e:
        _decoder(mode="category")(sample)
    assert "one.tar: sample ffpp-x_s00000_0" in str(e.value)


def test_truncated_shard_is_an_input_error(shards, tmp_path):
    src = shards / "val" / "val-000000.tar"
    with tarfile.open(src) as tar:
        jpgs = [m for m in tar.getmembers() if m.name.endswith(".jpg")]
    cut = jpgs[len(jpgs) // 2].offset_data + 100  # in the middle of a sample's JPEG
    for name in ("train", "val"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "s.tar").write_bytes(src.read_bytes()[:cut])
    (tmp_path / "sizes.json").write_text(json.dumps({"train": {"s.tar": 6}, "val": {"s.tar": 6}}))
    with pytest.raises(
        InputError, match=r"s\.tar: not a readable tar"
    ):  # at start-up, from the headers
        read_splits(tmp_path)
    split = Split(
        "val", (str(tmp_path / "val" / "s.tar"),), (6,)
    )  # and if it broke after the start
    with pytest.raises(InputError, match=r"s\.tar"):
        list(EvalStream(split, _decoder(), 4))


def test_randaugment_posterize_at_full_magnitude_gives_black_not_an_error():
    """timm maps RandAugment magnitude 10 to 0 posterize bits, which Pillow >= 13 rejects."""
    tf = train_transform(AugConfig(), 32)
    ops = [
        op
        for t in tf.transforms
        for op in getattr(t, "ops", [])
        if op.name == "PosterizeIncreasing"
    ]
    assert ops
    op = ops[0]
    op.prob, op.magnitude, op.magnitude_std = 1.0, 10.0, 0.0
    img = Image.fromarray(np.full((8, 8, 3), 200, np.uint8))
    assert op(img).getextrema() == ((0, 0), (0, 0), (0, 0))


def test_eval_transform_is_deterministic_and_sized():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    tf = eval_transform(AugConfig(), 32)
    a, b = tf(img), tf(img)
    assert a.shape == (3, 32, 32) and torch.equal(a, b)
