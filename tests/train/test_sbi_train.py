"""SBI as a training method: the real crops of a balance output, their pseudo-fakes in the loader
(1:1 batches, deterministic), the crop margin from the data's record, the config's rules."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
import yaml

from dfprep.core.errors import ConfigError, InputError
from dftrain.config import (
    LabelConfig,
    OptimConfig,
    TrainConfig,
    load_train_params,
    parse_settings,
    with_overrides,
)
from dftrain.data import EvalStream, TrainStream, batches_per_rank, loader, read_splits
from dftrain.sbi import SBIConfig
from dftrain.sbi.data import (
    VAL_KEY,
    SBIDecoder,
    crop_margin,
    real_splits,
    swapped_crops,
)
from sbi_helpers import write_sbi_balance

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tail(img):
    """The model-side transform of the tests: the image as a float tensor (no resize)."""
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float()


def _sample(video: str, label: int = 0, video_label: int | None = None, dataset: str = "ffpp"):
    return (video, dataset, label, label if video_label is None else video_label)


@pytest.fixture(scope="module")
def balanced(tmp_path_factory):
    """Train: 3 shards mixing ffpp reals, celebdf reals, fakes and a real crop of a fake video;
    val: one shard of 3 ffpp reals and a fake."""
    root = tmp_path_factory.mktemp("sbi-balanced")
    train = [
        [_sample("ffpp-a"), _sample("ffpp-x", 1), _sample("ffpp-a"), _sample("celebdf-c", dataset="celebdf"),
         _sample("ffpp-b")],
        [_sample("ffpp-x", 0, 1), _sample("ffpp-b"), _sample("ffpp-c"), _sample("ffpp-y", 1)],
        [_sample("ffpp-c"), _sample("ffpp-d"), _sample("celebdf-d", dataset="celebdf"), _sample("ffpp-d")],
    ]  # fmt: skip
    val = [[_sample("ffpp-v"), _sample("ffpp-w"), _sample("ffpp-z", 1), _sample("ffpp-v")]]
    write_sbi_balance(root, {"train": train, "val": val})
    return root


def _keys(split):
    """The keys of a split's members, in shard order."""
    from dftrain.data import Piece, read_pieces

    out = []
    for i, shard in enumerate(split.shards):
        plan = [Piece(shard, 0, split.sizes[i], split.sizes[i], split.members[i])]
        out += [json.loads(s["json"])["key"] for s in read_pieces(plan)]
    return out


# ---- the data: real crops only, located through selection.parquet -----------------------------


def test_real_splits_keep_the_real_crops_of_real_videos_of_the_chosen_datasets(balanced):
    splits, rows = real_splits(balanced, read_splits(balanced), ("ffpp",))
    train = splits["train"]
    assert train.sizes == (3, 2, 3) and train.members == ((0, 2, 4), (1, 2), (0, 1, 3))
    metas = [k.split("_s")[0] for k in _keys(train)]
    assert metas == ["ffpp-a", "ffpp-a", "ffpp-b", "ffpp-b", "ffpp-c", "ffpp-c", "ffpp-d", "ffpp-d"]
    assert "ffpp-x" not in metas  # its real crop is of a fake video: not SBI's data
    assert splits["val"].sizes == (3,) and splits["val"].members == ((0, 1, 3),)
    assert {r["video_id"] for r in rows} == {
        "ffpp-a",
        "ffpp-b",
        "ffpp-c",
        "ffpp-d",
        "ffpp-v",
        "ffpp-w",
    }
    every, _ = real_splits(balanced, read_splits(balanced), ())
    assert every["train"].total == 10  # with celebdf's two reals


def test_real_splits_name_what_is_missing(balanced, tmp_path):
    with pytest.raises(InputError, match=r"no real crop of dfdc in the train split.*ffpp"):
        real_splits(balanced, read_splits(balanced), ("dfdc",))
    import shutil

    import pyarrow.parquet as pq

    stale = tmp_path / "stale"
    shutil.copytree(balanced, stale)
    t = pq.read_table(stale / "selection.parquet")
    pq.write_table(t.slice(1), stale / "selection.parquet")  # a row gone: another balance run
    with pytest.raises(InputError, match=r"selection.parquet: does not match .*train-000000.tar"):
        real_splits(stale, read_splits(stale), ())
    (stale / "selection.parquet").unlink()
    with pytest.raises(InputError, match=r"selection.parquet: not found"):
        real_splits(stale, read_splits(stale), ())


def test_the_crop_margin_comes_from_the_datas_record_or_must_agree_with_it(balanced, tmp_path):
    assert crop_margin(balanced, "auto") == (0.3, f"recorded in {balanced / 'stats.json'}")
    assert crop_margin(balanced, 0.3)[0] == 0.3
    with pytest.raises(ConfigError, match=r"train.sbi.margin: 0.5, but .* margin 0.3"):
        crop_margin(balanced, 0.5)
    old = tmp_path / "old"
    old.mkdir()
    (old / "stats.json").write_text(json.dumps({"extract": {"crop": [None]}}))
    with pytest.raises(ConfigError, match=r"auto, but .* does not record the crops' margin"):
        crop_margin(old, "auto")
    assert crop_margin(old, 0.4) == (0.4, "train.sbi.margin, not recorded in the data")
    (old / "stats.json").write_text(
        json.dumps(
            {"extract": {"crop": [{"margin": 0.3, "size": 224}, {"margin": 0.5, "size": 224}]}}
        )
    )
    with pytest.raises(InputError, match=r"margins 0.3, 0.5"):
        crop_margin(old, "auto")


