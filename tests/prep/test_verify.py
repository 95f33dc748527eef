"""dfprep verify: a clean output passes; every kind of damage is reported, naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from dfprep.balance import run_balance
from dfprep.config import BalanceConfig
from dfprep.core.errors import InputError
from dfprep.extract import run_extract
from dfprep.manifest import read_manifest, write_manifest
from dfprep.shards import TarSink, iter_samples
from dfprep.synth import make_face_video
from dfprep.verify import verify_balance, verify_extract, verify_output
from test_reliability_extract import manifest, params


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(manifest, extract output, balance output) of 5 short videos, one of them broken."""
    root = tmp_path_factory.mktemp("verify")
    rels = [f"{i}.mp4" for i in range(4)]
    for i, rel in enumerate(rels):
        make_face_video(root / "v" / rel, fps=5, size=(160, 120), seconds=3, seed=i)
    (root / "v" / "broken.mp4").write_bytes(b"\0" * 100)
    m = manifest(root / "v", [*rels, "broken.mp4"], root / "ver.parquet")
    s = run_extract([m], root / "extract", params())
    assert (s.ok, s.failed, s.jobs) == (4, 1, 3)
    run_balance([root / "extract"], root / "balance", BalanceConfig(min_shards=2))
    return m, root / "extract", root / "balance"


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def rewrite_tar(path: Path, change) -> None:
    """Read every sample, let `change(samples)` edit the list, write the tar back."""
    with open(path, "rb") as f:
        samples = list(iter_samples(f, str(path)))
    samples = change(samples)
    with open(path, "wb") as f, TarSink(f) as sink:
        for key, members in samples:
            sink.write(key, members)


def first_shard(d: Path) -> str:
    return sorted(p.name[: -len(".stats.json")] for p in (d / "meta").glob("*.stats.json"))[0]


def problems(report) -> str:
    return "\n".join(report.problems)


def test_clean_outputs_pass_with_their_counts(outputs):
    m, ext, bal = outputs
    r = verify_output(ext, [m])
    assert r.ok and r.kind == "extract", r.problems
    assert r.counts["videos"] == r.counts["ok"] + r.counts["no_face"] + r.counts["failed"] == 5
    assert r.counts["crops"] == r.counts["samples"] == 12
    assert (r.counts["manifest_videos"], r.counts["unaccounted"]) == (5, 0)
    b = verify_output(bal)
    assert b.ok and b.kind == "balance", b.problems
    sizes = json.loads((bal / "sizes.json").read_text())
    assert (
        b.counts["samples"]
        == b.counts["selected"]
        == sum(n for s in sizes.values() for n in s.values())
    )
    assert b.as_dict()["ok"] is True


def test_unrecognised_directory_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="neither an extract output"):
        verify_output(tmp_path)
    with pytest.raises(InputError, match="not found"):
        verify_output(tmp_path / "nope")


def _drop_first(samples):
    return samples[1:]


def _add_one(samples):
    key, members = samples[0]
    meta = json.loads(members["json"])
    meta["key"] = key + "x"
    return [*samples, (key + "x", {**members, "json": json.dumps(meta).encode()})]


def _bad_json(samples):
    key, members = samples[0]
    return [(key, {**members, "json": b"{not json"}), *samples[1:]]


def _bad_cls(samples):
    key, members = samples[0]
    return [(key, {**members, "cls": b"1" if members["cls"] == b"0" else b"0"}), *samples[1:]]


def _cut_jpeg(samples):
    key, members = samples[0]
    return [(key, {**members, "jpg": members["jpg"][:-100]}), *samples[1:]]


def _no_cls(samples):
    key, members = samples[0]
    return [(key, {k: v for k, v in members.items() if k != "cls"}), *samples[1:]]


@pytest.mark.parametrize(
    "change, message",
    [
        (_drop_first, "crop(s) of the index missing from the tar"),
        (_add_one, "sample(s) not in the index"),
        (_bad_json, ".json does not parse"),
        (_bad_cls, "disagrees with the .json label"),
        (_cut_jpeg, "not a complete JPEG"),
        (_no_cls, "missing member(s) .cls"),
    ],
)
def test_extract_tar_damage_is_reported(outputs, tmp_path, change, message):
    _, ext, _ = outputs
    d = copy(ext, tmp_path / "e")
    name = first_shard(d)
    rewrite_tar(d / "shards" / f"{name}.tar", change)
    r = verify_extract(d)
    assert not r.ok and message in problems(r), r.problems
    assert all(f"{name}.tar" in p for p in r.problems if message in p)


