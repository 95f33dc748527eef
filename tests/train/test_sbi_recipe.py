"""SBI's training recipe: SGD + SAM, the linear decay, a CNN from ImageNet weights, and
`dftrain run --sbi` end to end (pseudo-fakes in the loader, the sheet, resume, eval's protocol)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from dfprep.core.errors import InputError
from dftrain.cli import app
from dftrain.config import (
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)
from dftrain.model import create_model, initialise
from dftrain.optim import build_optimizer, linear_decay_at
from dftrain.sbi import SBIConfig
from dftrain.step import sam_step, step_of, train_step
from dftrain.train import run
from sbi_helpers import write_sbi_balance

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CNN = ModelConfig(name="resnet10t", img_size=32, drop_path=0.0, init="none")


class _Probe(torch.nn.Module):
    """A linear classifier that returns (logits, features) as WithEmbedding does."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x), x


def test_sam_step_is_the_gradient_taken_at_the_ascended_weights():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
    cfg = TrainConfig(model=CNN, loss=LossConfig(triplet="none"),
                      optim=OptimConfig(optimizer="sgd", momentum=0.0, sam_rho=0.05, lr=0.1, weight_decay=0.0))  # fmt: skip
    model = _Probe()
    w0 = [p.detach().clone() for p in model.parameters()]
    # by hand: g at w, e = rho g / ||g||, the gradient at w + e, then w - lr x that gradient
    ref = _Probe()
    ref.load_state_dict(model.state_dict())
    loss = torch.nn.functional.cross_entropy(ref(x)[0], y)
    g = torch.autograd.grad(loss, list(ref.parameters()))
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in g]))
    with torch.no_grad():
        for p, t in zip(ref.parameters(), g, strict=True):
            p.add_(0.05 * t / norm)
    g2 = torch.autograd.grad(
        torch.nn.functional.cross_entropy(ref(x)[0], y), list(ref.parameters())
    )
    want = [w - 0.1 * t for w, t in zip(w0, g2, strict=True)]
    opt = build_optimizer(model, cfg.optim, torch.device("cpu"))
    assert isinstance(opt, torch.optim.SGD)
    for group in opt.param_groups:
        group["lr"] = 0.1
    first, _ = sam_step(model, opt, x, y, y, cfg, model.parameters())
    assert first.item() == pytest.approx(loss.item())  # the loss at w, as SBI logs it
    for p, w in zip(model.parameters(), want, strict=True):
        assert torch.allclose(p, w, atol=1e-6)
    assert step_of(cfg) is sam_step and step_of(TrainConfig()) is train_step


def test_linear_decay_is_sbis_linear_decay_lr():
    # SBI: LinearDecayLR(optimizer, 100, 75) stepped once an epoch: flat to epoch 75, then
    # lr - lr / 25 x (epoch - 75)
    got = [linear_decay_at(e * 10 + 3, 10, 100, 0, 1e-3, 0.0, 0.75) for e in range(100)]
    want = [1e-3 if e <= 75 else 1e-3 - 1e-3 / 25 * (e - 75) for e in range(100)]
    assert got == pytest.approx(want)
    assert linear_decay_at(5, 10, 100, 10, 1e-3, 0.0, 0.75) == pytest.approx(5e-4)  # warm-up
    assert linear_decay_at(999, 10, 100, 0, 1e-3, 1e-5, 0.75) > 1e-5  # towards min_lr


def test_a_cnn_starts_from_imagenet_weights_all_but_its_head(tmp_path):
    src = timm.create_model("resnet10t", num_classes=1000)
    save_file(src.state_dict(), str(tmp_path / "in1k.safetensors"))
    cfg = dataclasses.replace(CNN, init=f"timm:{tmp_path / 'in1k.safetensors'}", drop_rate=0.4)
    model = create_model(cfg, 2)
    how = initialise(model, cfg.init, 2e-5)
    assert "timm weights (all but the head)" in how and model.drop_rate == 0.4
    state = model.state_dict()
    assert all(
        torch.equal(state[k], v) for k, v in src.state_dict().items() if not k.startswith("fc.")
    )
    assert state["fc.weight"].shape == (2, 512)
    other = timm.create_model("resnet18", num_classes=1000)
    save_file(other.state_dict(), str(tmp_path / "r18.safetensors"))
    with pytest.raises(InputError, match=r"r18.safetensors: shapes do not fit the model"):
        initialise(model, f"timm:{tmp_path / 'r18.safetensors'}", 2e-5)


@pytest.fixture(scope="module")
def balanced(tmp_path_factory):
    """24 train reals of 6 videos in 3 shards (with fakes between them), 6 val reals."""
    root = tmp_path_factory.mktemp("sbi-run")
    train = [
        [(f"ffpp-t{v}", "ffpp", 0, 0) for v in range(s * 2, s * 2 + 2) for _ in range(4)]
        + [("ffpp-fake", "ffpp", 1, 1)]
        for s in range(3)
    ]
    val = [[(f"ffpp-v{v}", "ffpp", 0, 0) for v in range(2) for _ in range(3)]]
    write_sbi_balance(root, {"train": train, "val": val}, size=64)
    return root