def test_the_control_swaps_half_of_every_videos_pairs_and_half_of_each_split():
    rows = [{"split": split, "video_id": f"{split}{i}", "key": f"{split}{i}_s{k}"}
            for split, n in (("train", 40), ("val", 7)) for i in range(n) for k in range(i % 5 + 1)]  # fmt: skip
    swap = swapped_crops(rows)
    assert swap == swapped_crops(list(reversed(rows)))  # fixed: the order given does not matter
    for split in ("train", "val"):
        got = [swap[r["key"]] for r in rows if r["split"] == split]
        assert abs(sum(got) - len(got) / 2) <= 0.5  # the split: half either way, to one crop
    for v in {r["video_id"] for r in rows}:
        got = [swap[r["key"]] for r in rows if r["video_id"] == v]
        assert abs(sum(got) - len(got) / 2) <= 1  # and every video's crops alike


# ---- the stream: 1:1 batches, each real once an epoch, deterministic -------------------------


def _pairs(batches):
    """(hash of the real, hash of its fake) per pair of a list of (x, y) batches."""
    out = []
    for x, y in batches:
        half = len(y) // 2
        assert y[:half].tolist() == [0] * half and y[half:].tolist() == [1] * half
        for i in range(half):
            h = [hashlib.sha1(x[j].numpy().tobytes()).hexdigest()[:12] for j in (i, half + i)]
            out.append(tuple(h))
    return out


def _epoch(split, decoder, epoch, workers, reads=2, world=1, rank=0):
    steps = batches_per_rank(split, reads, world)
    stream = TrainStream(split, decoder.for_epoch(epoch), reads, steps, epoch=epoch, seed=3,
                         rank=rank, world=world, shuffle_buffer=8, shuffle_initial=2)  # fmt: skip
    return list(loader(stream, workers, 2, seed=epoch))


def test_sbi_batches_are_half_reals_half_their_fakes_and_the_same_in_any_worker_count(balanced):
    splits, _ = real_splits(balanced, read_splits(balanced), ("ffpp",))
    dec = SBIDecoder(SBIConfig(), 0.3, _tail, seed=3)
    one = _epoch(splits["train"], dec, 0, workers=0)
    assert len(one) == 4 and all(x.shape == (4, 3, 224, 224) for x, _ in one)
    pairs = _pairs(one)
    assert all(r != f for r, f in pairs)  # every fake differs from its real
    assert len({r for r, _ in pairs}) == 8  # the 8 reals, each once
    assert _pairs(_epoch(splits["train"], dec, 0, workers=0)) == pairs  # deterministic
    # two workers read other samples in another order; a sample's pair is its own, wherever read
    two = _pairs(_epoch(splits["train"], dec, 0, workers=2))
    everything = dict(_pairs(_epoch(splits["train"], dec, 0, workers=0, reads=8)))
    assert all(everything[r] == f for r, f in two)
    # the next epoch draws new fakes from the same reals (and reals augmented anew)
    later = dict(_pairs(_epoch(splits["train"], dec, 1, workers=0, reads=8)))
    assert later != everything