def test_truncated_tar_is_reported(outputs, tmp_path):
    _, ext, _ = outputs
    d = copy(ext, tmp_path / "e")
    tar = d / "shards" / f"{first_shard(d)}.tar"
    tar.write_bytes(tar.read_bytes()[:3000])
    r = verify_extract(d)
    assert f"{tar}: not a readable tar" in problems(r)


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_stats_that_do_not_add_up_are_reported(outputs, tmp_path):
    _, ext, _ = outputs
    d = copy(ext, tmp_path / "e")
    stats = d / "meta" / f"{first_shard(d)}.stats.json"
    before = json.loads(stats.read_text())
    _edit_json(stats, ok=before["ok"] + 1, crops=before["crops"] - 1)
    r = verify_extract(d)
    text = problems(r)
    assert f"{stats}: ok = {before['ok'] + 1}, the shard's tables say {before['ok']}" in text
    assert "!= ok + no_face + failed" in text and "crops =" in text


def test_video_table_that_disagrees_with_the_index_is_reported(outputs, tmp_path):
    _, ext, _ = outputs
    d = copy(ext, tmp_path / "e")
    path = d / "meta" / f"{first_shard(d)}.videos.parquet"
    t = pq.read_table(path)
    crops = pc.add(t["crops"], pa.scalar(1, pa.int32()))
    pq.write_table(t.set_column(t.schema.get_field_index("crops"), "crops", crops), path)
    assert "crops, the index has" in problems(verify_extract(d))


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda s: (s / "x.index.parquet").unlink(),
            "shard marked complete but x.index.parquet missing",
        ),
        (
            lambda s: (s / "x.index.parquet").write_bytes(b"PAR1 not really"),
            "not a readable Parquet file",
        ),
        (lambda s: (s / "x.stats.json").write_text("{"), "not a readable JSON file"),
    ],
)
def test_missing_or_unreadable_shard_files_are_reported(outputs, tmp_path, damage, message):
    _, ext, _ = outputs
    d = copy(ext, tmp_path / "e")
    name = first_shard(d)
    for p in [*(d / "shards").glob(f"{name}.*"), *(d / "meta").glob(f"{name}.*")]:
        p.rename(p.with_name("x" + p.name[len(name) :]))
    damage(d / "meta")
    assert message in problems(verify_extract(d))


def test_a_shard_copied_under_another_name_is_reported(outputs, tmp_path):
    _, ext, _ = outputs
    d = copy(ext, tmp_path / "e")
    name = first_shard(d)
    for p in [*(d / "shards").glob(f"{name}.*"), *(d / "meta").glob(f"{name}.*")]:
        shutil.copy(p, p.with_name("zz-000009" + p.name[len(name) :]))
    text = problems(verify_extract(d))
    assert "is in two shards" in text and "expected zz-000009.tar" in text


def test_leftovers_are_notes_and_unfinished_shards_count_against_the_manifest(outputs, tmp_path):
    m, ext, _ = outputs
    d = copy(ext, tmp_path / "e")
    (d / "shards" / ".ver-000000.tar.tmp-123-abcdef01").write_bytes(b"partial")
    name = first_shard(d)
    (d / "meta" / f"{name}.stats.json").unlink()  # as if killed just before the stats file
    r = verify_extract(d)
    assert r.ok, r.problems
    notes = "\n".join(r.notes)
    assert "1 temporary file(s)" in notes and "without a stats file" in notes and name in notes
    with_manifest = verify_extract(d, [m])
    assert not with_manifest.ok and "manifest video(s) in no complete shard" in problems(
        with_manifest
    )
    assert with_manifest.counts["unaccounted"] == 2


