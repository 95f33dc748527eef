"""Bad parameters on the command line or in a params file: exit status 2 and one line naming the
key, before a cluster starts or a file is written; the one error path both CLIs share."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from dfprep.adapters import VideoRow
from dfprep.cli import app as dfprep_app
from dfprep.config import RunConfig
from dfprep.core.cli import handle_errors, message
from dfprep.core.errors import EXIT_DIVERGED, ConfigError, DfprepError, InputError, first_line
from dfprep.core.system import available_cores, default_workers
from dfprep.manifest import rows_to_table, write_manifest

ROOT = Path(__file__).resolve().parents[2]


def _params_with(tmp_path: Path, section: str, key: str, value, sub: str | None = None) -> Path:
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    target = data[section] if sub is None else data[section][sub]
    target[key] = value
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def _manifest(tmp_path: Path, name: str = "m.parquet") -> Path:
    rows = [VideoRow("a.mp4", "test", 1, "m", "FS")]
    return write_manifest(rows_to_table("t", tmp_path / "videos", rows), tmp_path / name)


@pytest.fixture
def no_cluster(monkeypatch):
    """Fail the test if a Dask cluster or client is started."""

    def refuse(*a, **k):
        raise AssertionError("a Dask cluster was started")

    monkeypatch.setattr("dfprep.distribute.LocalCluster", refuse)
    monkeypatch.setattr("dfprep.distribute.Client", refuse)


@pytest.mark.parametrize(
    ("section", "key", "value", "match"),
    [
        ("crop", "margin", -5, "crop.margin: -5 is not in [0, 4]"),
        ("crop", "jpeg_quality", 500, "crop.jpeg_quality: 500 is not in [1, 100]"),
        ("decode", "fps", float("nan"), "decode.fps: nan is not in (0, 240]"),
        ("decode", "fps", 1e9, "decode.fps: 1000000000.0 is not in (0, 240]"),
        ("detect", "score_threshold", 2.0, "detect.score_threshold: 2.0 is not in [0, 1]"),
        ("detect", "max_faces", -1, "detect.max_faces: -1 is not in [0, 1000]"),
        (
            "run",
            "memory_limit",
            "banana",
            "run.memory_limit: 'banana' is not 'auto' or a size such as 4GB",
        ),
    ],
)
def test_dfprep_extract_refuses_a_bad_params_file_before_any_work(
    tmp_path, no_cluster, section, key, value, match
):
    p = _params_with(tmp_path, section, key, value)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        dfprep_app, ["extract", str(_manifest(tmp_path)), "--out", str(out), "--params", str(p)]
    )
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines == [f"error: {p}: {match}"], res.output
    assert not out.exists()


def test_dfprep_options_are_checked_like_the_file(tmp_path, no_cluster):
    out = tmp_path / "out"
    for opts, match in [
        (["--fps", "-1"], "error: options: decode.fps: -1.0 is not in (0, 240]"),
        (
            ["--videos-per-shard", "0"],
            "error: options: shard.videos_per_shard: 0 is not in [1, 1000000]",
        ),
        (
            ["--detector", "dlib"],
            "error: options: detect.backend: unknown backend 'dlib' (known: insightface, retinaface-mnet, retinaface-mnet-torch)",
        ),
        (
            ["--scheduler", "banana"],
            "error: options: run.scheduler: 'banana' is not '', 'inline' or a Dask address",
        ),
    ]:
        res = CliRunner().invoke(
            dfprep_app, ["extract", str(_manifest(tmp_path)), "--out", str(out), *opts]
        )
        assert res.exit_code == 2 and res.output.strip().startswith(match), (opts, res.output)
    assert not out.exists()


def test_unreachable_scheduler_is_one_line(tmp_path):
    p = _params_with(tmp_path, "run", "connect_timeout", 1.0)
    out = tmp_path / "out"
    t0 = time.monotonic()
    res = CliRunner().invoke(
        dfprep_app,
        [
            "extract",
            str(_manifest(tmp_path)),
            "--out",
            str(out),
            "--params",
            str(p),
            "--scheduler",
            "tcp://127.0.0.1:1",
        ],
    )
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot reach the Dask scheduler at tcp://127.0.0.1:1: "
    ), res.output
    assert "Traceback" not in res.output and not out.exists()  # refused before any file is written
    assert time.monotonic() - t0 < 30


def test_make_client_names_an_unreachable_scheduler():
    from dfprep.distribute import make_client

    with (
        pytest.raises(
            ConfigError, match=r"^cannot reach the Dask scheduler at tcp://127\.0\.0\.1:1: "
        ),
        make_client(RunConfig(scheduler="tcp://127.0.0.1:1", connect_timeout=0.5)),
    ):
        pass


@pytest.mark.parametrize(
    ("opts", "match"),
    [
        (["--epochs", "0"], "options: train.optim.epochs: 0 is not in [1, 100000]"),
        (["--batch-size", "0"], "options: train.optim.batch_size: 0 is not in [2, 65536]"),
        (["--lr", "-1"], "options: train.optim.lr: -1.0 is not in [0, 1]"),
        (["--lr", "nan"], "options: train.optim.lr: nan is not in [0, 1]"),
        (["--seed", "-1"], "options: train.seed: -1 is not in [0, 4294967295]"),
    ],
)
def test_dftrain_run_refuses_bad_options(tmp_path, opts, match):
    from dftrain.cli import app

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", str(tmp_path / "data"), "--out", str(out), *opts])
    assert res.exit_code == 2, res.output
    assert res.output.strip() == f"error: {match}", res.output
    assert not out.exists()


def test_dftrain_run_refuses_a_bad_params_file(tmp_path):
    from dftrain.cli import app

    p = _params_with(tmp_path, "train", "margin", float("inf"), sub="loss")
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app, ["run", str(tmp_path / "data"), "--out", str(out), "--params", str(p)]
    )
    assert res.exit_code == 2, res.output
    assert res.output.strip() == f"error: {p}: train.loss.margin: inf is not in [0, 1000]"
    assert not out.exists()


def test_paths_with_markup_characters_print_intact(tmp_path):
    m = _manifest(tmp_path, "ffpp [v2].parquet")
    (tmp_path / "ffpp [v2].parquet").unlink()
    res = CliRunner().invoke(
        dfprep_app, ["extract", str(m), "--out", str(tmp_path / "out"), "--scheduler", "inline"]
    )
    assert res.exit_code == 2 and "ffpp [v2].parquet" in res.output, res.output
    weird = tmp_path / "[bold]p.yaml"
    shutil.copy(ROOT / "params.yaml", weird)
    weird.write_text(weird.read_text().replace("margin: 0.3", "margin: -1"))
    res = CliRunner().invoke(
        dfprep_app, ["extract", str(m), "--out", str(tmp_path / "out"), "--params", str(weird)]
    )
    assert res.exit_code == 2 and f"error: {weird}: crop.margin" in res.output, res.output


def test_one_error_path_exit_statuses_and_messages():
    from dftrain.train import DivergedError

    assert not issubclass(DivergedError, ConfigError) and issubclass(DivergedError, DfprepError)
    assert (
        DivergedError.exit_code == EXIT_DIVERGED == 3
        and ConfigError.exit_code == InputError.exit_code == 2
    )

    app = typer.Typer()

    @app.command()
    @handle_errors
    def go(kind: str) -> None:
        raise {"diverged": DivergedError("loss is nan at step 3; lower train.optim.lr"),
               "empty": InputError(""), "config": ConfigError("a: b\nsecond line")}[kind]  # fmt: skip

    res = CliRunner().invoke(app, ["diverged"])
    assert (
        res.exit_code == 3
        and res.output.strip() == "error: loss is nan at step 3; lower train.optim.lr"
    )
    res = CliRunner().invoke(app, ["empty"])
    assert res.exit_code == 2 and res.output.strip() == "error: InputError"
    res = CliRunner().invoke(app, ["config"])
    assert res.exit_code == 2 and res.output.strip() == "error: a: b"
    assert first_line("") == "" and first_line(ValueError()) == "" and first_line("\n x\ny") == "x"
    # an error a DataLoader worker raised comes back with the worker's traceback as its message
    wrapped = InputError(
        "Caught InputError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n    raise InputError(msg)\ndfprep.core.errors.InputError: shard.tar: truncated\n'
    )
    assert message(wrapped) == "shard.tar: truncated"


def test_worker_counts_follow_cpu_affinity(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert available_cores() == 6
    assert default_workers() == 6
    assert default_workers(processes=2, reserve=1) == 2
    assert default_workers(reserve=1, limit=3) == 3 and default_workers(reserve=10) == 1
    from dfprep.distribute import default_workers as dask_workers
    from dftrain.data import default_workers as loader_workers
    from dftrain.inference import default_workers as eval_workers

    assert dask_workers(RunConfig()) == 6 and dask_workers(RunConfig(workers=3)) == 3
    assert loader_workers(2, 100) == 2 and eval_workers(2) == 2
