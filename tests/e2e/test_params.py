"""params.yaml mirrors the config dataclasses' defaults (every default lives in config.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from dfprep.config import Params, load_params
from dfprep.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DEMO_ONLY = {"sample"}  # sizes of the DVC demo on the sample dataset


def _plain(x):
    if isinstance(x, tuple):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def test_params_yaml_mirrors_the_pipeline_defaults():
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    defaults = _plain(dataclasses.asdict(Params()))
    for section, values in defaults.items():
        assert data.get(section) == values, (
            f"params.yaml section {section!r} differs from config.py"
        )


def test_params_yaml_mirrors_the_trainer_defaults():
    pytest.importorskip("dftrain.config")
    from dftrain.config import eval_defaults, train_defaults

    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert data.get("train") == _plain(train_defaults())
    assert data.get("eval") == _plain(eval_defaults())


def test_params_yaml_has_no_unknown_sections():
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    known = {f.name for f in dataclasses.fields(Params)} | DEMO_ONLY | {"train", "eval"}
    assert set(data) <= known


def test_the_loader_knows_every_section_of_the_packages_and_the_experiments():
    """The loader's list of top-level sections (an unknown one is an error) is exactly the
    packages' sections plus the experiments' own keys, and every params file here is read."""
    from dfprep.core.config import EXPERIMENT_SECTIONS, PACKAGE_SECTIONS, read_params

    assert {f.name for f in dataclasses.fields(Params)} | {"train", "eval"} == PACKAGE_SECTIONS
    files = [ROOT / "params.yaml", *sorted((ROOT / "experiments").glob("*/params.yaml"))]
    used = set().union(*(read_params(p) for p in files))  # none is refused
    assert used - PACKAGE_SECTIONS == EXPERIMENT_SECTIONS


def test_load_params_roundtrip_and_errors(tmp_path):
    assert load_params(ROOT / "params.yaml") == Params()
    p = tmp_path / "p.yaml"
    p.write_text("decode: {fps: 2}\n")
    assert load_params(p).decode.fps == 2.0
    p.write_text("decode: {fsp: 2}\n")
    with pytest.raises(ConfigError, match="unknown parameter"):
        load_params(p)
    p.write_text("crop: {size: big}\n")
    with pytest.raises(ConfigError, match=r"crop\.size: expected an integer"):
        load_params(p)
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")


EXPERIMENTS = sorted(p.parent.name for p in (ROOT / "experiments").glob("*/params.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_each_experiment_trains_at_its_documented_peak_lr(name):
    """Through the real loader: the paper at blr 1e-4 x 64 / 256 = 2.5e-5 (no absolute override),
    the miniature at the lr its params.yaml sets for its small CNN."""
    pytest.importorskip("dftrain.config")
    from dftrain.config import effective_lr, load_train_params

    path = ROOT / "experiments" / name / "params.yaml"
    raw = yaml.safe_load(path.read_text())["train"].get("optim", {})
    lr, global_batch, _ = effective_lr(load_train_params(path).optim, world=1)
    if name == "paper":
        assert "lr" not in raw and "blr" not in raw and global_batch == 64
        assert lr == pytest.approx(2.5e-5, rel=1e-12)
    elif "lr" in raw:
        assert lr == raw["lr"]
    else:
        assert lr == pytest.approx(raw.get("blr", 1e-4) * global_batch / 256)
    assert set(EXPERIMENTS) >= {"paper", "mini"}
