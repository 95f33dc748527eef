"""`dftrain gpu-bench --tiny`: the whole GPU suite's code path on a CPU, so the one run on a GPU
host cannot fail on a typo. Checks that every measurement is there, positive and consistent
with the numbers it was computed from (no assertion on speed: these are not results)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from dftrain.bench.synthetic import write_synthetic_extract, write_synthetic_shards
from dftrain.cli import app
from dftrain.config import TrainConfig, check_config, load_train_params
from dftrain.testset import read_test_set

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pos(x) -> bool:
    return isinstance(x, (int, float)) and x > 0


@pytest.mark.slow  # 66-84 s on 2 cores shared with other jobs
def test_tiny_suite_writes_every_measurement(tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(
        app, ["gpu-bench", "--tiny", "--device", "cpu", "--out", str(out),
              "--work", str(tmp_path / "work")],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads((out / "bench.json").read_text())
    md = (out / "bench.md").read_text()
    assert res["errors"] == {}
    assert res["tiny"] is True and "not a result" in md
    assert res["host"]["device"] == "cpu" and res["precision"] == "fp32"

    # 1 + 2: bare loop vs our step at every batch size, ratio from the two figures
    assert [m["batch"] for m in res["model"]] == list(res["sizes"]["batches"])
    for m in res["model"]:
        assert _pos(m["bare_img_per_s"]) and _pos(m["ours_img_per_s"])
        assert m["ratio"] == pytest.approx(m["ours_img_per_s"] / m["bare_img_per_s"])
    # 3: compile
    c = res["compile"]
    assert c["backend"] == "eager" and c["compile_s"] >= 0
    assert _pos(c["eager_img_per_s"]) and _pos(c["compiled_img_per_s"])
    assert c["speedup"] == pytest.approx(c["compiled_img_per_s"] / c["eager_img_per_s"])
    # 4: loader per worker count (the default count included), then the whole run
    workers = [r_["workers"] for r_ in res["loader"]]
    assert set(res["sizes"]["loader_workers"]) <= set(workers)
    assert res["loader_default_workers"] in workers
    for row in res["loader"]:
        assert _pos(row["samples_per_s"]) and row["samples"] >= res["sizes"]["loader_batches"]
    run = res["run"]
    assert run["steps"] == res["sizes"]["train_shards"] * res["sizes"]["per_shard"] // run["batch"]
    assert _pos(run["steps_per_s"]) and _pos(run["wall_s"]) and run["timed_steps"] >= 1
    assert run["img_per_s"] == pytest.approx(run["steps_per_s"] * run["batch"])
    assert run["gpu_util_mean"] is None  # no GPU: reported as n/a, not invented
    assert "GPU utilisation n/a" in md
    # 5: eval and predict
    e = res["eval"]
    s = res["sizes"]
    assert e["crops"] == s["eval_shards"] * s["eval_videos_per_shard"] * s["eval_crops_per_video"]
    assert e["crops_per_s"] == pytest.approx(e["crops"] / e["seconds"])
    p = res["predict"]
    secs = s["video"][3]
    assert p["video_seconds"] == pytest.approx(secs, abs=0.2)
    assert p["faces"] == p["frames_sampled"] >= 2  # a face in every sampled frame
    parts = p["decode_s_per_s"] + p["detect_s_per_s"] + p["model_s_per_s"]
    assert all(_pos(p[k]) for k in ("decode_s_per_s", "detect_s_per_s", "model_s_per_s"))
    assert parts == pytest.approx(p["s_per_s"])
    assert p["s_per_s"] == pytest.approx(p["seconds"] / p["video_seconds"])
    # targets computed from the measured numbers
    t = {x["target"]: x for x in res["targets"]}
    m0 = next(m for m in res["model"] if m["batch"] == s["run_batch"])
    assert t[">= 0.90"]["measured"] == pytest.approx(m0["ratio"])
    default = next(r_ for r_ in res["loader"] if r_["workers"] == res["loader_default_workers"])
    assert t[">= 1.5"]["measured"] == pytest.approx(default["samples_per_s"] / m0["ours_img_per_s"])
    assert t["< 1 (real time)"]["met"] == (p["s_per_s"] < 1)
    assert "| `dftrain predict`" in md and "| target |" in md


def test_suite_refuses_bad_options_before_any_work(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    for args, words in (
        (["--device", "gpu"], "error: options: gpu_bench.device: 'gpu' is not one of auto, cpu"),
        (["--data", str(tmp_path)], "error: --data " + str(tmp_path) + ": no sizes.json"),
        (["--work", str(tmp_path / "f")], "error: --work " + str(tmp_path / "f") + ": exists"),
    ):
        (tmp_path / "f").write_text("a file")
        r = runner.invoke(app, ["gpu-bench", "--out", str(out), *args])
        assert r.exit_code == 2 and r.output.strip() == r.output.strip().splitlines()[0], r.output
        assert words in r.output, r.output
    r = runner.invoke(app, ["gpu-bench"])
    assert r.exit_code == 2 and "Missing option '--out'" in r.output
    assert not out.exists()


def test_bench_refuses_bad_options_before_any_work():
    runner = CliRunner()
    for args, words in (
        (["--workers", "1,x"], "bench.workers: expected an integer in [-1, 1024], got 'x'"),
        (["--workers", "-3"], "bench.workers: -3 is not in [-1, 1024]"),
        (["--steps", "0"], "bench.steps: 0 is not in [1, 1000000]"),
        (["--batch", "1"], "train.optim.batch_size: 1 is not in [2, 65536]"),
    ):
        r = runner.invoke(app, ["bench", *args])
        assert r.exit_code == 2 and r.output.startswith(f"error: options: {words}"), r.output


def test_compile_option_is_validated_and_honoured(tmp_path, monkeypatch):
    assert TrainConfig().compile is False and TrainConfig().compile_backend == "inductor"
    with pytest.raises(Exception, match=r"train\.compile_backend"):
        check_config(TrainConfig(compile=True, compile_backend="tensorrt"))
    bad = tmp_path / "p.yaml"
    bad.write_text("train:\n  compile: 'yes'\n")
    with pytest.raises(Exception, match="compile"):
        load_train_params(bad)

    # `dftrain run --compile` hands the training module to torch.compile with the chosen backend
    from trainer_helpers import TINY

    seen = []
    real = torch.compile

    def spy(module, **kw):
        seen.append((type(module).__name__, kw.get("backend")))
        return real(module, **kw)

    monkeypatch.setattr(torch, "compile", spy)
    data = tmp_path / "data"
    write_synthetic_shards(data, {"train": [8] * 2, "val": [8]}, size=32)
    params = tmp_path / "params.yaml"
    params.write_text(
        "train:\n  compile_backend: eager\n  device: cpu\n  model:\n"
        + "".join(f"    {k}: {v}\n" for k, v in
                  dict(name=TINY.name, img_size=TINY.img_size, patch_size=TINY.patch_size,
                       depth=TINY.depth, drop_path=TINY.drop_path).items())
        + "  optim:\n    epochs: 1\n    batch_size: 8\n  data:\n    workers: 0\n"
    )  # fmt: skip
    r = CliRunner().invoke(
        app, ["run", str(data), "--out", str(tmp_path / "run"), "--params", str(params),
              "--compile", "--no-progress"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert seen == [("WithEmbedding", "eager")]
    assert (tmp_path / "run" / "checkpoints" / "best" / "model.safetensors").is_file()


def test_synthetic_extract_is_a_valid_test_set(tmp_path):
    n = write_synthetic_extract(tmp_path, shards=2, videos_per_shard=3, crops_per_video=4, size=32)
    ts = read_test_set([str(tmp_path)], "test")
    assert n == 24 == len(ts.crops) and len(ts.videos) == 6
    assert sorted(set(ts.videos["label"].to_pylist())) == [0, 1]
