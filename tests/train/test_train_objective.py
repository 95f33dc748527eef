"""The checkpoint criterion and the triplet weight as the paper describes them: validation computes
the objective the run trains (CE + w x triplet) on the same batches every epoch, and
`loss.weight: auto` sets w once so that w x triplet ~ CE, recorded and reused on resume."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F

from dfprep.core.errors import ConfigError
from dftrain import distributed
from dftrain.bench.synthetic import write_synthetic_shards
from dftrain.config import DataConfig, LossConfig, ModelConfig, OptimConfig, TrainConfig
from dftrain.data import EvalStream
from dftrain.labels import triplet_targets
from dftrain.losses import triplet_loss
from dftrain.model import WithEmbedding
from dftrain.train import run, setup, validate
from trainer_helpers import TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cfg_of(**loss) -> TrainConfig:
    return TrainConfig(
        model=TINY,
        loss=LossConfig(**loss),
        optim=OptimConfig(epochs=2, batch_size=16, warmup_epochs=0.5, lr=5e-4),
        data=DataConfig(workers=0, shuffle_buffer=64, shuffle_initial=16),
        log_every=1,
    )


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("balanced")
    write_synthetic_shards(root, {"train": [32] * 4, "val": [24] * 2}, size=64, seed=1)
    return root


def _setup(shards, cfg: TrainConfig):
    """`dftrain.train.setup` as `run` calls it (init and labels resolved), on the CPU."""
    from dftrain.config import resolve_init
    from dftrain.labels import resolve

    cfg = resolve_init(cfg)
    cfg = dataclasses.replace(cfg, labels=resolve(cfg.labels))
    d = distributed.setup("cpu")
    return setup(shards, cfg, d, None)[0], d


def _reference(run_, batch: int) -> dict[str, float]:
    """The objective recomputed batch by batch over the val stream, read without a loader."""
    lc = run_.cfg.loss
    view = WithEmbedding(run_.vit, lc.embedding).eval()
    ce_sum = trip_sum = n = 0.0
    with torch.no_grad():
        for x, y in EvalStream(run_.splits["val"], run_.val_decode, batch):
            logits, emb = view(x)
            ce_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            t = triplet_loss(emb, triplet_targets(y, lc.triplet_labels), lc.triplet, lc.margin)
            trip_sum += float(t) * len(y)
            n += len(y)
    return {"ce": ce_sum / n, "triplet": trip_sum / n}


def test_validation_loss_is_the_trained_objective_on_fixed_batches(shards):
    run_, d = _setup(shards, cfg_of(triplet="batch_all", weight=0.25))
    stream = EvalStream(run_.splits["val"], run_.val_decode, 16)
    val = validate(run_.vit, stream, 0, run_.cfg, d)
    want = _reference(run_, 16)
    assert val["ce"] == pytest.approx(want["ce"], rel=1e-5)
    assert val["triplet"] == pytest.approx(want["triplet"], rel=1e-5) and val["triplet"] > 0
    assert val["loss"] == pytest.approx(want["ce"] + 0.25 * want["triplet"], rel=1e-5)
    # the same batches every epoch (for the run's loader workers, which resume keeps): the same
    # figures each time the same model is validated
    for workers in (0, 2):
        a, b = (validate(run_.vit, EvalStream(run_.splits["val"], run_.val_decode, 16), workers,
                         run_.cfg, d) for _ in range(2))  # fmt: skip
        assert a == b
    assert a["ce"] == pytest.approx(val["ce"], rel=1e-5)  # CE does not depend on the batches
    ce_only = dataclasses.replace(run_.cfg, loss=dataclasses.replace(run_.cfg.loss, val_loss="ce"))
    assert validate(run_.vit, stream, 0, ce_only, d)["loss"] == pytest.approx(want["ce"], rel=1e-5)


def test_auto_weight_balances_the_terms_and_is_recorded(shards, tmp_path):
    result = run(shards, tmp_path / "r", cfg_of(triplet="batch_all"), progress=False)
    meta = json.loads((tmp_path / "r" / "checkpoints" / "best" / "config.json").read_text())
    rec = meta["loss_weight"]
    w = meta["train_config"]["loss"]["weight"]
    assert rec["auto"] and isinstance(w, float) and w == rec["weight"] > 0
    assert rec["ce"] == pytest.approx(math.log(2), abs=0.02)  # a fresh head: near chance
    assert w * rec["triplet"] == pytest.approx(rec["ce"], rel=1e-6)  # w x triplet = CE at start
    assert rec["batches"] == 8  # min(weight_batches 20, the 8 steps of an epoch)
    live = json.loads((tmp_path / "r" / "dvclive" / "metrics.json").read_text())
    assert live["loss/weight"] == pytest.approx(w)
    assert live["best/val_loss"] == pytest.approx(result.best_val_loss)
    best = result.history[result.best_epoch]
    assert live["best/val_ce"] == pytest.approx(best["val_ce"])
    assert best["val_loss"] == pytest.approx(best["val_ce"] + w * best["val_triplet"], rel=1e-5)


def test_resume_reuses_the_recorded_weight(shards, tmp_path, monkeypatch):
    cfg = cfg_of(triplet="hard")
    run(shards, tmp_path / "r", cfg, progress=False, stop_after=1)
    first = json.loads((tmp_path / "r" / "checkpoints" / "last" / "config.json").read_text())
    import dftrain.train as train_module

    def never(_run):
        raise AssertionError("w found again on resume")

    monkeypatch.setattr(train_module, "auto_weight", never)
    run(shards, tmp_path / "r", cfg, progress=False, resume=True)
    last = json.loads((tmp_path / "r" / "checkpoints" / "last" / "config.json").read_text())
    assert last["loss_weight"] == first["loss_weight"]
    assert last["train_config"]["loss"]["weight"] == first["loss_weight"]["weight"]
    assert last["epoch"] == 1
    # a given number equal to the recorded w resumes too; another number is refused
    given = dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, weight=0.5))
    with pytest.raises(ConfigError, match=r"train\.loss\.weight"):
        run(shards, tmp_path / "r", given, progress=False, resume=True)


def test_auto_weight_leaves_batchnorm_statistics_alone(shards):
    cnn = ModelConfig(name="resnet10t", img_size=32, drop_path=0.0)
    cfg = dataclasses.replace(cfg_of(triplet="batch_all"), model=cnn)
    run_, _ = _setup(shards, cfg)
    assert run_.loss_weight["auto"] and run_.loss_weight["weight"] > 0
    torch.manual_seed(cfg.seed)
    from dftrain.model import create_model

    fresh = create_model(cnn, 2)
    got = dict(run_.vit.named_buffers())
    assert all(torch.equal(got[k], b) for k, b in fresh.named_buffers())


def test_weight_is_auto_or_a_number():
    assert LossConfig().weight == "auto" and LossConfig(weight=2).weight == 2.0
    for bad in ("Auto", -1, 1e9, True):
        with pytest.raises(ConfigError, match=r"train\.loss\.weight: .* is not 'auto' or a number"):
            LossConfig(weight=bad)
    with pytest.raises(ConfigError, match=r"train\.loss\.val_loss"):
        LossConfig(val_loss="auc")
    assert LossConfig(triplet="none").weight == "auto"  # a CE run: no term to weigh (w = 0)
