"""Extract on real Dask clusters, and resume after kill -9 of the whole process tree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import faults as F
from dfprep.config import Params, replace
from dfprep.extract import run_extract
from dfprep.synth import make_face_video
from test_extract import _digests, _manifest

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dask")
    v = root / "v"
    for i in range(6):
        make_face_video(
            v / f"{i}.mp4", fps=(25, 30, 29.97)[i % 3], size=(320, 240), seconds=3, seed=i
        )
    (v / "bad.mp4").write_bytes(b"\x00" * 1000)
    return _manifest(v, [f"{i}.mp4" for i in range(6)] + ["bad.mp4"], root / "m.parquet")


def _p(**run) -> Params:
    p = Params()
    return replace(p, shard=replace(p.shard, videos_per_shard=2), run=replace(p.run, **run))


@pytest.fixture(scope="module")
def reference(videos, tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("ref") / "out"
    s = run_extract([videos], out, _p(scheduler="inline"))
    assert (s.ok, s.failed, s.jobs) == (6, 1, 4)
    return _digests(out)


def _one_job(**run) -> Params:
    """The defaults (64 videos per shard job): the 7 videos are one job, fewer jobs than workers."""
    p = Params()
    return replace(p, run=replace(p.run, **run))


def test_shards_are_byte_identical_on_any_number_of_workers(videos, tmp_path):
    """Same manifest and params, same bytes: inline, a LocalCluster of 1 and of 2 workers, and a
    real `dask scheduler` with `dask worker` processes (2 x 1 thread, 1 x 2 threads). One shard
    job of 7 videos: its videos run on every worker at once and the driver writes them in order."""
    from distributed import get_task_stream

    from dfprep.distribute import make_client

    s = run_extract([videos], tmp_path / "inline", _one_job(scheduler="inline"))
    assert (s.jobs, s.ok, s.failed) == (1, 6, 1)
    reference = _digests(tmp_path / "inline")
    assert len(reference) == 3  # tar, index, videos of the one shard
    got = {}
    for workers in (1, 2):
        p = _one_job(workers=workers)
        with make_client(p.run) as client:
            client.wait_for_workers(workers, timeout=60)
            with get_task_stream(client) as ts:
                s = run_extract([videos], tmp_path / f"local{workers}", p, client=client)
        ran_on = {t["worker"] for t in ts.data if str(t["key"]).startswith("dfprep-video")}
        assert len(ran_on) == workers, f"one job on {workers} worker(s) ran on {len(ran_on)}"
        assert s.done == 1 and not s.failed_jobs
        got[f"LocalCluster, {workers} worker(s)"] = _digests(tmp_path / f"local{workers}")
    for n, threads in ((2, 1), (1, 2)):
        name = f"dask scheduler + {n} dask worker(s) x {threads} thread(s)"
        (tmp_path / f"cluster{n}x{threads}").mkdir()
        with F.dask_cluster(
            tmp_path / f"cluster{n}x{threads}", workers=n, nthreads=threads
        ) as address:
            s = run_extract([videos], tmp_path / f"dask{n}x{threads}", _one_job(scheduler=address))
        assert s.done == 1 and not s.failed_jobs
        got[name] = _digests(tmp_path / f"dask{n}x{threads}")
    assert got == dict.fromkeys(got, reference)


@pytest.mark.parametrize("scheduler", ["inline", "local"])
def test_kill_9_then_rerun_gives_identical_shards(videos, reference, tmp_path, scheduler):
    out = tmp_path / "out"
    cmd = [
        BIN / "dfprep",
        "extract",
        videos,
        "--out",
        out,
        "--videos-per-shard",
        "2",
        "--no-progress",
    ]
    if scheduler == "inline":
        cmd += ["--scheduler", "inline"]
    else:
        cmd += ["--workers", "2"]
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    proc = subprocess.Popen(
        cmd, start_new_session=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        # killed as soon as the first shard is published: the others are then mid-way or queued
        F.wait_for(lambda: any((out / "meta").glob("*.stats.json")), what="first shard", step=0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done_before = len(list((out / "meta").glob("*.stats.json")))
    assert done_before < 4, "the run finished before it was killed; the test proves nothing"
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert _digests(out) == reference
    assert not [p for p in (out / "shards").iterdir() if p.name.startswith(".")]