def test_validation_pairs_are_fixed_across_epochs_and_unaugmented(balanced):
    splits, _ = real_splits(balanced, read_splits(balanced), ("ffpp",))
    dec = SBIDecoder(SBIConfig(), 0.3, _tail, seed=3, epoch=VAL_KEY, augment=False)
    assert dec.for_epoch(5) is dec
    batches = list(EvalStream(splits["val"], dec, 2))
    assert [len(y) for _, y in batches] == [4, 2]  # 3 reals + their fakes, reals first per batch
    again = list(EvalStream(splits["val"], dec.for_epoch(9), 2))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))
    from dftrain.data import Piece, read_pieces
    from dftrain.sbi import crop_landmarks, sample_rng, self_blend
    from dftrain.sbi.sheet import crop_image

    val = splits["val"]
    raw = list(read_pieces([Piece(val.shards[0], 0, 3, 3, val.members[0])]))
    pairs = [(x[i], x[len(y) // 2 + i]) for x, y in batches for i in range(len(y) // 2)]
    for (real, fake), s in zip(pairs, raw, strict=True):  # self_blend's pair, no pair transform
        meta = json.loads(s["json"])
        img = crop_image(s["jpg"], "t")
        lms = crop_landmarks(meta["bbox"], meta["landmarks"], 0.3, 224)
        out = self_blend(img, lms, sample_rng(3, VAL_KEY, meta["key"]), SBIConfig())
        assert torch.equal(real, _tail(out.real)) and torch.equal(fake, _tail(out.fake))


def test_the_control_decoder_swaps_the_labels_of_the_crops_it_is_given(balanced):
    splits, rows = real_splits(balanced, read_splits(balanced), ("ffpp",))
    swap = swapped_crops(rows)
    dec = SBIDecoder(SBIConfig(), 0.3, _tail, seed=3, swapped=swap, shuffle=True)
    from dftrain.data import Piece, read_pieces

    tr = splits["train"]
    for s in read_pieces([Piece(tr.shards[0], 0, 3, 3, tr.members[0])]):
        (_, y_real), (_, y_fake) = dec(s)
        key = json.loads(s["json"])["key"]
        assert (y_real, y_fake) == ((1, 0) if swap[key] else (0, 1))


def test_a_crop_without_landmarks_is_named(balanced, tmp_path):
    from dfprep.shards import encode_sample

    dec = SBIDecoder(SBIConfig(), 0.3, _tail, seed=0)
    meta = {"key": "wdf-x_s00000_0", "label": 0, "video_id": "wdf-x", "dataset": "wilddeepfake",
            "bbox": [0, 0, 10, 10], "landmarks": [0.0] * 10}  # fmt: skip
    sample = {**encode_sample(meta, b"jpg"), "__key__": meta["key"], "__url__": "t.tar"}
    with pytest.raises(
        InputError, match=r"t.tar: sample wdf-x_s00000_0: no usable landmarks.*wilddeepfake"
    ):
        dec(sample)


# ---- the configuration ------------------------------------------------------------------------


def test_sbi_settings_are_validated_with_the_rest(tmp_path):
    sbi = SBIConfig(enabled=True)
    with pytest.raises(ConfigError, match=r"train.labels.mode: category: SBI's pseudo-fakes"):
        TrainConfig(sbi=sbi, labels=LabelConfig(mode="category"))
    with pytest.raises(ConfigError, match=r"train.optim.batch_size: 31: SBI's batch"):
        TrainConfig(sbi=sbi, optim=OptimConfig(batch_size=31))
    for bad, msg in (({"margin": -1}, "train.sbi.margin: -1 is not auto or a number in"),
                     ({"margin": "big"}, "train.sbi.margin: 'big' is not auto"),
                     ({"datasets": ["ff pp"]}, "train.sbi.datasets"),
                     ({"enabled": "yes"}, "train.sbi.enabled")):  # fmt: skip
        with pytest.raises(ConfigError, match=msg):
            SBIConfig(**bad)
    for bad, key in (({"optimizer": "adam"}, "optimizer"), ({"schedule": "step"}, "schedule"),
                     ({"sam_rho": -0.1}, "sam_rho"), ({"momentum": 1.0}, "momentum"),
                     ({"decay_start": 1.0}, "decay_start")):  # fmt: skip
        with pytest.raises(ConfigError, match=f"train.optim.{key}"):
            OptimConfig(**bad)
    p = tmp_path / "params.yaml"
    p.write_text(
        yaml.safe_dump({"train": {"sbi": {"enabled": True, "datasets": ["ffpp"], "margin": 0.3}}})
    )
    cfg = load_train_params(p)
    assert cfg.sbi.enabled and cfg.sbi.datasets == ("ffpp",) and cfg.sbi.margin == 0.3
    p.write_text(yaml.safe_dump({"train": {"sbi": {"blur": 1}}}))
    with pytest.raises(ConfigError, match=r"train.sbi: unknown parameter"):
        load_train_params(p)


def test_set_options_reach_any_train_parameter():
    got = parse_settings(["optim.lr=1e-3", "train.aug.mean=[0.485, 0.456, 0.406]",
                          "model.init=timm:/w/b4.safetensors", "sbi.datasets=[ffpp]", "model.name="])  # fmt: skip
    assert got == {"optim.lr": 0.001, "aug.mean": [0.485, 0.456, 0.406],
                   "model.init": "timm:/w/b4.safetensors", "sbi.datasets": ["ffpp"], "model.name": ""}  # fmt: skip
    cfg = with_overrides(
        TrainConfig(), **parse_settings(["optim.optimizer=sgd", "optim.sam_rho=0.05"])
    )
    assert (cfg.optim.optimizer, cfg.optim.sam_rho) == ("sgd", 0.05)
    with pytest.raises(ConfigError, match=r"--set 'optim.lr': expected KEY=VALUE"):
        parse_settings(["optim.lr"])
    with pytest.raises(ConfigError, match=r"unknown parameter train.optim.rho"):
        with_overrides(TrainConfig(), **parse_settings(["optim.rho=0.05"]))
    with pytest.raises(ConfigError, match=r"train.optim.sam_rho"):
        with_overrides(TrainConfig(), **parse_settings(["optim.sam_rho=much"]))


def test_the_package_loads_its_names_on_first_use_and_the_config_stays_light():
    import subprocess
    import sys

    import dftrain.sbi

    assert all(callable(getattr(dftrain.sbi, n)) for n in dftrain.sbi.__all__)
    with pytest.raises(AttributeError, match="no attribute 'blend_faces'"):
        dftrain.sbi.blend_faces  # noqa: B018
    code = "import sys, dftrain.config; print('cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # the CLI validates options without OpenCV
