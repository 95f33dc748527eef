"""dfprep bench: the machine case runs end to end and its figures are what they say they are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dfprep.bench import BenchConfig, run_machine
from dfprep.config import Params

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_machine_case_reports_every_figure_against_the_limit(tmp_path):
    cfg = BenchConfig.for_case("machine", n=2, seconds=1, preset=("ultrafast",), size=(320, 240))
    (res,) = run_machine(None, Params(), cfg, tmp_path)
    t = res.timings
    decode, detect = t["decode only (1 process, 1 thread)"], t["detect only (1 process, 1 thread)"]
    assert res.cores >= 1 and res.limit == pytest.approx((decode + detect) / res.cores)
    extract = t["dfprep extract, default options"]
    naive = t[f"naive baseline, Pool({res.cores})"]
    assert min(t.values()) > 0 and res.frames_sampled == 2  # one frame a second of each 1 s clip
    assert set(res.startup) == {"cluster start + workers warm", f"naive Pool({res.cores}) start"}
    assert res.ratios["naive / extract"] == pytest.approx(naive / extract)
    assert res.ratios["extract / limit"] == pytest.approx(extract / res.limit)
    assert set(res.targets) == set(res.ratios)
    if res.cores > 1:
        assert res.ratios[f"speed-up {res.cores} workers vs 1"] == pytest.approx(
            t["dfprep extract, 1 worker x 1 thread"] / extract
        )
    assert "x264 ultrafast" in res.title and res.videos == 2


def test_bench_options_are_checked_before_any_work(tmp_path):
    for args, words in (
        (
            ["--case", "banana"],
            "bench.case: 'banana' is not one of stages, machine, pairing, detector, gpu",
        ),
        (["--case", "detector", "--device", "tpu"], "bench.device: 'tpu' is not one of auto"),
        (["--case", "detector", "--batches", "0"], "bench.batches: 0 is not in [1, 4096]"),
        (["--case", "gpu", "--repeat", "0"], "bench.repeat: 0 is not in [1, 100]"),
        (["--case", "gpu", "--size", "1920x1081"], "bench.size: 1081 is not an even number"),
        (["--preset", "warp"], "bench.preset: 'warp' is not one of ultrafast, superfast"),
        (["--n", "0"], "bench.n: 0 is not in [1, 10000]"),
        (["--workers", "1,x"], "bench.workers: expected an integer"),
        (["--preset", "fast,slow"], "bench.preset: the stages case takes one preset"),
        (["--case", "machine", "--seconds", "0"], "bench.seconds: 0.0 is not in (0, 3600]"),
    ):
        r = subprocess.run(
            [BIN / "dfprep", "bench", *args, "--work-dir", tmp_path],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith("error: options: ") and words in r.stderr, r.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_gpu_case_times_decode_cpu_and_gpu_extract_and_estimates_the_paper_scale(tmp_path):
    """--device cpu: the GPU mode's detector process on the CPU (the figures are no GPU's)."""
    from dfprep.bench import run_gpu
    from dfprep.bench.gpu import CPU, DECODE, GPU, PAPER_FRAMES

    cfg = BenchConfig.for_case("gpu", device="cpu", n=2, seconds=1, size=(320, 240), repeat=2)
    out = tmp_path / "gpu.json"
    res = run_gpu(None, Params(), cfg, tmp_path, out)
    assert (res.clips, res.frames_sampled, res.device) == (4, 4, "cpu")  # 1 fps of 4 1 s clips
    assert set(res.seconds) == {DECODE, CPU, GPU} and min(res.seconds.values()) > 0
    assert res.fps[GPU] == pytest.approx(res.frames_sampled / res.seconds[GPU])
    ratio = res.targets["GPU extract / decode only (time)"]["measured"]
    assert ratio == pytest.approx(res.seconds[GPU] / res.seconds[DECODE], abs=1e-3)
    assert res.detector["frames"] == 4 and res.detector["forwards"] >= 1
    assert res.estimate["hours"] == pytest.approx(PAPER_FRAMES / res.fps[GPU] / 3600, abs=0.01)
    assert "ESTIMATE" in res.estimate["what"] and "not GPU figures" in res.notes[-1]
    assert json.loads(out.read_text())["estimate"] == res.estimate
