"""Balance: crashes, Ctrl-C, dead workers, full disks and hostile tars.

Balance has no resume: sizes.json is written last and marks the output complete, and a rerun
clears the directory and redoes everything, so the property is "an interrupted run is never
mistaken for a finished one, and the rerun gives the same bytes". Slow writes (a sitecustomize
that delays every tar sample) make the kill points land inside the work.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import psutil
import pytest

import faults as F
from dfprep.balance import run_balance
from dfprep.balance.stage import BalanceInterrupted
from dfprep.config import BalanceConfig
from dfprep.core.errors import InputError, WriteError
from dfprep.extract import run_extract
from dfprep.shards import iter_samples, read_members
from dfprep.synth import make_face_video
from dfprep.verify import verify_output
from test_reliability_extract import manifest, params

CFG = BalanceConfig(min_shards=2, samples_per_shard=6)
CLI_CFG = ["--min-shards", "2", "--samples-per-shard", "6"]


def digests(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def leftovers(out: Path) -> list[str]:
    """Temporary files and buckets of an interrupted run."""
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*"))


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    """A real extract output: 8 videos (train and val, real and fake), 3 crops each."""
    root = tmp_path_factory.mktemp("pool")
    rels = [f"{i}.mp4" for i in range(8)]
    for i, rel in enumerate(rels):
        make_face_video(root / "v" / rel, fps=5, size=(160, 120), seconds=3, seed=i)
    m = manifest(root / "v", rels, root / "pool.parquet", dataset="p")
    s = run_extract([m], root / "extract", params())
    assert s.ok == 8
    return root / "extract"


class Reference(dict):
    """File name -> sha256 of an uninterrupted run, and how many samples it wrote."""

    samples: int = 0


@pytest.fixture(scope="module")
def reference(pool, tmp_path_factory) -> Reference:
    out = tmp_path_factory.mktemp("bref") / "out"
    run_balance([pool], out, CFG)
    assert verify_output(out).ok
    ref = Reference(digests(out))
    ref.samples = sum(
        n for split in json.loads((out / "sizes.json").read_text()).values() for n in split.values()
    )
    return ref


def cli(pool: Path, out: Path, *extra: str) -> list:
    return [F.BIN / "dfprep", "balance", pool, "--out", out, *CLI_CFG, *extra]


def written_now(out: Path, pids: set[int] | None = None) -> list[Path]:
    return [p for split in ("train", "val") for p in F.writing_now(out / split, pids)]


@pytest.mark.slow
def test_kill_9_at_random_points_then_rerun_gives_identical_output(pool, reference, tmp_path):
    out = tmp_path / "out"
    slow = 0.05
    env = F.slow_writes(tmp_path / "slow", slow)
    rng = random.Random(3)
    states = []
    for _ in range(3):
        proc = subprocess.Popen(
            cli(pool, out, "--scheduler", "inline"),
            start_new_session=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            F.wait_for(
                lambda p=proc: written_now(out, F.family(p)) or p.poll() is not None,
                timeout=120,
                what="balance to write",
            )
            time.sleep(rng.uniform(0.0, 0.8 * slow * reference.samples))  # before the writes end
        finally:
            F.kill_group(proc)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "finished before it was killed"
        report = verify_output(out)
        assert not report.ok and any("no sizes.json" in p for p in report.problems)
        states.append(sum(1 for _ in out.glob("*/*.tar")))
    rerun = subprocess.run(
        cli(pool, out, "--scheduler", "inline"),
        env=F.clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert digests(out) == reference and not leftovers(out)
    assert verify_output(out).ok
    print(
        f"\n[balance kill -9] output shards published when killed: {states} (of {len([k for k in reference if k.endswith('.tar')])}); rerun identical"
    )


def test_interrupt_removes_temporary_files_and_publishes_nothing(
    pool, reference, tmp_path, monkeypatch
):
    """Ctrl-C (KeyboardInterrupt) in the middle of writing an output shard, in process."""
    from dfprep.balance import layout

    out = tmp_path / "out"
    run_balance([pool], out, CFG)  # a finished output: the interrupted rerun must not look like it
    real, n = layout.TarSink.write, [0]

    def interrupt(self, key, members):
        n[0] += 1
        if n[0] == 8:
            raise KeyboardInterrupt
        return real(self, key, members)

    monkeypatch.setattr(layout.TarSink, "write", interrupt)
    with pytest.raises(
        BalanceInterrupted,
        match=r"interrupted while writing the output shards \(1 of \d+ tasks done\); "
        r"nothing was published .* rerun the same command",
    ):
        run_balance([pool], out, CFG)
    assert not (out / "sizes.json").exists() and not leftovers(out)
    assert not verify_output(out).ok
    monkeypatch.undo()
    run_balance([pool], out, CFG)
    assert digests(out) == reference


@pytest.mark.slow
def test_ctrl_c_with_local_cluster_exits_without_traceback(pool, reference, tmp_path):
    out = tmp_path / "out"
    env = F.slow_writes(tmp_path / "slow", 0.05)
    proc = subprocess.Popen(
        cli(pool, out, "--workers", "2"),
        start_new_session=True,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        F.wait_for(
            lambda: written_now(out, F.family(proc)) or proc.poll() is not None,
            timeout=120,
            what="balance to write",
        )
    finally:
        F.kill_group(proc, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode not in (0, -signal.SIGINT), (proc.returncode, stderr)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    print(
        f"\n[balance Ctrl-C] exit {proc.returncode}: {stderr.strip().splitlines()[-1] if stderr.strip() else ''}"
    )
    # nothing published: the run made OUT, so it leaves no trace of it (run_balance's docstring)
    assert not out.exists()
    rerun = subprocess.run(
        cli(pool, out, "--workers", "2"),
        env=F.clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert digests(out) == reference and not leftovers(out)


@pytest.mark.slow
def test_killing_a_dask_worker_mid_shard_retries_the_task(pool, reference, tmp_path):
    from distributed import Client

    out = tmp_path / "out"
    with (
        F.dask_cluster(tmp_path, env=F.slow_writes(tmp_path / "slow", 0.05)) as address,
        Client(address) as c,
    ):
        done: dict = {}
        t = threading.Thread(target=lambda: done.update(r=run_balance([pool], out, CFG, client=c)))
        t.start()
        try:
            tmp = F.wait_for(
                lambda: written_now(out), timeout=120, what="a worker writing a shard"
            )[0]
            victim = F.writer_pid(tmp)
            psutil.Process(victim).kill()
        finally:
            t.join(timeout=300)
    assert "r" in done, "run_balance failed"
    assert digests(out) == reference and not leftovers(out)
    assert verify_output(out).ok
    print(
        f"\n[balance dask worker kill -9] worker {victim} killed while writing {tmp.name}: retried, identical"
    )


def test_full_disk_fails_clearly_and_publishes_nothing(pool, reference, tmp_path):
    total = sum(
        p.stat().st_size for p in (pool / "shards").glob("*.tar")
    )  # more than balance writes
    with F.small_tmpfs(tmp_path / "disk", "4m") as disk:
        if disk is None:
            pytest.skip("mounting a tmpfs is not permitted here")
        filler = F.fill(disk, total // 2)
        out = disk / "out"
        with pytest.raises(
            WriteError, match=rf"cannot write {disk}/out/\S+: No space left on device"
        ) as e:
            run_balance([pool], out, CFG)
        assert isinstance(e.value, OSError) and "\n" not in str(e.value)
        assert not (out / "sizes.json").exists() and not leftovers(out)
        filler.unlink()
        run_balance([pool], out, CFG)
        assert digests(out) == reference
    print(f"\n[balance disk full] {e.value}")


# ---------------------------------------------------------------------------------- hostile tars


def _member(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, io.BytesIO(data)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("../evil.jpg", "unsafe path"),
        ("/etc/evil.jpg", "unsafe path"),
        ("a/../../evil.jpg", "unsafe path"),
        ("link.jpg", "link"),
    ],
)
def test_shard_readers_refuse_absolute_dotdot_and_link_members(tmp_path, name, kind):
    path = F.tar_with_members(
        tmp_path / "t.tar",
        {"ok.jpg": b"1"} if kind == "link" else {"ok.jpg": b"1", name: b"2"},
        links={name: "/etc/passwd"} if kind == "link" else None,
    )
    with open(path, "rb") as f, pytest.raises(InputError, match=kind):
        list(iter_samples(f, str(path)))
    with pytest.raises(InputError, match=kind):
        read_members(str(path), {"nothing-wanted"}, "jpg")


def test_balance_and_verify_refuse_a_source_shard_with_an_unsafe_member(pool, tmp_path):
    bad = tmp_path / "extract"
    shutil.copytree(pool, bad)
    tar = sorted((bad / "shards").glob("*.tar"))[0]
    with tarfile.open(tar, "a") as t:
        t.addfile(*_member("../../outside.json", b"{}"))
    with pytest.raises(InputError, match=r"outside\.json' has an unsafe path"):
        run_balance([bad], tmp_path / "out", CFG)
    report = verify_output(bad)
    assert any(tar.name in p and "unsafe path" in p for p in report.problems)
    assert (
        not (tmp_path / "outside.json").exists() and not (tmp_path.parent / "outside.json").exists()
    )
