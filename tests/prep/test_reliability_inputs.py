"""The inputs around the videos (manifests, CSV paths, output directories, parameters)
are checked as strictly as the videos: refused before any work with exit 2 and one line naming
the culprit, or handled with nothing lost."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dfprep.adapters import AdapterOptions, VideoRow
from dfprep.cli import app
from dfprep.config import ExtractConfig, Params, replace
from dfprep.core.errors import ConfigError, InputError
from dfprep.extract import plan_jobs, prepare_out, run_extract, run_shard_job
from dfprep.manifest import build_manifest, read_manifest, rows_to_table, write_manifest
from dfprep.shards import ShardFiles
from dfprep.synth import make_face_video
from dfprep.verify import verify_output

INLINE = replace(Params(), run=replace(Params().run, scheduler="inline"))


def _videos(root: Path, n: int, seed: int = 0) -> list[str]:
    names = []
    for i in range(n):
        make_face_video(root / f"{i}.mp4", fps=5, size=(160, 120), seconds=1.0, seed=seed + i)
        names.append(f"{i}.mp4")
    return names


def _manifest(root: Path, rels: list[str], out: Path, dataset: str = "t") -> Path:
    rows = [VideoRow(r, "test", 1, "m", "FS") for r in rels]
    return write_manifest(rows_to_table(dataset, root, rows), out)


def _one_error_line(res) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


def _cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


# ---- 1. two manifests with the same file name into one --out ----------------------------------


def test_a_second_manifest_of_the_same_name_never_deletes_the_first_ones_shards(tmp_path):
    v = tmp_path / "v"
    _videos(v / "a", 2)
    m1 = _manifest(v, ["a/0.mp4", "a/1.mp4"], tmp_path / "d1" / "m.parquet", "one")
    _videos(v / "b", 1, seed=5)
    m2 = _manifest(v, ["b/0.mp4"], tmp_path / "d2" / "m.parquet", "two")
    out = tmp_path / "X"
    res = _cli("extract", m1, "--out", out, "--scheduler", "inline", "--videos-per-shard", "1")
    assert res.exit_code == 0, res.output
    # no terminal: the progress as lines in the log, the first at 0, the last with the time
    assert "extract: 0/2 videos (0%)" in res.stderr
    assert re.search(
        r"extract: 2/2 videos \(100%\) .* done in \d+:\d\d · \d+ crops · 0 failed", res.stderr
    )
    before = {p.name: p.read_bytes() for d in ("shards", "meta") for p in (out / d).iterdir()}
    assert len([n for n in before if n.endswith(".tar")]) == 2
    res = _cli("extract", m2, "--out", out, "--scheduler", "inline", "--no-progress")
    line = _one_error_line(res)
    assert str(m1.resolve()) in line.replace("\n", "") and str(m2.resolve()) in line
    after = {p.name: p.read_bytes() for d in ("shards", "meta") for p in (out / d).iterdir()}
    assert after == before  # nothing touched
    assert verify_output(out, [m1]).ok
    # the same manifest, reached by another path, is still itself: it resumes
    rel = os.path.relpath(m1, Path.cwd())
    again = run_extract(
        [rel], out, replace(INLINE, shard=replace(INLINE.shard, videos_per_shard=1))
    )
    assert (again.skipped, again.done) == (2, 0)
    # --overwrite is the explicit way to replace them
    res = _cli("extract", m2, "--out", out, "--scheduler", "inline", "--no-progress", "--overwrite")
    assert res.exit_code == 0, res.output
    assert verify_output(out, [m2]).ok


# ---- 2. the params hash covers every output-affecting key ----------------------------------


def _other(value, name: str):
    """A different valid value of a parameter."""
    if isinstance(value, bool):
        return not value
    if name == "strategy":
        return "seek"
    if name == "select":
        return "off"
    if name == "measure":
        return "ssim"
    if name == "backend":
        return "insightface"
    if name == "size_tie":  # 0.1: the rule below would give 0.1 again
        return 0.2
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(value * 0.9 + 0.01, 4) if value <= 1 else value + 1.0
    if isinstance(value, str):
        return value + "x"
    raise AssertionError(name)


def _output_keys() -> list[tuple[str, str]]:
    cfg = ExtractConfig()
    keys = []
    for section in dataclasses.fields(cfg):
        for f in dataclasses.fields(getattr(cfg, section.name)):
            if (section.name, f.name) not in ExtractConfig.EXECUTION_ONLY:
                keys.append((section.name, f.name))
    return keys


def test_the_hash_is_derived_from_every_field_but_the_thread_counts():
    keys = _output_keys()
    assert ("decode", "strategy") in keys and ("decode", "seek_min_frames") in keys
    assert ("decode", "skip_nonref") in keys and ("detect", "batch_size") in keys
    assert (
        len(keys)
        == sum(
            len(dataclasses.fields(getattr(ExtractConfig(), s.name)))
            for s in dataclasses.fields(ExtractConfig)
        )
        - 2
    )
    base = ExtractConfig()
    for section, name in ExtractConfig.EXECUTION_ONLY:
        assert name == "threads"
        sub = getattr(base, section)
        changed = dataclasses.replace(base, **{section: dataclasses.replace(sub, threads=3)})
        assert changed.params_hash() == base.params_hash()


def test_changing_any_output_key_redoes_the_shard(tmp_path):
    v = tmp_path / "v"
    m = _manifest(v, _videos(v, 1), tmp_path / "m.parquet")
    out = tmp_path / "o"
    run_extract([m], out, INLINE)
    jobs = plan_jobs([m], out, INLINE.extract)
    assert prepare_out(jobs, out, False) == ([], 1, 0)  # unchanged: kept
    redone = []
    for section, name in _output_keys():
        sub = getattr(INLINE.extract, section)
        cfg = dataclasses.replace(
            INLINE.extract,
            **{section: dataclasses.replace(sub, **{name: _other(getattr(sub, name), name)})},
        )
        pending, kept, _ = prepare_out(plan_jobs([m], out, cfg), out, False)
        if pending and kept == 0:
            redone.append(f"{section}.{name}")
    assert redone == [f"{s}.{n}" for s, n in _output_keys()]


@pytest.mark.parametrize(
    "key, value, needle",
    [
        ("decode", "strategy: banana", "decode.strategy"),
        ("decode", "seek_min_saving: 5.0", "decode.seek_min_saving"),
        ("decode", "seek_min_frames: -1", "decode.seek_min_frames"),
        ("crop", "jpeg_quality: 0", "crop.jpeg_quality"),
        ("run", "memory_limit: 1MB", "run.memory_limit"),
        ("run", "memory_limit: lots", "run.memory_limit"),
    ],
)
def test_a_bad_parameter_is_refused_before_any_shard_exists(tmp_path, key, value, needle):
    v = tmp_path / "v"
    m = _manifest(v, _videos(v, 1), tmp_path / "m.parquet")
    params = tmp_path / "params.yaml"
    params.write_text(f"{key}:\n  {value}\n")
    res = _cli(
        "extract",
        m,
        "--out",
        tmp_path / "o",
        "--params",
        params,
        "--scheduler",
        "inline",
        "--no-progress",
    )
    assert needle in _one_error_line(res)
    assert not (tmp_path / "o").exists()


def test_a_configuration_error_inside_a_shard_job_never_makes_it_complete(tmp_path, monkeypatch):
    v = tmp_path / "v"
    m = _manifest(v, _videos(v, 1), tmp_path / "m.parquet")
    with pytest.raises(ConfigError, match=r"decode\.strategy"):  # an invalid config cannot be made
        dataclasses.replace(INLINE.decode, strategy="banana")
    (job,) = plan_jobs([m], tmp_path / "o", INLINE.extract)

    def config_error(*a, **k):  # what a worker whose environment breaks the params would meet
        raise ConfigError("decode.strategy: refused on this worker")

    monkeypatch.setattr("dfprep.decode.open_sampled", config_error)
    with pytest.raises(ConfigError, match=r"decode\.strategy"):
        run_shard_job(job, INLINE.extract)
    assert not ShardFiles(job.shards_dir, job.name).is_complete(job.params_hash)
    assert not list(Path(job.shards_dir).glob("*.tar"))


# ---- 3. every manifest row against the schema ---------------------------------------------


GOOD = {
    "video_id": "t-a",
    "path": "/x/a.mp4",
    "dataset": "t",
    "split": "test",
    "split_derived": False,
    "label": 1,
    "method": "m",
    "category": "FS",
    "source_id": "",
    "kind": "video",
    "frame_stride": 1,
    "fake_segments": None,
}


@pytest.mark.parametrize(
    "column, value",
    [
        ("label", -1),
        ("label", 2),
        ("label", 1.5),
        ("label", None),
        ("video_id", None),
        ("video_id", "."),
        ("video_id", ".."),
        ("video_id", "t-a.b"),
        ("video_id", "t/a"),
        ("video_id", ""),
        ("split", "banana"),
        ("kind", "banana"),
        ("category", "banana"),
        ("category", "real"),
        ("path", None),
        ("dataset", ""),
        ("frame_stride", 0),
        ("fake_segments", [{"start": 3.0, "end": 1.0}]),
        ("fake_segments", [{"start": 0.0, "end": float("inf")}]),
        ("fake_segments", [{"start": float("nan"), "end": 1.0}]),
    ],
)
def test_read_manifest_names_the_row_and_column_of_a_bad_value(tmp_path, column, value):
    rows = [dict(GOOD), {**GOOD, "video_id": "t-b", column: value}]
    path = tmp_path / "hand.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(InputError) as e:
        read_manifest(path)
    msg = str(e.value)
    assert "row 1" in msg and f"column {column}" in msg and "\n" not in msg, msg


def test_a_good_hand_written_manifest_reads_and_segments_label_crops(tmp_path):
    rows = [
        GOOD,
        {**GOOD, "video_id": "t-b", "fake_segments": [{"start": 1.0, "end": 2.0}]},
        {**GOOD, "video_id": "t-c", "label": 0, "category": "real", "method": "real"},
    ]
    path = tmp_path / "hand.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    t = read_manifest(path)
    assert t.num_rows == 3 and t.schema.field("label").type == pa.int8()


def test_manifest_errors_at_the_cli_are_one_line(tmp_path):
    path = tmp_path / "ffpp [v2].parquet"
    pq.write_table(pa.Table.from_pylist([{**GOOD, "video_id": None}]), path)
    line = _one_error_line(_cli("extract", path, "--out", tmp_path / "o", "--scheduler", "inline"))
    assert "ffpp [v2].parquet" in line and "column video_id" in line  # the brackets survive rich
    pq.write_table(pa.Table.from_pylist([{**GOOD, "label": 1.5}]), path)
    assert "column label" in _one_error_line(_cli("extract", path, "--out", tmp_path / "o"))
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.Table.from_pylist([], schema=pa.Table.from_pylist([GOOD]).schema), empty)
    assert "the manifest is empty" in _one_error_line(
        _cli("extract", empty, "--out", tmp_path / "o")
    )
    assert not (tmp_path / "o").exists()


def test_adapter_rows_go_through_the_same_checks(tmp_path):
    rows = [VideoRow("a.mp4", "test", 1, "m", "FS", fake_segments=[(2.0, 1.0)])]
    with pytest.raises(InputError, match=r"row 0 .*column fake_segments"):
        rows_to_table("t", tmp_path, rows)


# ---- 4. the folder adapter's CSV paths ---------------------------------------------------------


def _csv_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "real").mkdir(parents=True)
    (root / "fake").mkdir()
    (root / "real" / "a.mp4").write_bytes(b"x")
    (root / "fake" / "b.mp4").write_bytes(b"x")
    (tmp_path / "outside.mp4").write_bytes(b"x")
    return root


def _csv(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "labels.csv"
    p.write_text("path,label\n" + "\n".join(lines) + "\n")
    return p


def _folder(root, csv, **options):
    return build_manifest(
        "itw", root, adapter="folder", opts=AdapterOptions(csv=csv, options=options)
    )


@pytest.mark.parametrize(
    "listed", ["../../../etc/passwd", "../outside.mp4", "{outside}", "real/../../outside.mp4"]
)
def test_csv_paths_outside_the_root_are_refused(tmp_path, listed):
    root = _csv_root(tmp_path)
    csv = _csv(tmp_path, [listed.format(outside=tmp_path / "outside.mp4") + ",1"])
    with pytest.raises(InputError, match=r"labels.csv:2: .* is outside the root"):
        _folder(root, csv)


def test_csv_outside_the_root_only_with_the_explicit_option(tmp_path):
    root = _csv_root(tmp_path)
    t = _folder(root, _csv(tmp_path, ["../outside.mp4,1"]), allow_outside="1")
    assert (
        t.num_rows == 1
        and Path(t.column("path")[0].as_py()).resolve() == (tmp_path / "outside.mp4").resolve()
    )


def test_csv_aliases_of_one_file_are_one_video_and_conflicting_labels_an_error(tmp_path):
    root = _csv_root(tmp_path)
    t = _folder(
        root, _csv(tmp_path, ["real/a.mp4,0", "./real/a.mp4,0", "real//a.mp4,real", "fake/b.mp4,1"])
    )
    assert t.column("video_id").to_pylist() == ["itw-fake-b", "itw-real-a"]
    with pytest.raises(
        InputError, match=r"labels.csv:3: \./real/a.mp4 is the same file as real/a.mp4"
    ):
        _folder(root, _csv(tmp_path, ["real/a.mp4,0", "./real/a.mp4,1"]))
    os.symlink(root / "real" / "a.mp4", root / "fake" / "link.mp4")
    with pytest.raises(InputError, match=r"same file as real/a\.mp4"):
        _folder(root, _csv(tmp_path, ["real/a.mp4,0", "fake/link.mp4,1"]))


def test_csv_absolute_paths_under_a_relative_or_symlinked_root(tmp_path, monkeypatch):
    root = _csv_root(tmp_path)
    os.symlink(root, tmp_path / "link")
    monkeypatch.chdir(tmp_path)
    for r in (Path("data"), Path("link"), tmp_path / "link"):
        for listed in (root / "real" / "a.mp4", tmp_path / "link" / "real" / "a.mp4"):
            t = _folder(r, _csv(tmp_path, [f"{listed},0"]))
            assert t.column("video_id").to_pylist() == ["itw-real-a"], (r, listed)


# ---- 8 / 9. output paths, rich markup, bench, verify, balance caps ------------------------------


def test_out_pointing_at_the_wrong_kind_of_path_is_one_line_for_every_command(tmp_path):
    v = tmp_path / "v"
    sample_manifest = _manifest(v, _videos(v, 1), tmp_path / "m.parquet")
    f = tmp_path / "file"
    f.write_text("x")
    d = tmp_path / "dir"
    d.mkdir()
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.mp4").write_bytes(b"x")
    assert "is a directory" in _one_error_line(
        _cli("manifest", "-d", "itw", "--adapter", "folder", "-r", root, "--out", d)
    )
    assert not list(tmp_path.glob("**/*.tmp"))  # no dir.tmp left behind
    for args in (
        ("extract", sample_manifest, "--out", f, "--scheduler", "inline"),
        ("balance", tmp_path, "--out", f, "--scheduler", "inline"),
        ("report", tmp_path, "--out", f),
        ("synth", f),
        ("extract", sample_manifest, "--out", f / "sub", "--scheduler", "inline"),
        ("verify", tmp_path, "--json", d),
    ):
        line = _one_error_line(_cli(*args))
        assert str(f) in line or str(d) in line, (args, line)
    assert f.read_text() == "x"


def test_paths_with_brackets_survive_in_messages(tmp_path):
    line = _one_error_line(_cli("verify", tmp_path / "d[/b]"))
    assert "d[/b]" in line
    line = _one_error_line(_cli("extract", tmp_path / "ffpp [v2].parquet", "--out", tmp_path / "o"))
    assert "ffpp [v2].parquet" in line


def test_verify_show_must_not_be_negative(tmp_path):
    res = _cli("verify", tmp_path, "--show", "-1")
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_bench_refuses_nothing_to_time_and_non_videos(tmp_path):
    assert "bench.n: 0 is not in" in _one_error_line(_cli("bench", "--n", "0"))
    assert "bench.workers: 0 is not in" in _one_error_line(_cli("bench", "--workers", "0"))
    assert "bench.workers: expected an integer" in _one_error_line(_cli("bench", "--workers", "x"))
    text = tmp_path / "notes [1].txt"
    text.write_text("hello\n" * 200)
    line = _one_error_line(_cli("bench", text))
    assert "notes [1].txt" in line and "a text file, not a video" in line


def test_a_text_file_is_not_a_video(tmp_path):
    v = tmp_path / "v"
    v.mkdir()
    (v / "a.txt").write_text("not a video\n" * 100)
    m = _manifest(v, ["a.txt"], tmp_path / "m.parquet")
    s = run_extract([m], tmp_path / "o", INLINE)
    status = pq.read_table(next((tmp_path / "o/meta").glob("*.videos.parquet"))).to_pylist()
    assert s.failed == 1 and "a text file, not a video" in status[0]["error"]


def test_balance_caps_naming_an_unknown_dataset_or_method_are_an_error(tmp_path):
    v = tmp_path / "v"
    names = _videos(v, 4)
    rows = [
        VideoRow(n, split, label, "Deepfakes" if label else "real", "FS" if label else "real")
        for n, (split, label) in zip(
            names, [("train", 0), ("train", 1), ("val", 0), ("val", 1)], strict=True
        )
    ]
    m = write_manifest(rows_to_table("ffpp", v, rows), tmp_path / "ffpp.parquet")
    out = tmp_path / "x"
    run_extract([m], out, INLINE)
    for opt, name, known in (
        ("--cap-dataset", "ffqq", "ffpp"),
        ("--cap-method", "Deepfake", "Deepfakes"),
    ):
        line = _one_error_line(
            _cli(
                "balance", out, "--out", tmp_path / "b", "--scheduler", "inline", opt, f"{name}=10"
            )
        )
        assert repr(name) in line and known in line, line
    assert not (tmp_path / "b" / "sizes.json").exists()
    res = _cli(
        "balance",
        out,
        "--out",
        tmp_path / "b",
        "--scheduler",
        "inline",
        "--cap-dataset",
        "ffpp=10",
        "--min-shards",
        "1",
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "b" / "sizes.json").read_text())
