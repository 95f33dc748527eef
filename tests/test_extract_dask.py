"""Extract on real Dask clusters, and resume after kill -9 of the whole process tree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
        make_face_video(v / f"{i}.mp4", fps=(25, 30, 29.97)[i % 3], size=(320, 240), seconds=3, seed=i)
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


def test_local_cluster_matches_inline(videos, reference, tmp_path):
    s = run_extract([videos], tmp_path / "out", _p(workers=2))
    assert s.done == 4 and not s.failed_jobs
    assert _digests(tmp_path / "out") == reference


def _wait_for(pred, timeout=60.0, what="condition", poll=0.1):
    t0 = time.time()
    while not pred():
        if time.time() - t0 > timeout:
            raise TimeoutError(what)
        time.sleep(poll)


def test_distributed_cluster_matches_local(videos, reference, tmp_path):
    sf = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--dashboard-address", "127.0.0.1:0", "--scheduler-file", sf],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_for(sf.exists, what="scheduler file")
        address = json.loads(sf.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for _ in range(2):
            procs.append(subprocess.Popen([BIN / "dask", "worker", address, "--nthreads", "1",
                                           "--host", "127.0.0.1", "--no-dashboard"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address) as c:
            c.wait_for_workers(2, timeout=60)
            hosts = c.run(lambda: os.getpid())
        assert len(set(hosts.values())) == 2
        s = run_extract([videos], tmp_path / "out", _p(scheduler=address))
        assert s.done == 4 and not s.failed_jobs
        assert _digests(tmp_path / "out") == reference
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


@pytest.mark.parametrize("scheduler", ["inline", "local"])
def test_kill_9_then_rerun_gives_identical_shards(videos, reference, tmp_path, scheduler):
    out = tmp_path / "out"
    cmd = [BIN / "dfprep", "extract", videos, "--out", out, "--videos-per-shard", "2", "--no-progress"]
    if scheduler == "inline":
        cmd += ["--scheduler", "inline"]
    else:
        cmd += ["--workers", "2"]
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    proc = subprocess.Popen(cmd, start_new_session=True, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # killed as soon as the first shard is published: the others are then mid-way or queued
        _wait_for(lambda: any((out / "shards").glob("*.stats.json")), what="first shard", poll=0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done_before = len(list((out / "shards").glob("*.stats.json")))
    assert done_before < 4, "the run finished before it was killed; the test proves nothing"
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert _digests(out) == reference
    assert not [p for p in (out / "shards").iterdir() if p.name.startswith(".")]
