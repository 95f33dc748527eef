"""Extract's per-video Dask tasks: ordered shard assembly, a failing job, threads per task."""

from __future__ import annotations

import copy
import itertools
import random
from pathlib import Path

import pytest

from dfprep.config import Params, replace
from dfprep.distribute import threads_per_task
from dfprep.extract import (
    dask_run,
    plan_jobs,
    resolve_threads,
    run_extract,
    run_shard_job,
    run_video,
)
from dfprep.extract.job import OrderedJob
from dfprep.synth import make_face_video
from test_extract import _digests, _manifest


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("par")
    rels = [f"{i}.mp4" for i in range(4)]
    for i, rel in enumerate(rels):
        make_face_video(root / "v" / rel, fps=5, size=(160, 120), seconds=2, seed=i)
    (root / "v" / "bad.mp4").write_bytes(b"\x00" * 100)
    return _manifest(root / "v", [*rels, "bad.mp4"], root / "m.parquet")


def _params(per_shard: int, **run) -> Params:
    p = Params()
    return replace(p, shard=replace(p.shard, videos_per_shard=per_shard), run=replace(p.run, **run))


def test_a_shard_written_from_results_in_any_order_has_the_same_bytes(small, tmp_path):
    """The driver gets a job's videos back in whatever order the workers finish them; the shard
    is the one a single process writes going through them in manifest order."""
    p = _params(64, scheduler="inline")
    cfg = resolve_threads(p.extract, p.run)
    (job,) = plan_jobs([small], tmp_path / "ref", p.extract)
    run_shard_job(job, cfg)
    reference = _digests(tmp_path / "ref")
    results = [run_video(row, cfg) for row in job.videos]
    orders = list(itertools.permutations(range(len(results))))
    for n, order in enumerate([orders[0], orders[-1], *random.Random(0).sample(orders, 4)]):
        (other,) = plan_jobs([small], tmp_path / f"o{n}", p.extract)
        oj = OrderedJob(other)
        for k, i in enumerate(order):
            assert not oj.complete
            oj.add(i, copy.deepcopy(results[i]))
            # written so far: exactly the videos whose predecessors have all arrived
            assert oj.written == next(j for j in range(len(results) + 1) if j not in order[: k + 1])
        assert oj.complete and not oj.waiting and oj.held.bytes == 0
        oj.writer.commit(cfg)
        assert _digests(tmp_path / f"o{n}") == reference, order


def test_a_video_task_that_fails_for_good_fails_only_its_job(small, tmp_path, monkeypatch):
    """A task that raises on every retry (a bug, not a bad video: those are status rows) loses its
    shard job, whose temporary files are removed; the other jobs are written; a rerun completes
    the run with the same bytes as an inline run."""
    from distributed import Client, LocalCluster

    inline = run_extract([small], tmp_path / "inline", _params(2, scheduler="inline"))
    assert inline.jobs == 3
    calls = tmp_path / "calls"  # a file: Dask hands the task a copy of the function

    def broken(row, cfg, timeout=0.0):
        if row["path"].endswith("2.mp4"):
            with open(calls, "a") as f:
                f.write(row["video_id"] + "\n")
            raise RuntimeError("boom")
        return run_video(row, cfg, timeout)

    monkeypatch.setattr(dask_run, "run_video", broken)
    out = tmp_path / "out"
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        s = run_extract([small], out, _params(2, retries=1), client=client)
    assert s.done == 2 and [name for name, _ in s.failed_jobs] == ["m-000001"]
    assert s.failed_jobs[0][1] == "RuntimeError: boom"
    assert calls.read_text().split() == ["t-2", "t-2"]  # the first try and its one retry
    assert not [
        p
        for d in ("shards", "meta")
        for p in (out / d).iterdir()
        if p.name.startswith(".") or "000001" in p.name
    ]
    monkeypatch.undo()
    again = run_extract([small], out, _params(2, scheduler="inline"))
    assert (again.skipped, again.done) == (2, 1)
    assert _digests(out) == _digests(tmp_path / "inline")


class FakeClient:
    """What threads_per_task asks a cluster: its workers (host, threads) and each one's cores."""

    def __init__(self, workers: dict[str, tuple[str, int, int]]):
        self.workers = workers  # address -> (host, nthreads, cores)

    def scheduler_info(self, n_workers=-1):
        return {"workers": {a: {"host": h, "nthreads": n} for a, (h, n, _) in self.workers.items()}}

    def run(self, fn):
        return {a: c for a, (_, _, c) in self.workers.items()}


@pytest.mark.parametrize(
    ("workers", "tasks", "expected"),
    [
        ({"w1": ("a", 1, 2), "w2": ("a", 1, 2)}, 100, 1),  # LocalCluster: a process per core
        ({"w1": ("a", 1, 16)}, 100, 16),  # one single-threaded worker on a 16-core host
        ({"w1": ("a", 4, 16), "w2": ("a", 4, 16)}, 100, 2),  # 8 tasks at once on 16 cores
        ({"w1": ("a", 2, 16), "w2": ("b", 16, 16)}, 100, 1),  # the busiest host decides
        ({"w1": ("a", 1, 16), "w2": ("a", 1, 16)}, 1, 16),  # one video: all the cores
        ({"w1": ("a", 8, 16)}, 4, 4),  # fewer videos than worker threads
        ({}, 10, 1),  # no worker yet
    ],
)
def test_threads_per_task_share_each_hosts_cores(workers, tasks, expected):
    assert threads_per_task(FakeClient(workers), 0, tasks) == expected
    assert threads_per_task(FakeClient(workers), 3, tasks) == 3  # an explicit value wins


def test_paired_shards_are_the_same_inline_and_on_two_workers(tmp_path):
    """Fakes wait for their original's reference on the cluster; the shards are those of the
    inline run, which goes through each group in order."""
    from distributed import Client, LocalCluster

    from dfprep.manifest import write_manifest
    from test_pairing import _table
    from two_faces import write_pair

    v = tmp_path / "v"
    for i, (name, swap) in enumerate((("a", "right"), ("b", "left"), ("c", None))):
        write_pair(v, name, swap=swap, seed=i, seconds=1.6)
    pairs = [(f"real/{n}.mp4", 0, "", "") for n in "abc"]
    pairs += [(f"fake/{n}.mp4", 1, f"real/{n}", "") for n in "abc"]
    m = write_manifest(_table(v, pairs), tmp_path / "m.parquet")
    inline = run_extract([m], tmp_path / "inline", _params(2, scheduler="inline"))
    assert inline.paired == 3 and inline.faces_dropped > 0
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        s = run_extract([m], tmp_path / "dask", _params(2), client=client)
        assert not [k for k in client.who_has() if "dfprep-reference" in k]  # all released
    assert (s.paired, s.faces_dropped, s.crops) == (
        inline.paired,
        inline.faces_dropped,
        inline.crops,
    )
    assert _digests(tmp_path / "dask") == _digests(tmp_path / "inline")
