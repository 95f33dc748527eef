"""Extract: hostile inputs end to end, crashes, Ctrl-C, limits, full disks, security.

Every fault is injected for real where the sandbox allows it (kill -9 of process trees and Dask
workers, SIGINT, a tmpfs that fills up, RLIMIT_FSIZE, a socket guard in every process); the
figures that docs/reliability.md quotes are printed (`pytest -s`).
"""

from __future__ import annotations

import ast
import json
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

import faults as F
from dfprep.adapters import VideoRow
from dfprep.config import Params, RunConfig, replace
from dfprep.extract import run_extract
from dfprep.manifest import rows_to_table, write_manifest
from dfprep.synth import make_face_video
from dfprep.verify import verify_output
from test_extract import _digests, _samples

REPO = Path(__file__).resolve().parents[2]


def params(per_shard: int = 2, **run) -> Params:
    p = Params()
    return replace(
        p,
        shard=replace(p.shard, videos_per_shard=per_shard),
        run=replace(p.run, **{"scheduler": "inline", **run}),
    )


def manifest(root: Path, rels: list[str], out: Path, dataset: str = "r") -> Path:
    rows = [
        VideoRow(
            r,
            "train" if i % 4 else "val",
            i % 2,
            "m" if i % 2 else "real",
            "FS" if i % 2 else "real",
        )
        for i, r in enumerate(rels)
    ]
    return write_manifest(rows_to_table(dataset, root, rows), out)


def status_rows(out: Path) -> dict[str, dict]:
    rows = pq.read_table(sorted((out / "meta").glob("*.videos.parquet"))).to_pylist()
    return {r["path"]: r for r in rows}


def cli(manifest_path: Path, out: Path, *extra: str) -> list:
    return [
        F.BIN / "dfprep",
        "extract",
        manifest_path,
        "--out",
        out,
        "--videos-per-shard",
        "2",
        "--no-progress",
        *extra,
    ]


