"""The second round of hostile use (issue 24), dfprep's side: nothing deleted that the tool did
not write, no failure kept that can pass, nothing hung, two runs never on one output, SIGTERM
handled like Ctrl-C, and one escaped line for every refusal. The numbers in the section titles
are the issue's cases; docs/reliability.md lists them with what happens."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import faults as F
from dfprep.adapters import VideoRow
from dfprep.balance import run_balance
from dfprep.cli import app
from dfprep.config import BalanceConfig, Params, SynthConfig, replace
from dfprep.core.config import read_params
from dfprep.core.errors import ConfigError, InputError
from dfprep.extract import run_extract
from dfprep.manifest import rows_to_table, write_manifest
from dfprep.synth import make_face_video, synth_ffpp
from dfprep.verify import verify_output


def params(per_shard: int = 1, **run) -> Params:
    p = Params()
    return replace(
        p,
        shard=replace(p.shard, videos_per_shard=per_shard),
        run=replace(p.run, **{"scheduler": "inline", **run}),
    )


def videos(root: Path, n: int, seconds: float = 1.0, seed: int = 0) -> list[str]:
    names = []
    for i in range(n):
        make_face_video(root / f"{i}.mp4", fps=5, size=(160, 120), seconds=seconds, seed=seed + i)
        names.append(f"{i}.mp4")
    return names


def manifest(root: Path, rows: list[VideoRow], out: Path, dataset: str = "h") -> Path:
    return write_manifest(rows_to_table(dataset, root, rows), out)


def fakes(rels: list[str], **kw) -> list[VideoRow]:
    return [VideoRow(r, "train", 1, "m", "FS", **kw) for r in rels]


def status(out: Path) -> list[dict]:
    return pq.read_table(sorted((out / "meta").glob("*.videos.parquet"))).to_pylist()


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def run_cli(*args, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [F.BIN / "dfprep", *map(str, args)],
        env=env or F.clean_env(COLUMNS="400"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def four(tmp_path_factory) -> tuple[Path, Path]:
    """4 fakes of 2 s in a manifest (one video per shard job): (manifest, the videos' folder)."""
    root = tmp_path_factory.mktemp("four")
    rels = videos(root / "v", 4, seconds=2.0)
    return manifest(root / "v", fakes(rels), root / "four.parquet"), root / "v"


@pytest.fixture(scope="module")
def extracted(four, tmp_path_factory) -> Path:
    m, _ = four
    out = tmp_path_factory.mktemp("ext") / "out"
    s = run_extract([m], out, params())
    assert s.ok == 4
    return out


# ---- 2. synth never deletes a file it did not write, wherever it is in the tree -------------

SMALL = SynthConfig(originals=2, multi_person=0, seconds=0.4, sizes=("320x180",))


def test_synth_refuses_a_foreign_file_nested_inside_an_earlier_sample(tmp_path):
    root = tmp_path / "sample"
    synth_ffpp(root, SMALL)
    nested = next((root / "original_sequences").rglob("*.mp4")).parent / "my notes.txt"
    nested.write_text("mine")
    with pytest.raises(InputError, match=r"my notes\.txt"):
        synth_ffpp(root, SMALL)
    line = F.one_error_line(cli("synth", root, "--originals", "2", "--multi-person", "0"))
    assert "my notes.txt" in line
    assert nested.read_text() == "mine"
    # a folder of the user's, empty or not, inside the sample is foreign too
    nested.unlink()
    (root / "splits" / "mine").mkdir()
    with pytest.raises(InputError, match="mine"):
        synth_ffpp(root, SMALL)
    (root / "splits" / "mine").rmdir()
    out = synth_ffpp(root, SMALL)  # its own tree alone: replaced
    assert out["videos"] == 2 + 4 * 2


# ---- 3. a failure that can pass is retried by a resume ---------------------------------------


def test_a_resume_retries_videos_whose_files_were_missing(four, tmp_path):
    m, v = four
    away = v.with_name("v-away")
    out = tmp_path / "out"
    v.rename(away)  # the dataset root moved away ...
    try:
        s = run_extract([m], out, params())
    finally:
        away.rename(v)  # ... and back
    assert s.failed == 4
    rows = status(out)
    assert all(r["status"] == "failed" and r["transient"] for r in rows), rows
    res = run_cli("extract", m, "--out", out, "--scheduler", "inline", "--no-progress",
                  "--videos-per-shard", "1")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "retrying 4 video(s) that failed for a reason that can pass" in res.stderr
    again = json.loads((out / "extract.json").read_text())
    assert (again["retried"], again["ok"], again["failed"]) == (4, 4, 0)
    assert verify_output(out, [m]).ok


def test_a_resume_retries_timed_out_videos_and_keeps_final_failures(four, tmp_path):
    m, _ = four
    root = tmp_path / "v"
    root.mkdir()
    (root / "garbage.mp4").write_bytes(os.urandom(4096))
    rows = fakes(["garbage.mp4"])
    g = manifest(root, rows, tmp_path / "g.parquet", dataset="g")
    out = tmp_path / "out"
    s = run_extract([m, g], out, params(video_timeout=0.001))
    assert s.failed == 5
    by_id = {r["video_id"]: r for r in status(out)}
    assert "time limit" in by_id["h-0"]["error"] and by_id["h-0"]["transient"]
    assert "not a video file" in by_id["g-garbage"]["error"] and not by_id["g-garbage"]["transient"]
    again = run_extract([m, g], out, params())  # the default time limit
    assert (again.retried, again.ok, again.failed, again.skipped) == (4, 4, 1, 1)
    assert verify_output(out, [m, g]).ok
    third = run_extract([m, g], out, params())  # a decode error is final: nothing more to retry
    assert (third.retried, third.skipped) == (0, 5)


# ---- 5. fake segments beyond the video's end are never silent relabelling --------------------


def test_fake_segments_beyond_the_end_fail_the_video_naming_the_row(tmp_path):
    v = tmp_path / "v"
    rels = videos(v, 2, seconds=2.0)
    rows = [
        VideoRow(rels[0], "train", 1, "m", "FS", fake_segments=[(20.0, 30.0)]),
        VideoRow(rels[1], "train", 1, "m", "FS", fake_segments=[(0.5, 1.5), (20.0, 30.0)]),
    ]
    m = manifest(v, rows, tmp_path / "seg.parquet")
    out = tmp_path / "out"
    s = run_extract([m], out, params())
    by_id = {r["video_id"]: r for r in status(out)}
    beyond = by_id["h-0"]
    assert beyond["status"] == "failed" and not beyond["transient"]
    assert "h-0" in beyond["error"] and "fake_segments" in beyond["error"]
    assert "20-30 s" in beyond["error"] and "video's end" in beyond["error"]
    partly = by_id["h-1"]  # a segment inside the video: ok, with a warning naming the other
    assert partly["status"] == "ok" and "warning:" in partly["error"]
    assert "20-30 s" in partly["error"]
    index = pq.read_table(sorted((out / "meta").glob("*.index.parquet"))).to_pylist()
    assert {r["video_id"] for r in index} == {"h-1"}  # no crop of h-0 labelled real
    assert {r["label"] for r in index} == {0, 1}
    assert s.failed == 1 and verify_output(out, [m]).ok


# ---- 6. a moved project folder resumes -----------------------------------------------------


def test_a_moved_project_folder_resumes_and_another_manifest_is_still_refused(four, tmp_path):
    m, _ = four
    project = tmp_path / "project"
    (project / "manifests").mkdir(parents=True)
    mine = project / "manifests" / m.name
    mine.write_bytes(m.read_bytes())
    s = run_extract([mine], project / "out", params())
    assert s.ok == 4
    moved = tmp_path / "moved"
    project.rename(moved)
    link = tmp_path / "link"
    link.symlink_to(moved)
    for base in (moved, link):
        again = run_extract([base / "manifests" / m.name], base / "out", params())
        assert (again.skipped, again.done) == (4, 0)
    # a different manifest of the same file name is still refused
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    w = tmp_path / "w"
    make_face_video(w / "x.mp4", fps=5, size=(160, 120), seconds=1.0, seed=9)
    other = manifest(w, fakes(["x.mp4"]), other_dir / m.name, dataset="o")
    with pytest.raises(InputError, match="same file name"):
        run_extract([other], moved / "out", params())


# ---- 7. a port that is not a Dask scheduler ---------------------------------------------------


class _Http(BaseHTTPRequestHandler):
    def do_GET(self):  # pragma: no cover - Dask never sends a request line
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Http)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def banner_port():
    """A server that speaks first (as SSH and SMTP do), then keeps the connection open."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns = []

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            conns.append(c)
            c.sendall(b"SSH-2.0-OpenSSH_9.6 hello there\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1]
    srv.close()
    for c in conns:
        c.close()


@pytest.mark.parametrize("server", ["http_port", "banner_port"])
def test_a_port_that_is_not_dask_is_one_line_within_the_connect_timeout(
    server, four, tmp_path, request
):
    m, _ = four
    port = request.getfixturevalue(server)
    p = tmp_path / "params.yaml"
    p.write_text("run: {connect_timeout: 3}\n")
    t0 = time.monotonic()
    res = run_cli(
        "extract", m, "--out", tmp_path / "out", "--scheduler", f"tcp://127.0.0.1:{port}",
        "--params", p, "--no-progress", timeout=90,
    )  # fmt: skip
    took = time.monotonic() - t0
    line = F.one_error_line(res)
    assert f"127.0.0.1:{port}" in line and "Dask scheduler" in line, line
    assert took < 60, took
    assert not (tmp_path / "out").exists()
    print(f"\n[not a Dask port: {server}] refused in {took:.1f} s (connect_timeout 3 s): {line}")


# ---- 8. a FIFO in place of a file never blocks a reader -------------------------------------


def test_a_fifo_in_place_of_a_shard_is_refused_by_every_reader(extracted, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(extracted, out)
    tar = sorted((out / "shards").glob("*.tar"))[0]
    tar.unlink()
    os.mkfifo(tar)
    res = run_cli("verify", out, timeout=60)
    assert res.returncode == 1 and "not a regular file" in res.stdout + res.stderr, res
    res = run_cli("balance", out, "--out", tmp_path / "b", "--scheduler", "inline", "--no-progress",
                  timeout=60)  # fmt: skip
    assert "not a regular file" in F.one_error_line(res) and tar.name in res.stderr
    # a FIFO as a Parquet table, a stats file, or params.yaml
    for suffix in (".videos.parquet", ".stats.json"):
        f = sorted((out / "meta").glob(f"*{suffix}"))[1]
        f.unlink()
        os.mkfifo(f)
    res = run_cli("verify", out, timeout=60)
    text = res.stdout + res.stderr
    assert res.returncode == 1 and text.count("not a regular file") == 3, text
    fifo = tmp_path / "params.yaml"
    os.mkfifo(fifo)
    line = F.one_error_line(
        run_cli("extract", out, "--out", tmp_path / "e", "--params", fifo, timeout=60)
    )
    assert "params.yaml: not a regular file (a pipe, socket or device)" in line
    line = F.one_error_line(cli("extract", out, "--out", tmp_path / "e", "--params", tmp_path))
    assert "is a directory" in line


# ---- 9. a YAML alias bomb as params ---------------------------------------------------------

BOMB = "\n".join(
    ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    + [
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    + ["decode: {fps: *i}"]
)


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    t0 = time.monotonic()
    res = run_cli("extract", tmp_path / "m.parquet", "--out", tmp_path / "o", "--params", bomb,
                  timeout=60)  # fmt: skip
    assert "aliases" in F.one_error_line(res)
    print(f"\n[alias bomb, {len(BOMB)} bytes, 9**9 values] refused, the CLI done in "
          f"{time.monotonic() - t0:.1f} s")  # fmt: skip
    # the paper's params use anchors for a path given once: still read
    repo = Path(__file__).resolve().parents[2]
    data = read_params(repo / "experiments" / "paper" / "params.yaml")
    assert data["configs"]["fsfm"]["init"] == data["weights"]["fsfm"]


# ---- 10. one run at a time on one output folder ---------------------------------------------


def _slow_extract(m: Path, out: Path, tmp: Path) -> subprocess.Popen:
    env = F.slow_writes(tmp / "site", 0.4)
    proc = subprocess.Popen(
        [F.BIN / "dfprep", "extract", m, "--out", out, "--scheduler", "inline", "--no-progress"],
        env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    F.wait_for(
        lambda: F.writing_now(out / "shards", F.family(proc)) or proc.poll() is not None,
        timeout=120,
        what="the first extract to write",
    )
    assert proc.poll() is None, proc.communicate()
    return proc


def test_a_second_run_on_the_same_out_is_refused_naming_the_first(four, extracted, tmp_path):
    m, _ = four
    out = tmp_path / "out"
    first = _slow_extract(m, out, tmp_path)
    try:
        t0 = time.monotonic()
        second = run_cli("extract", m, "--out", out, "--scheduler", "inline", "--no-progress")
        line = F.one_error_line(second)
        assert f"PID {first.pid} on {socket.gethostname()}" in line, line
        took = time.monotonic() - t0
        assert took < 30
        print(f"\n[second extract on one --out] refused, the CLI done in {took:.1f} s: {line}")
        # balance, report and synth on a folder a run is writing: refused the same way
        for args in (
            ("balance", extracted, "--out", out, "--scheduler", "inline"),
            ("report", extracted, "--out", out),
            ("synth", out),
        ):
            assert f"PID {first.pid}" in F.one_error_line(cli(*args)), args
        _, stderr = first.communicate(timeout=180)
        assert first.returncode == 0, stderr
    finally:
        F.kill_group(first)
    assert verify_output(out, [m]).ok
    assert not list(out.glob(".dfprep*"))  # the lock is gone with its run


def test_a_lock_left_by_a_killed_run_is_taken_over(four, tmp_path):
    m, _ = four
    out = tmp_path / "out"
    first = _slow_extract(m, out, tmp_path)
    F.kill_group(first)  # kill -9: no cleanup at all
    first.wait()
    assert list(out.glob(".dfprep*.lock"))  # left behind ...
    res = run_cli("extract", m, "--out", out, "--scheduler", "inline", "--no-progress")
    assert res.returncode == 0, res.stderr  # ... and taken over: its holder is dead
    assert verify_output(out, [m]).ok
    assert not list(out.glob(".dfprep*"))


def test_a_lock_held_on_another_host_is_refused_saying_it_cannot_be_checked(four, tmp_path):
    m, _ = four
    out = tmp_path / "out"
    out.mkdir()
    (out / ".dfprep.lock").write_text(
        json.dumps({"pid": 4242, "host": "node-17", "command": "dfprep extract", "since": 0})
    )
    line = F.one_error_line(run_cli("extract", m, "--out", out, "--scheduler", "inline"))
    assert "PID 4242 on node-17" in line and "cannot be checked from" in line, line
    assert str(out / ".dfprep.lock") in line  # what to remove once it is known to be dead


def test_two_balances_on_one_out(extracted, tmp_path):
    out = tmp_path / "b"
    env = F.slow_writes(tmp_path / "site", 0.3)
    cmd = [F.BIN / "dfprep", "balance", extracted, "--out", out, "--scheduler", "inline",
           "--min-shards", "2", "--samples-per-shard", "2"]  # fmt: skip
    first = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        F.wait_for(
            lambda: (
                any(F.writing_now(out / s, F.family(first)) for s in ("train", "val"))
                or first.poll() is not None
            ),
            timeout=120,
            what="the first balance to write",
        )
        second = run_cli(*map(str, cmd[1:]))
        assert f"PID {first.pid}" in F.one_error_line(second)
        _, stderr = first.communicate(timeout=180)
        assert first.returncode == 0, stderr
    finally:
        F.kill_group(first)
    assert verify_output(out).ok


# ---- 11. a read-only output folder and a full disk ------------------------------------------


def test_read_only_output_folders_are_one_line(four, extracted, tmp_path):
    m, _ = four
    ro = tmp_path / "ro"
    with F.read_only(ro) as folder:
        if folder is None:
            pytest.skip("mounting a read-only tmpfs is not permitted here")
        for args in (
            ("balance", extracted, "--out", folder / "b", "--scheduler", "inline"),
            ("balance", extracted, "--out", folder, "--scheduler", "inline"),
            ("report", extracted, "--out", folder / "r"),
            ("synth", folder / "s"),
            ("verify", extracted, "--json", folder / "v.json"),
            ("extract", m, "--out", folder / "e", "--scheduler", "inline"),
        ):
            line = F.one_error_line(cli(*args))
            assert "Read-only file system" in line and str(folder) in line, (args, line)


def test_balance_on_a_full_disk_leaves_no_finished_shard(extracted, tmp_path):
    total = sum(p.stat().st_size for p in (extracted / "shards").glob("*.tar"))
    with F.small_tmpfs(tmp_path / "disk", "1m") as disk:
        if disk is None:
            pytest.skip("mounting a tmpfs is not permitted here")
        filler = F.fill(disk, int(total * 0.8))
        out = disk / "out"
        res = cli("balance", extracted, "--out", out, "--scheduler", "inline",
                  "--min-shards", "4", "--samples-per-shard", "1", "--no-progress")  # fmt: skip
        assert "No space left on device" in F.one_error_line(res)
        left = sorted(str(p.relative_to(disk)) for p in out.rglob("*")) if out.exists() else []
        assert left == [], left  # nothing of this run's, not even a finished shard
        filler.unlink()
    print(f"\n[balance disk full] {res.output.strip()}")


def test_balance_on_a_full_disk_keeps_what_it_did_not_write(extracted, tmp_path):
    with F.small_tmpfs(tmp_path / "disk", "1m") as disk:
        if disk is None:
            pytest.skip("mounting a tmpfs is not permitted here")
        out = disk / "out"
        (out / "train").mkdir(parents=True)
        (out / "train" / "README.txt").write_text("the user's")
        F.fill(disk, 20_000)
        with pytest.raises(OSError):
            run_balance([extracted], out, BalanceConfig(min_shards=4, samples_per_shard=1))
        assert sorted(p.name for p in out.rglob("*")) == ["README.txt", "train"]


# ---- 12. SIGTERM ends extract like Ctrl-C -------------------------------------------------


def test_sigterm_ends_extract_with_the_summary_and_143(four, tmp_path):
    m, _ = four
    out = tmp_path / "out"
    first = _slow_extract(m, out, tmp_path)
    t0 = time.monotonic()
    F.kill_group(first, signal.SIGTERM)  # what Slurm sends, to the whole job
    stdout, stderr = first.communicate(timeout=60)
    print(f"\n[SIGTERM] exit {first.returncode} {time.monotonic() - t0:.1f} s after the signal")
    assert first.returncode == 143, stderr
    assert "Traceback" not in stderr and "terminated (SIGTERM)" in stderr, stderr
    assert "dfprep extract" in stdout  # the summary table
    summary = json.loads((out / "extract.json").read_text())
    assert summary["interrupted"] and summary["signal"] == "SIGTERM"
    assert not F.tmp_files(out / "shards") and not list(out.glob(".dfprep*"))
    rerun = run_cli("extract", m, "--out", out, "--scheduler", "inline", "--no-progress")
    assert rerun.returncode == 0 and verify_output(out, [m]).ok


# ---- 13. unknown top-level sections ---------------------------------------------------------


@pytest.mark.parametrize("section, hint", [("decod", "decode"), ("trian", "train")])
def test_a_misspelt_section_is_an_error_with_a_suggestion(tmp_path, section, hint):
    p = tmp_path / "params.yaml"
    p.write_text(f"{section}:\n  fps: 2\n")
    with pytest.raises(
        ConfigError, match=rf"unknown section '{section}' \(did you mean {hint}\?\)"
    ):
        read_params(p)
    line = F.one_error_line(cli("extract", p, "--out", tmp_path / "o", "--params", p))
    assert section in line and hint in line


# ---- 14. markup in names ---------------------------------------------------------------------


def test_markup_in_a_dataset_name_is_printed_as_it_is(tmp_path):
    v = tmp_path / "v"
    videos(v / "real", 2)
    videos(v / "fake", 2, seed=3)
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "path,label,split\nreal/0.mp4,0,train\nreal/1.mp4,0,val\nfake/0.mp4,1,train\nfake/1.mp4,1,val\n"
    )
    m = tmp_path / "m.parquet"
    res = cli("manifest", "-d", "x[/]y", "--adapter", "folder", "-r", v, "--csv", csv, "--out", m)
    assert res.exit_code == 0 and "x[/]y" in res.output, res.output
    res = cli("datasets", "--check", m)
    assert res.exit_code == 0 and "x[/]y" in res.output, res.output
    out = tmp_path / "e"
    assert run_extract([m], out, params()).ok == 4
    res = cli("balance", out, "--out", tmp_path / "b", "--scheduler", "inline", "--min-shards", "1")
    assert res.exit_code == 0, res.output
    assert "x[/]y" in res.output and "MarkupError" not in res.output


# ---- 16. output formats checked before the work ----------------------------------------------


def test_report_and_manifest_check_their_outputs_first(tmp_path):
    from dfprep.core.outputs import output_file

    with pytest.raises(InputError, match=r"--figure .*x\.txt: .*\.png"):
        output_file(tmp_path / "x.txt", "--figure", suffixes=(".png", ".pdf", ".svg"))
    d = tmp_path / "d"
    d.mkdir()
    with pytest.raises(InputError, match="is a directory"):
        output_file(d, "--figure", suffixes=(".png",))
    assert output_file(tmp_path / "x.PNG", "--figure", suffixes=(".png",)).name == "x.PNG"


# ---- smaller points ------------------------------------------------------------------------


def test_a_fake_whose_original_is_in_another_split_is_paired_with_a_warning(tmp_path, caplog):
    v = tmp_path / "v"
    rels = videos(v, 2)
    rows = [
        VideoRow(rels[0], "test", 0, "real", "real"),
        VideoRow(rels[1], "train", 1, "m", "FS", original=rels[0]),
    ]
    with caplog.at_level("WARNING"):
        t = rows_to_table("s", v, rows)
    assert t.column("original_id").to_pylist() == ["", "s-0"]
    assert "1 fake(s) have their original in another split" in caplog.text
    assert "s-1 (train) from s-0 (test)" in caplog.text


def test_a_mask_that_does_not_fit_is_named_as_the_mask(tmp_path):
    from types import SimpleNamespace

    from dfprep.pairing.source import PairSource

    source = PairSource(Params().extract, None)
    source.source, source.mask_info = "mask", (5.0, 0.8)
    source.check_alignment(SimpleNamespace(fps=5.0, duration=4.0))
    assert source.label == "fallback: mask: duration 4.00 s vs the mask's 0.80 s"


def test_params_as_a_folder_or_a_fifo_is_named_as_such(tmp_path):
    with pytest.raises(ConfigError, match="is a directory, not a file"):
        read_params(tmp_path)
    fifo = tmp_path / "p.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"p\.yaml: not a regular file \(a pipe"):
        read_params(fifo)
    with pytest.raises(ConfigError, match="params file not found"):
        read_params(tmp_path / "nope.yaml")
