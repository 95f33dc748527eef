"""Shared fixtures: the sample dataset is generated once per test session (it is deterministic)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DVC_NO_ANALYTICS", "1")


@pytest.fixture(scope="session")
def sample_synth(tmp_path_factory) -> dict:
    """The default `dfprep synth` dataset (FF++ layout, 50 videos) and synth's report of it."""
    from dfprep.config import SynthConfig
    from dfprep.synth import synth_ffpp

    return synth_ffpp(tmp_path_factory.mktemp("sample") / "ffpp", SynthConfig())


@pytest.fixture(scope="session")
def sample_root(sample_synth) -> Path:
    return Path(sample_synth["root"])


@pytest.fixture(scope="session")
def sample_manifest(sample_root, tmp_path_factory) -> Path:
    from dfprep.manifest import build_manifest, write_manifest

    out = tmp_path_factory.mktemp("manifests") / "ffpp.parquet"
    return write_manifest(build_manifest("ffpp", sample_root), out)


@pytest.fixture
def one_torch_thread():
    """Tiny models on a shared 2-core box run several times faster on one intra-op thread."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