# ------------------------------------------------------------------------------ bad inputs


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """4 s of a face at 25 fps, a keyframe every second, index at the end (PyAV's default)."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    make_face_video(path, fps=25, size=(320, 240), seconds=4, seed=1, gop=25)
    return path


def hostile_folder(v: Path, clip: Path) -> dict[str, tuple[str, str]]:
    """Write every hostile input into v; relpath -> (expected status, expected words in the reason)."""
    v.mkdir(parents=True)
    shutil.copy(clip, v / "good.mp4")
    make_face_video(v / "small.mp4", fps=5, size=(160, 120), seconds=2, seed=2)
    F.faststart(clip, v / "fast.mp4")
    cases: dict[str, tuple[str, str]] = {
        "good.mp4": ("ok", ""),
        "small.mp4": ("ok", ""),
        "fast.mp4": ("ok", ""),
    }

    def add(name, status, words, make):
        make(v / name)
        cases[name] = (status, words)

    add("empty.mp4", "failed", "empty file", F.zero_byte)
    add("garbage.mp4", "failed", "not a video file", F.garbage)
    add("ftyp-then-garbage.mp4", "failed", "not a video file", F.mp4_header_then_garbage)
    add("ts-sync-garbage.mp4", "failed", "not a video file", F.ts_like_garbage)
    add("audio-only.mp4", "failed", "no video stream (audio-only file)", F.audio_only)
    add("png.mp4", "failed", "still image (png)", F.image_as_video)
    add("jpeg.mp4", "failed", "still image (jpeg)", lambda p: F.image_as_video(p, "JPEG"))
    for cut in (16, 0.3, 0.6, 0.95):  # index at the end: nothing to decode without it
        add(
            f"cut-{cut}.mp4",
            "failed",
            "not a video file (or truncated)",
            lambda p, c=cut: F.truncated(clip, p, c),
        )
    for cut in (0.5, 0.8):  # index first: the frames before the cut are kept, the loss is reported
        add(
            f"fast-cut-{cut}.mp4",
            "ok",
            "undecodable packet(s) skipped",
            lambda p, c=cut: F.truncated(v / "fast.mp4", p, c),
        )
    add("corrupt-middle.mp4", "ok", "", lambda p: F.corrupt_packets(clip, p, 1.2, 1.6))
    add(
        "huge-frame.mp4",
        "failed",
        "frame size 8704x4352 exceeds max_pixels",
        lambda p: F.huge_frame_video(p, 8704, 4352),
    )
    add(
        "one-hour.mp4",
        "ok",
        "",
        lambda p: make_face_video(p, times=[4.0 * i for i in range(900)], size=(128, 128), seed=3),
    )
    add("broken\nname.mp4", "failed", "empty file", F.zero_byte)
    for name in F.HOSTILE_NAMES:
        add(name, "ok", "", lambda p: shutil.copy(v / "small.mp4", p))
    return cases


VANISHED = {
    "deleted": "file not found",
    "directory": "is a directory",
    "dangling-symlink": "file not found",
    "symlink-loop": "file not found",
    "fifo": "not a regular file",
    "device": "not a regular file",
    "not-a-dir": "file not found",
}


def test_hostile_inputs_get_a_reason_and_the_rest_of_the_shard_is_written(tmp_path, clip):
    v = tmp_path / "v"
    cases = hostile_folder(v, clip)
    for how in VANISHED:  # listed in the manifest, then gone or unreadable before extract
        shutil.copy(v / "small.mp4", v / f"gone-{how}.mp4")
    rels = [
        *cases,
        *(f"gone-{h}.mp4" if h != "not-a-dir" else f"gone-{h}.mp4/inner.mp4" for h in VANISHED),
    ]
    m = manifest(v, rels, tmp_path / "m.parquet")
    for how in VANISHED:
        F.vanish(v / f"gone-{how}.mp4", how)
        cases[f"gone-{how}.mp4" if how != "not-a-dir" else f"gone-{how}.mp4/inner.mp4"] = (
            "failed",
            VANISHED[how],
        )

    s = run_extract([m], tmp_path / "out", params(per_shard=len(rels)))  # one shard holds them all
    rows = status_rows(tmp_path / "out")
    assert s.jobs == 1 and not s.failed_jobs and s.videos == len(rels) == len(rows)
    assert s.ok + s.no_face + s.failed == s.videos
    for rel, (status, words) in cases.items():
        r = rows[str(v / rel)]
        assert r["status"] == status, (rel, r["error"])
        assert words in r["error"], (rel, r["error"])
        assert "\n" not in r["error"] and "\r" not in r["error"]
        if status == "failed":  # the reason names the file, its line break escaped
            assert v.joinpath(rel).name.replace("\n", "\\n") in r["error"], (rel, r["error"])
        else:
            assert r["crops"] == r["frames_with_face"] >= 1

    full = rows[str(v / "fast.mp4")]["crops"]
    assert (
        1
        <= rows[str(v / "fast-cut-0.5.mp4")]["crops"]
        < rows[str(v / "fast-cut-0.8.mp4")]["crops"]
        < full
    )
    assert (
        rows[str(v / "one-hour.mp4")]["crops"] == 900
        and rows[str(v / "one-hour.mp4")]["duration"] > 3596
    )
    assert len({r["video_id"] for r in rows.values()}) == len(rows)  # "a b" and "a_b" stay apart

    samples = _samples(tmp_path / "out")
    corrupt = sorted(json.loads(m["json"])["time"] for k, m in samples.items() if "corrupt" in k)
    assert [round(t) for t in corrupt] == [0, 1, 2, 3]  # the frames before and after the damage
    # the good videos' crops are exactly what they are without the hostile company
    alone = manifest(v, ["good.mp4", "small.mp4"], tmp_path / "alone.parquet")
    run_extract([alone], tmp_path / "alone", params(per_shard=2))
    for key, members in _samples(tmp_path / "alone").items():
        assert samples[key] == members
    report = verify_output(tmp_path / "out", [m])
    assert report.ok, report.problems
    assert report.counts["manifest_videos"] == len(rels) and report.counts["unaccounted"] == 0


def test_undecodable_packets_cost_no_frame_that_a_keyframe_can_restore(tmp_path, clip):
    """Decoding straight through the damage or seeking over it gives the same crops; straight
    through, the skipped packets are reported."""
    v = tmp_path / "v"
    v.mkdir()
    _, hit = F.corrupt_packets(clip, v / "c.mp4", 1.2, 1.6)
    assert hit >= 5
    m = manifest(v, ["c.mp4"], tmp_path / "m.parquet")
    tars = {}
    for strategy in ("sequential", "seek"):
        p = params()
        p = replace(p, decode=replace(p.decode, strategy=strategy))
        out = tmp_path / strategy
        run_extract([m], out, p)
        r = next(iter(status_rows(out).values()))
        assert (r["status"], r["crops"], r["strategy"]) == ("ok", 4, strategy)
        if strategy == "sequential":
            assert (
                r["error"].startswith("warning: ") and "undecodable packet(s) skipped" in r["error"]
            )
        tars[strategy] = next((out / "shards").glob("*.tar")).read_bytes()
    assert tars["sequential"] == tars["seek"]


# ---------------------------------------------------------------------------- time limits


def _slow_decoding(monkeypatch, per_frame: float) -> dict[str, int]:
    """Every decoded frame takes `per_frame` seconds longer; returns decoded frames per file."""
    from dfprep import decode

    real = decode._VideoReader._decoded
    decoded: dict[str, int] = {}

    def slow(self):
        for frame in real(self):
            time.sleep(per_frame)
            decoded[self.path.name] = decoded.get(self.path.name, 0) + 1
            yield frame

    monkeypatch.setattr(decode._VideoReader, "_decoded", slow)
    return decoded


def test_time_limit_stops_a_video_whose_every_frame_is_slow(tmp_path, monkeypatch):
    """Sampled frames 20 s apart (fps 0.05) and every decode slow: a check per sampled frame would
    only come after 200 slow decodes; the check between packets stops it within one."""
    v = tmp_path / "v"
    make_face_video(v / "slow.mp4", fps=10, size=(128, 128), seconds=60, seed=1)
    make_face_video(v / "next.mp4", fps=5, size=(128, 128), seconds=1, seed=2)
    m = manifest(v, ["next.mp4", "slow.mp4"], tmp_path / "m.parquet")
    decoded = _slow_decoding(monkeypatch, 0.01)
    p = params(video_timeout=1.0)
    p = replace(p, decode=replace(p.decode, fps=0.05, strategy="sequential"))
    s = run_extract([m], tmp_path / "out", p)
    rows = {Path(k).name: r for k, r in status_rows(tmp_path / "out").items()}
    assert s.videos == 2 and not s.failed_jobs
    slow = rows["slow.mp4"]
    assert slow["status"] == "failed", slow
    assert re.fullmatch(r"time limit of 1 s exceeded after [01] sampled frames", slow["error"]), (
        slow["error"]
    )
    assert rows["next.mp4"]["status"] == "ok"  # the shard goes on with the next video
    assert decoded["slow.mp4"] < 200, "decoding went on to the next sampled frame"
    print(
        f"\n[time limit] 1 s limit, every frame 10 ms slower, samples 200 frames apart: stopped after "
        f"{decoded['slow.mp4']} decoded frames of 600: {slow['error']}"
    )


def test_time_limit_covers_a_slow_detector(tmp_path, monkeypatch):
    """A detector call that is slow on every frame: the limit is checked after every batch."""
    from dfprep import detect

    real = detect.get_detector
    calls = []

    class Slow:
        def __init__(self, inner):
            self.inner = inner

        def detect(self, images):
            calls.append(len(images))
            time.sleep(0.1)
            return self.inner.detect(images)

    monkeypatch.setattr(detect, "get_detector", lambda cfg: Slow(real(cfg)))
    v = tmp_path / "v"
    make_face_video(v / "long.mp4", fps=1, size=(128, 128), seconds=120, seed=1)
    m = manifest(v, ["long.mp4"], tmp_path / "m.parquet")
    run_extract([m], tmp_path / "out", params(video_timeout=0.5))
    r = next(iter(status_rows(tmp_path / "out").values()))
    assert r["status"] == "failed" and "time limit of 0.5 s exceeded" in r["error"]
    assert sum(calls) < 120 and len(calls) <= 6  # stopped after a few 0.1 s batches


# ------------------------------------------------------------------------- large / long runs


MEMORY_SCRIPT = """
import json, re, sys
from pathlib import Path
import psutil
from dfprep.config import Params, replace
from dfprep.extract import plan_jobs, resolve_threads, run_shard_job


