"""The adapters on full-size trees of the publishers' naming (empty files): Table 1, row by row.

The trees are built by tests/full_size_trees.py from the published naming rules and counts. Each
manifest is compared with the catalogue's expected counts through the count check, so these tests
also pin the catalogue's figures.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from dfprep.adapters import AdapterOptions
from dfprep.catalogue import load_catalogue
from dfprep.cli import app
from dfprep.counts import check_counts, count_table, manifest_counts
from dfprep.manifest import build_manifest, write_manifest
from full_size_trees import make_celebdf_full, make_dfdc_full, make_ffpp_full

CAT = load_catalogue()


def counts_of(table, dataset: str) -> dict[str, int]:
    return manifest_counts(table)[dataset]


def split_class(c: dict[str, int]) -> tuple[tuple[int, int, int], tuple[int, int]]:
    return (c["train"], c["val"], c["test"]), (c["real"], c["fake"])


def manifest(name: str, root, **options):
    e = CAT.entry(name)
    return build_manifest(
        name,
        root,
        adapter=e.adapter,
        opts=AdapterOptions(options=CAT.options_for(name, options)),
        faces=e.faces,
    )


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """Where the trees go: memory (/dev/shm) when there is one, as 140K file creations on a busy
    disk take minutes; else the usual tmp_path."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        base = Path(tempfile.mkdtemp(prefix="dfprep-full-size-", dir=shm))
        yield base
        shutil.rmtree(base, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp("full-size")


@pytest.fixture(scope="module")
def ffpp_root(trees):
    make_ffpp_full(trees / "FaceForensics++")
    return trees / "FaceForensics++"


@pytest.fixture(scope="module")
def celebdf_root(trees):
    make_celebdf_full(trees / "Celeb-DF-v2")
    return trees / "Celeb-DF-v2"


@pytest.fixture(scope="module")
def dfdc_root(trees):
    make_dfdc_full(trees / "DFDC")
    return trees / "DFDC"


@pytest.fixture(scope="module")
def ffpp_table(ffpp_root):
    return manifest("ffpp", ffpp_root)


@pytest.fixture(scope="module")
def celebdf_table(celebdf_root):
    return manifest("celebdf", celebdf_root)


def test_ffpp_is_table_1_and_never_dfd(ffpp_table):
    t = ffpp_table
    c = counts_of(t, "ffpp")
    assert split_class(c) == ((4320, 840, 840), (1000, 5000))
    assert (c["train.real"], c["val.real"], c["test.real"]) == (720, 140, 140)
    assert (c["train.fake"], c["val.fake"], c["test.fake"]) == (3600, 700, 700)
    assert not any(
        "DeepFakeDetection" in p or "/actors/" in p or "/masks/" in p for p in t["path"].to_pylist()
    )
    assert Counter(t["method"].to_pylist()) == {
        "real": 1000,
        **dict.fromkeys(
            ("Deepfakes", "FaceSwap", "FaceShifter", "Face2Face", "NeuralTextures"), 1000
        ),
    }
    assert check_counts("ffpp", c, CAT.entry("ffpp")).ok


def test_ffpp_without_faceshifter_and_the_count_check_says_so(ffpp_root):
    t = manifest("ffpp", ffpp_root, methods="Deepfakes,FaceSwap,Face2Face,NeuralTextures")
    c = counts_of(t, "ffpp")
    assert split_class(c) == ((720 + 2880, 140 + 560, 140 + 560), (1000, 4000))
    check = check_counts("ffpp", c, CAT.entry("ffpp"))
    assert "fake: 4,000 (Table 1: 5,000)" in check.differences
    assert "train.fake: 2,880 (FF++ pair lists: 3,600)" in check.differences
    assert (
        len(check.differences) == 7
    )  # Table 1: train, val, test, fake; the pair lists: 3 split fakes
    console = Console(record=True, width=200, color_system="truecolor")
    console.print(count_table(check))
    text = console.export_text(styles=False)
    assert re.search(r"all\s+│\s+fake\s+│\s+4,000\s+│\s+5,000 \(-1,000\)", text)
    assert "7 difference(s)" in text


def test_dfd_is_its_own_dataset(ffpp_root):
    t = manifest("dfd", ffpp_root)
    c = counts_of(t, "dfd")
    assert split_class(c) == ((0, 0, 3431), (363, 3068))
    assert check_counts("dfd", c, CAT.entry("dfd")).ok
    d = manifest("dfd", ffpp_root, split="derived")
    split_of = defaultdict(set)
    for r in d.to_pylist():
        split_of[r["source_id"]].add(r["split"])
        assert r["split_derived"]
    assert all(len(s) == 1 for s in split_of.values())  # an actor's videos in one split only
    assert len(split_of) == 28 and {s for ss in split_of.values() for s in ss} == {
        "train",
        "val",
        "test",
    }


def test_celebdf_has_no_val_and_one_real_more_than_table_1(celebdf_root, celebdf_table):
    t = celebdf_table
    c = counts_of(t, "celebdf")
    # the release's 590 + 300 reals; Table 1 counts 889 (6,010 + 518 = 6,528 videos)
    assert split_class(c) == ((6011, 0, 518), (890, 5639))
    assert (c["test.real"], c["test.fake"]) == (178, 340)
    check = check_counts("celebdf", c, CAT.entry("celebdf"))
    assert check.differences == ["train: 6,011 (Table 1: 6,010)", "real: 890 (Table 1: 889)"]
    assert not any(t["split_derived"].to_pylist())
    v = counts_of(manifest("celebdf", celebdf_root, val_fraction="0.1"), "celebdf")
    assert v["test"] == 518 and v["train"] + v["val"] == 6011 and 500 < v["val"] < 700


@pytest.fixture(scope="module")
def dfdc_table(dfdc_root):
    return manifest("dfdc", dfdc_root)


def test_dfdc_reads_the_published_validation_set(dfdc_table):
    t = dfdc_table
    c = counts_of(t, "dfdc")
    assert split_class(c) == ((119154, 4000, 5000), (23654, 104500))
    assert (c["val.real"], c["val.fake"], c["test.real"], c["test.fake"]) == (
        2000,
        2000,
        2500,
        2500,
    )
    assert check_counts("dfdc", c, CAT.entry("dfdc")).ok
    assert not any(t["split_derived"].to_pylist())


def test_count_check_commands(ffpp_table, celebdf_table, celebdf_root, tmp_path):
    ff = write_manifest(ffpp_table, tmp_path / "ffpp.parquet")
    cdf = write_manifest(celebdf_table, tmp_path / "celebdf.parquet")
    runner = CliRunner()
    res = runner.invoke(app, ["datasets", "--check", str(ff), str(cdf)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert (
        "ffpp: videos per split and class" in res.output
        and "matches every recorded count" in res.output
    )
    assert "celebdf: videos per split and class" in res.output and "2 difference(s)" in res.output
    assert re.search(r"train\s+│\s+all\s+│\s+6,011\s+│\s+6,010 \(\+1\)", res.output)
    res = runner.invoke(
        app,
        [
            "manifest",
            "--dataset",
            "celebdf",
            "--root",
            str(celebdf_root),
            "--out",
            str(tmp_path / "m.parquet"),
        ],
        terminal_width=200,
    )
    assert res.exit_code == 0, res.output
    assert "wrote 6529 videos" in res.output and "2 difference(s)" in res.output
    res = runner.invoke(app, ["datasets", "--check"])
    assert res.exit_code == 2 and "--check needs one or more manifest files" in res.output


def _paired(table) -> tuple[list[dict], dict[str, dict]]:
    rows = table.to_pylist()
    return rows, {r["video_id"]: r for r in rows}


def test_fakes_are_paired_with_their_originals(ffpp_root, ffpp_table, celebdf_table, dfdc_table):
    """Every fake whose original is in the download names it, by the dataset's own rule."""
    base = {}
    found = {}
    for name, table in (
        ("ffpp", ffpp_table),
        ("dfd", manifest("dfd", ffpp_root)),
        ("celebdf", celebdf_table),
        ("dfdc", dfdc_table),
    ):
        rows, by_id = _paired(table)
        fakes = [r for r in rows if r["label"] == 1]
        paired = [r for r in fakes if r["original_id"]]
        masked = [r for r in fakes if r["mask_path"]]
        found[name] = (len(fakes), len(paired), len(masked))
        base[name] = by_id
        for r in paired:
            orig = by_id[r["original_id"]]
            assert orig["label"] == 0 and orig["source_id"] == r["source_id"], r["path"]
        assert not any(r["original_id"] or r["mask_path"] for r in rows if r["label"] == 0)
    print(f"fakes, paired, with a mask: {found}")
    # FF++: AAA_BBB from AAA, masks for all but FaceShifter
    assert found["ffpp"] == (5000, 5000, 4000)
    for r in base["ffpp"].values():
        if r["label"] == 1:
            target = Path(r["path"]).stem.split("_")[0]
            assert Path(base["ffpp"][r["original_id"]]["path"]).stem == target
            has_mask = r["method"] != "FaceShifter"
            assert bool(r["mask_path"]) == has_mask
            if has_mask:
                assert r["mask_path"].endswith(f"{r['method']}/masks/videos/{Path(r['path']).name}")
    # DFD: <t>_<s>__<scene>__<id> from <t>__<scene> when the download has that video
    reals = {Path(r["path"]).stem for r in base["dfd"].values() if r["label"] == 0}
    n_dfd = 0
    for r in base["dfd"].values():
        if r["label"] == 1:
            t, rest = Path(r["path"]).stem.split("_", 1)
            want = f"{t}__{rest.split('__')[1]}"
            assert (
                Path(base["dfd"][r["original_id"]]["path"]).stem if r["original_id"] else ""
            ) == (want if want in reals else "")
            n_dfd += want in reals
    assert found["dfd"] == (3068, n_dfd, 3068) and n_dfd > 1000
    # Celeb-DF: id<a>_id<b>_<n> from Celeb-real/id<a>_<n>, all of which the tree has
    assert found["celebdf"] == (5639, 5639, 0)
    for r in base["celebdf"].values():
        if r["label"] == 1:
            a, _, n = Path(r["path"]).stem.split("_")
            assert base["celebdf"][r["original_id"]]["path"].endswith(f"Celeb-real/{a}_{n}.mp4")
    # DFDC: the training fakes' metadata `original`; validation and test name none
    assert found["dfdc"] == (104500, 100000, 0)