def test_manifest_videos_missing_mislabelled_or_stale_are_reported(outputs, tmp_path):
    m, ext, _ = outputs
    t = read_manifest(m)
    extra = t.slice(0, 1).set_column(0, "video_id", pa.array(["ver-never-run"]))
    write_manifest(pa.concat_tables([t, extra]), tmp_path / "ver.parquet")  # same prefix: ver-*
    assert "1 of 6 manifest video(s) in no complete shard" in problems(
        verify_extract(ext, [tmp_path / "ver.parquet"])
    )
    flipped = t.set_column(
        t.schema.get_field_index("label"), "label", pc.subtract(pa.scalar(1, pa.int8()), t["label"])
    )
    flipped = flipped.set_column(
        flipped.schema.get_field_index("category"),
        "category",  # still a valid manifest
        pa.array(["real" if v == 0 else "unknown" for v in flipped["label"].to_pylist()]),
    )
    write_manifest(flipped, tmp_path / "flip" / "ver.parquet")
    assert "is labelled unlike ver.parquet: label" in problems(
        verify_extract(ext, [tmp_path / "flip" / "ver.parquet"])
    )
    write_manifest(t.slice(1), tmp_path / "less" / "ver.parquet")
    assert "not in its manifest (a stale shard?)" in problems(
        verify_extract(ext, [tmp_path / "less" / "ver.parquet"])
    )


def test_failed_or_interrupted_last_run_is_reported(outputs, tmp_path):
    _, ext, _ = outputs
    d = copy(ext, tmp_path / "e")
    name = first_shard(d)
    for p in [*(d / "shards").glob(f"{name}.*"), *(d / "meta").glob(f"{name}.*")]:
        p.unlink()
    _edit_json(
        d / "extract.json",
        failed_jobs=[[name, "cannot write x: No space left on device"]],
        interrupted=True,
    )
    text = problems(verify_extract(d))
    assert f"1 shard job(s) of the last run failed and are not complete, e.g. {name}" in text
    assert "the last run was interrupted" in text


# ---------------------------------------------------------------------------------- balance


def first_balanced(d: Path) -> Path:
    return sorted((d / "train").glob("*.tar"))[0]


def test_unfinished_balance_is_reported(outputs, tmp_path):
    _, _, bal = outputs
    d = copy(bal, tmp_path / "b")
    (d / "sizes.json").unlink()
    r = verify_balance(d)
    assert "no sizes.json, so balance did not finish" in problems(r)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: first_balanced(d).unlink(), "shard(s) in sizes.json missing"),
        (
            lambda d: shutil.copy(first_balanced(d), d / "train" / "train-000099.tar"),
            "shard(s) not in sizes.json",
        ),
        (
            lambda d: _edit_json(
                d / "sizes.json",
                train={
                    **json.loads((d / "sizes.json").read_text())["train"],
                    first_balanced(d).name: 999,
                },
            ),
            "samples, sizes.json says 999",
        ),
        (
            lambda d: rewrite_tar(first_balanced(d), lambda s: s[::-1]),
            "the same crops in another order",
        ),
        (lambda d: rewrite_tar(first_balanced(d), _drop_first), "selected crop(s) missing"),
        (lambda d: rewrite_tar(first_balanced(d), _bad_json), ".json does not parse"),
        (
            lambda d: (d / "selection.parquet").write_bytes(b"nope"),
            "not a readable selection table",
        ),
        (lambda d: (d / "stats.json").write_text("{"), "not a readable JSON file"),
    ],
)
def test_balance_damage_is_reported(outputs, tmp_path, damage, message):
    _, _, bal = outputs
    d = copy(bal, tmp_path / "b")
    damage(d)
    r = verify_output(d)
    assert r.kind == "balance" and not r.ok and message in problems(r), r.problems


def test_balance_leftovers_are_notes(outputs, tmp_path):
    _, _, bal = outputs
    d = copy(bal, tmp_path / "b")
    (d / ".buckets").mkdir()
    (d / "train" / ".train-000000.tar.tmp-1-abcdef01").write_bytes(b"x")
    r = verify_balance(d)
    assert r.ok and len(r.notes) == 2, (r.problems, r.notes)


def test_manifests_need_an_extract_output(outputs):
    m, _, bal = outputs
    with pytest.raises(InputError, match="only be checked against an extract output"):
        verify_output(bal, [m])