def peak():  # VmHWM, unlike ru_maxrss, starts afresh at exec (not at the forking parent's size)
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


manifest, out, per = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = Params()
p = replace(p, shard=replace(p.shard, videos_per_shard=per), run=replace(p.run, scheduler="inline"))
cfg = resolve_threads(p.extract, p.run)
proc, done, points = psutil.Process(), 0, []
for job in plan_jobs([Path(manifest)], Path(out), p.extract):
    st = run_shard_job(job, cfg)
    done += st["videos"]
    points.append({"videos": done, "ok": st["ok"], "failed": st["failed"], "errors": st["errors"],
                   "rss": proc.memory_info().rss, "peak": peak()})
print(json.dumps(points))
"""


def run_memory_script(m: Path, out: Path, per_shard: int) -> list[dict]:
    r = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, m, out, str(per_shard)],
        capture_output=True,
        text=True,
        timeout=600,
        env=F.clean_env(),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_huge_frames_are_rejected_or_decoded_in_bounded_memory(tmp_path):
    """One process, one video per shard job: a small video (baseline), a frame over max_pixels
    (refused from the header; FFmpeg's stream probe is capped too, so it is never decoded), then
    9 s of 4K at 1 fps (decoded: a detector batch of RGB frames, plus about four frames of
    decoder and crop buffers)."""
    v = tmp_path / "v"
    make_face_video(v / "0-small.mp4", fps=5, size=(160, 120), seconds=2, seed=2)
    F.huge_frame_video(v / "1-huge.mp4", 8704, 4352)
    F.huge_frame_video(v / "2-4k.mp4", 3840, 2160, frames=9)
    m = manifest(v, ["0-small.mp4", "1-huge.mp4", "2-4k.mp4"], tmp_path / "m.parquet")
    small, huge, k4 = run_memory_script(m, tmp_path / "out", 1)
    assert small["ok"] == 1 and huge["failed"] == 1 and k4["failed"] == 0
    assert any("frame size 8704x4352 exceeds max_pixels" in e for e in huge["errors"])
    mb, frame = 1 << 20, 3840 * 2160 * 3
    assert huge["peak"] - small["peak"] < 50 * mb  # one 8704x4352 frame alone would be 108 MB
    assert k4["peak"] - huge["peak"] < (Params().detect.batch_size + 8) * frame
    print(
        f"\n[memory] peak RSS: small video {small['peak'] / mb:.0f} MB, then 8704x4352 refused "
        f"{huge['peak'] / mb:.0f} MB, then 4K decoded {k4['peak'] / mb:.0f} MB "
        f"(+{(k4['peak'] - huge['peak']) / frame:.1f} RGB 4K frames of {frame / mb:.0f} MB)"
    )


@pytest.mark.slow
def test_worker_memory_stays_flat_over_400_videos(tmp_path):
    v = tmp_path / "v"
    rels = [f"{i:03d}.mp4" for i in range(400)]
    for i, rel in enumerate(rels):
        make_face_video(v / rel, fps=2, size=(128, 128), seconds=2, seed=i, identity_index=i % 5)
    m = manifest(v, rels, tmp_path / "m.parquet")
    points = run_memory_script(m, tmp_path / "out", 20)
    assert [p["videos"] for p in points] == list(range(20, 401, 20))
    assert sum(p["failed"] for p in points) == 0 and sum(p["ok"] for p in points) >= 360
    at20, at400 = points[0]["rss"], points[-1]["rss"]
    mb = 1 << 20
    print(
        f"\n[memory] RSS of the process running the shard jobs: {at20 / mb:.0f} MB after 20 videos, "
        f"{at400 / mb:.0f} MB after 400 ({(at400 - at20) / mb:+.1f} MB); "
        f"max {max(p['rss'] for p in points) / mb:.0f} MB"
    )
    assert at400 - at20 < 32 * mb


# ----------------------------------------------------------------------------------- crashes


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """8 face videos of 10 s in 4 shard jobs of 2: long enough to be killed in the middle."""
    root = tmp_path_factory.mktemp("work")
    rels = [f"{i}.mp4" for i in range(8)]
    for i, rel in enumerate(rels):
        make_face_video(root / "v" / rel, fps=10, size=(320, 240), seconds=10, seed=i)
    return manifest(root / "v", rels, root / "work.parquet", dataset="w")


class Reference(dict):
    """File name -> sha256 of an uninterrupted run, and how long its work took."""

    seconds: float = 0.0


@pytest.fixture(scope="module")
def reference(work, tmp_path_factory) -> Reference:
    out = tmp_path_factory.mktemp("ref") / "out"
    s = run_extract([work], out, params())
    assert (s.ok, s.jobs) == (8, 4)
    ref = Reference(_digests(out))
    ref.seconds = s.seconds
    return ref


def _run_until_killed(cmd, out: Path, delay: float, sig=signal.SIGKILL) -> subprocess.Popen:
    """Start cmd, wait until it writes a shard, wait `delay` more, then signal its process group
    (as kill -9 of the tree, or Ctrl-C in a terminal, would)."""
    proc = subprocess.Popen(
        cmd,
        start_new_session=True,
        env=F.clean_env(COLUMNS="400"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        F.wait_for(
            lambda: F.writing_now(out / "shards", F.family(proc)) or proc.poll() is not None,
            timeout=120,
            what="work to start",
        )
        time.sleep(delay)
    finally:
        F.kill_group(proc, sig)
    return proc


@pytest.mark.slow
def test_kill_9_at_random_points_then_rerun_gives_identical_shards(work, reference, tmp_path):
    out = tmp_path / "out"
    rng = random.Random(7)
    complete = []
    for _ in range(3):
        # at a random point of the work, which takes `seconds` in all: before the end
        proc = _run_until_killed(
            cli(work, out, "--scheduler", "inline"), out, rng.uniform(0.0, 0.5 * reference.seconds)
        )
        proc.communicate()
        if proc.returncode == 0:
            break
        complete.append(len(list((out / "meta").glob("*.stats.json"))))
        report = verify_output(out)  # what is there is consistent; leftovers are only notes
        assert report.ok, report.problems
        assert not verify_output(out, [work]).ok or complete[-1] == 4
    assert complete and complete[0] < 4, "the first run finished before it was killed"
    rerun = subprocess.run(
        cli(work, out, "--scheduler", "inline"),
        env=F.clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert _digests(out) == reference
    assert not F.tmp_files(out / "shards") + F.tmp_files(out / "meta")
    assert verify_output(out, [work]).ok
    print(f"\n[kill -9] complete shards after each kill: {complete} of 4; rerun identical")


@pytest.mark.slow
def test_killing_a_dask_worker_mid_shard_retries_its_video(work, reference, tmp_path):
    """kill -9 of a worker that is running a video while the driver writes a shard: the scheduler
    runs the video again elsewhere and the shard is written as if nothing had happened."""
    import os

    from distributed import Client

    out = tmp_path / "out"
    with F.dask_cluster(tmp_path) as address, Client(address) as client:
        result: dict = {}
        t = threading.Thread(
            target=lambda: result.update(s=run_extract([work], out, params(scheduler=address)))
        )
        t.start()
        try:
            tmp = F.wait_for(
                lambda: [p for p in F.writing_now(out / "shards", min_size=1) if ".tar." in p.name],
                timeout=120,
                what="a shard being written",
            )[0]

            def busy() -> list[str]:
                return [
                    w
                    for w, keys in client.processing().items()
                    if any(str(k).startswith("dfprep-video") for k in keys)
                ]

            worker = F.wait_for(busy, timeout=60, what="a worker running a video")[0]
            victim = client.run(os.getpid, workers=[worker])[worker]
            psutil.Process(victim).kill()  # kill -9 of the worker process, mid-video, mid-shard
        finally:
            t.join(timeout=300)
        s = result["s"]
    assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == psutil.STATUS_ZOMBIE
    assert (s.done, s.jobs, s.failed_jobs) == (4, 4, [])
    assert _digests(out) == reference
    assert not F.tmp_files(out / "shards") + F.tmp_files(out / "meta")
    assert verify_output(out, [work]).ok
    print(
        f"\n[dask worker kill -9] worker {victim} killed mid-video while {tmp.name} was being written: "
        "its video ran again, shards identical"
    )


def test_ctrl_c_inline_exits_cleanly_with_the_summary(work, reference, tmp_path):
    out = tmp_path / "out"
    proc = _run_until_killed(
        cli(work, out, "--scheduler", "inline"), out, 0.15 * reference.seconds, signal.SIGINT
    )
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert "dfprep extract" in stdout  # the summary table
    summary = json.loads((out / "extract.json").read_text())
    assert summary["interrupted"] and summary["jobs"] == 4
    assert not F.tmp_files(out / "shards") + F.tmp_files(
        out / "meta"
    )  # the interrupted shard removed its temporary tar
    assert not verify_output(out).ok  # says the last run was interrupted
    rerun = subprocess.run(
        cli(work, out, "--scheduler", "inline"),
        env=F.clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0 and _digests(out) == reference
    assert verify_output(out, [work]).ok


@pytest.mark.slow
def test_ctrl_c_with_local_cluster_exits_cleanly(work, reference, tmp_path):
    """The terminal sends SIGINT to the whole process group, workers included: only the driver
    reacts, cancels, closes the cluster and prints the summary."""
    out = tmp_path / "out"
    proc = _run_until_killed(
        cli(work, out, "--workers", "2"), out, 0.1 * reference.seconds, signal.SIGINT
    )
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-2000:]
    assert "interrupted" in stderr and "dfprep extract" in stdout
    rerun = subprocess.run(
        cli(work, out, "--workers", "2"),
        env=F.clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0 and _digests(out) == reference
    assert not F.tmp_files(out / "shards") + F.tmp_files(out / "meta")


# ----------------------------------------------------------------------------------- storage


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict[str, str], dict[str, int]]:
    """4 short videos in 2 shards, and the shards' digests and sizes."""
    root = tmp_path_factory.mktemp("small")
    rels = [f"{i}.mp4" for i in range(4)]
    for i, rel in enumerate(rels):
        make_face_video(root / "v" / rel, fps=5, size=(160, 120), seconds=3, seed=i)
    m = manifest(root / "v", rels, root / "small.parquet", dataset="s")
    run_extract([m], root / "ref", params())
    sizes = {
        p.name: p.stat().st_size for d in ("shards", "meta") for p in (root / "ref" / d).iterdir()
    }
    return m, _digests(root / "ref"), sizes


def _no_partial_shard(out: Path) -> list[str]:
    """Names of the shards that are complete; fails if any file of an incomplete one is there."""
    shards, meta = out / "shards", out / "meta"
    tmp = F.tmp_files(shards) + F.tmp_files(meta)
    assert not tmp, sorted(p.name for p in tmp)
    names = {p.name.split(".")[0] for d in (shards, meta) if d.is_dir() for p in d.iterdir()}
    for n in names:
        assert [p.name for p in shards.glob(f"{n}.*")] == [f"{n}.tar"]
        have = sorted(p.name for p in meta.glob(f"{n}.*"))
        assert have == [f"{n}.{s}" for s in ("index.parquet", "stats.json", "videos.parquet")], have
    return sorted(names)


def test_full_disk_fails_clearly_and_leaves_no_partial_shard(small, tmp_path):
    m, ref, sizes = small
    with F.small_tmpfs(tmp_path / "disk", "2m") as disk:
        if disk is None:
            pytest.skip("mounting a tmpfs is not permitted here (the RLIMIT_FSIZE test still runs)")
        out = disk / "out"
        (out / "shards").mkdir(parents=True)
        pages = sum(-(-s // 4096) * 4096 for n, s in sizes.items() if n.startswith("small-000000"))
        filler = F.fill(disk, pages + sizes["small-000001.tar"] // 2)  # room for one shard, not two
        s = run_extract([m], out, params())
        assert s.failed_jobs, "the disk did not fill up"
        for name, err in s.failed_jobs:
            assert (
                err.startswith(f"cannot write {out / 'shards' / name}.")
                and "No space left on device" in err
            ), err
        kept = _no_partial_shard(out)
        assert len(kept) + len(s.failed_jobs) == 2
        report = verify_output(out, [m])
        assert not report.ok and any("failed and are not complete" in p for p in report.problems)
        filler.unlink()
        again = run_extract([m], out, params())
        assert (again.skipped, again.done, again.failed_jobs) == (len(kept), 2 - len(kept), [])
        assert _digests(out) == ref and verify_output(out, [m]).ok
    print(f"\n[disk full] tmpfs: {len(s.failed_jobs)} shard job(s) failed: {s.failed_jobs[0][1]}")


def test_file_size_limit_fails_clearly_and_leaves_no_partial_shard(small, tmp_path):
    """RLIMIT_FSIZE (EFBIG): a write past the limit fails the way a full disk does, without root."""
    m, ref, sizes = small
    tar = min(s for n, s in sizes.items() if n.endswith(".tar"))
    other = max(s for n, s in sizes.items() if not n.endswith(".tar"))
    assert other < tar // 2
    out = tmp_path / "out"
    r = subprocess.run(
        cli(m, out, "--scheduler", "inline"),
        env=F.clean_env(COLUMNS="400"),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=F.file_size_limit(tar // 2),
    )
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    for name in ("small-000000", "small-000001"):
        assert (
            f"shard job {name} failed: cannot write {out / 'shards' / name}.tar: File too large"
            in r.stderr
        )
    assert _no_partial_shard(out) == []
    rerun = subprocess.run(
        cli(m, out, "--scheduler", "inline"),
        env=F.clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0 and _digests(out) == ref


# ---------------------------------------------------------------------------------- security


def test_pipeline_never_unpickles_or_evaluates():
    """No module of dfprep imports a pickle-like loader, calls torch.load / unsafe yaml.load /
    eval / exec, or lets numpy load pickles (Dask's own task transport is the one exception)."""
    banned_modules = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
    found = []
    for path in sorted((REPO / "pipeline" / "dfprep").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                found += [where for a in node.names if a.name.split(".")[0] in banned_modules]
            elif (
                isinstance(node, ast.ImportFrom)
                and (node.module or "").split(".")[0] in banned_modules
            ):
                found.append(where)
            elif isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                owner = getattr(f.value, "id", "") if isinstance(f, ast.Attribute) else ""
                if name in ("eval", "exec") and not owner:
                    found.append(where)
                if (owner, name) in {("torch", "load"), ("yaml", "load"), ("yaml", "unsafe_load")}:
                    found.append(where)
                if any(k.arg == "allow_pickle" for k in node.keywords):
                    found.append(where)
    assert found == []


def test_an_extract_and_balance_run_load_no_pickle(small, tmp_path, monkeypatch):
    import pickle

    from dfprep.balance import run_balance
    from dfprep.config import BalanceConfig

    loads = []
    for name in ("load", "loads"):
        real = getattr(pickle, name)
        monkeypatch.setattr(
            pickle, name, lambda *a, _real=real, **k: loads.append(a) or _real(*a, **k)
        )
    m, _, _ = small
    run_extract([m], tmp_path / "out", params())
    run_balance([tmp_path / "out"], tmp_path / "bal", BalanceConfig(min_shards=1))
    verify_output(tmp_path / "out", [m])
    assert loads == []


def test_local_cluster_and_dashboard_listen_on_localhost_only():
    from dfprep.distribute import make_client

    me = psutil.Process()
    with make_client(RunConfig(workers=1)) as client:
        client.wait_for_workers(1, timeout=60)
        info = client.scheduler_info()
        dashboard = client.dashboard_link
        procs = [me, *me.children(recursive=True)]
        listening = [
            c.laddr
            for p in procs
            for c in p.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN
        ]
    assert info["address"].startswith("tcp://127.0.0.1:") and dashboard.startswith(
        "http://127.0.0.1:"
    )
    assert all(w.startswith("tcp://127.0.0.1:") for w in info["workers"])
    assert int(dashboard.split(":")[2].split("/")[0]) in {a.port for a in listening}
    assert listening and all(addr.ip in ("127.0.0.1", "::1") for addr in listening), listening
    print(
        f"\n[localhost] {len(listening)} listening sockets (scheduler, dashboard, workers, nanny): all on loopback"
    )


def test_no_network_is_used_at_run_time(small, tmp_path):
    """A guard in every Python process (sitecustomize, so Dask workers too) refuses and logs any
    connection or name lookup beyond this machine: extract on a LocalCluster, balance and verify
    run without a single attempt."""
    m, ref, _ = small
    log = tmp_path / "network.log"
    env = F.network_guard(tmp_path / "guard", log)
    probe = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('192.0.2.1', 80), 1)"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert probe.returncode != 0 and "network blocked by test guard" in probe.stderr
    assert "192.0.2.1" in log.read_text()  # the guard works: it would see an attempt
    log.write_text("")
    out = tmp_path / "out"
    for cmd in (
        cli(m, out, "--workers", "1"),
        [
            F.BIN / "dfprep",
            "balance",
            out,
            "--out",
            tmp_path / "bal",
            "--min-shards",
            "1",
            "--scheduler",
            "inline",
        ],
        [
            sys.executable,
            "-c",
            f"from dfprep.verify import verify_output; assert verify_output({str(out)!r}).ok",
        ],
    ):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
    assert log.read_text() == ""
    assert _digests(out) == ref