def _cfg(**optim) -> TrainConfig:
    return TrainConfig(
        model=CNN, loss=LossConfig(triplet="none"), sbi=SBIConfig(enabled=True),
        optim=OptimConfig(epochs=2, batch_size=8, lr=0.01, warmup_epochs=0.0, optimizer="sgd",
                          sam_rho=0.05, schedule="linear_decay", decay_start=0.0, min_lr=0.0,
                          weight_decay=0.0, **optim),
        data=DataConfig(workers=0, shuffle_buffer=8, shuffle_initial=2), log_every=1,
    )  # fmt: skip


def test_sbi_run_trains_on_reals_and_their_fakes_and_resumes_exactly(balanced, tmp_path):
    full = run(balanced, tmp_path / "full", _cfg(), progress=False)
    assert len(full.history) == 2 and full.history[0]["val_n"] == 12.0  # 6 reals + 6 fakes
    out = tmp_path / "full"
    assert (out / "sbi-sheet.png").stat().st_size > 10_000
    meta = json.loads((out / "checkpoints" / "best" / "config.json").read_text())
    assert meta["train_config"]["sbi"]["enabled"] and meta["schedule"]["steps_per_epoch"] == 6
    assert (
        meta["schedule"]["samples_per_epoch"] == 48 and meta["schedule"]["left_out_per_epoch"] == 0
    )
    lr = (out / "dvclive" / "plots" / "metrics" / "train" / "lr.tsv").read_text().splitlines()[1:]
    assert [float(r.split("\t")[1]) for r in lr] == pytest.approx([0.01] * 6 + [0.005] * 6)
    run(balanced, tmp_path / "cut", _cfg(), progress=False, stop_after=1)
    again = run(balanced, tmp_path / "cut", _cfg(), progress=False, resume=True)
    assert len(again.history) == 2
    a = load_file(out / "checkpoints" / "last" / "model.safetensors")
    b = load_file(tmp_path / "cut" / "checkpoints" / "last" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same pseudo-fakes replayed
    # a checkpoint written before train.sbi existed resumes as a run without SBI
    plain = dataclasses.replace(
        _cfg(), sbi=SBIConfig(), optim=OptimConfig(epochs=2, batch_size=8, lr=0.01)
    )
    run(balanced, tmp_path / "old", plain, progress=False, stop_after=1)
    cfg_file = tmp_path / "old" / "checkpoints" / "last" / "config.json"
    old = json.loads(cfg_file.read_text())
    del old["train_config"]["sbi"], old["train_config"]["optim"]["sam_rho"]
    cfg_file.write_text(json.dumps(old))
    assert len(run(balanced, tmp_path / "old", plain, progress=False, resume=True).history) == 2


def test_cli_sbi_run_with_set_options_and_the_sheet_command(balanced, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        "train:\n  model: {name: resnet10t, img_size: 32, drop_path: 0.0}\n"
        "  optim: {epochs: 1, batch_size: 8, lr: 0.01, warmup_epochs: 0.0}\n"
        "  data: {workers: 0, shuffle_buffer: 8, shuffle_initial: 2}\n  loss: {triplet: none}\n"
    )
    runner = CliRunner()
    args = ["run", str(balanced), "-o", str(tmp_path / "r"), "-p", str(params), "--init", "none",
            "--sbi", "--set", "optim.optimizer=sgd", "--set", "optim.sam_rho=0.05",
            "--set", "sbi.datasets=[ffpp]", "--no-progress"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "SBI: 24 real crops of 6 videos (ffpp), each with its pseudo-fake" in res.output
    assert "sgd under SAM (rho 0.05)" in res.output
    other = [a if a != "sbi.datasets=[ffpp]" else "sbi.datasets=[dfdc]" for a in args]
    res = runner.invoke(
        app, [a if a != str(tmp_path / "r") else str(tmp_path / "s") for a in other]
    )
    assert res.exit_code == 2 and "no real crop of dfdc in the train split" in res.output
    res = runner.invoke(
        app, ["run", str(balanced), "-o", str(tmp_path / "t"), "--set", "optim.rho=1"]
    )
    assert res.exit_code == 2 and "error: options: unknown parameter train.optim.rho" in res.output
    res = runner.invoke(
        app, ["sbi-sheet", str(balanced), "-o", str(tmp_path / "sheet"), "--faces", "4"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "sheet" / "sbi-sheet.png").is_file()
    assert "crops' margin 0.3 (recorded in" in (tmp_path / "sheet" / "report.md").read_text()
    res = runner.invoke(
        app, ["sbi-sheet", str(balanced), "-o", str(tmp_path / "s2"), "--margin", "0.5"]
    )
    assert res.exit_code == 2 and "train.sbi.margin: 0.5, but" in res.output
