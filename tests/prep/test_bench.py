"""dfprep bench: the machine case runs end to end and its figures are what they say they are."""

from __future__ import annotations

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
        (["--case", "banana"], "bench.case: 'banana' is not one of stages, machine, pairing"),
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
