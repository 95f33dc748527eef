"""An extract output as other clients read it: the tars alone in shards/ (HuggingFace `datasets`,
`webdataset`, `wids`), `cls` named by the dataset card; and an output of the first layout (tables
beside the tars) refused in one line by every reader, moved and resumed by extract."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

import pytest

from dfprep.core.errors import InputError
from dfprep.extract import run_extract
from dfprep.shards import read_extract_shards
from dfprep.shards.card import CARD, HF_SPLIT, WIDS_INDEX
from dfprep.synth import make_face_video
from dfprep.verify import verify_extract
from test_reliability_extract import manifest, params


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> tuple[Path, Path]:
    """(manifest, extract output) of three short videos, two shard jobs."""
    root = tmp_path_factory.mktemp("clients")
    rels = [f"{i}.mp4" for i in range(3)]
    for i, rel in enumerate(rels):
        make_face_video(root / "v" / rel, fps=5, size=(160, 120), seconds=2, seed=i)
    m = manifest(root / "v", rels, root / "cli.parquet")
    s = run_extract([m], root / "extract", params())
    assert s.ok == 3 and s.crops > 0
    return m, root / "extract"


def test_the_tars_are_alone_in_shards_and_their_tables_in_meta(extract):
    _, d = extract
    assert {p.suffix for p in (d / "shards").iterdir()} == {".tar"}
    assert {p.name.split(".", 1)[1] for p in (d / "meta").iterdir()} >= {
        "index.parquet", "videos.parquet", "stats.json"
    }  # fmt: skip
    assert (d / CARD).is_file() and (d / WIDS_INDEX).is_file()


def test_datasets_webdataset_and_wids_read_the_output_as_it_is(extract, tmp_path, monkeypatch):
    import datasets
    import webdataset as wds
    import wids

    _, d = extract
    crops = sum(len(s.index) for s in read_extract_shards(d)[0])
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    plain = datasets.load_dataset("webdataset", data_dir=str(d / "shards"), split="train")
    assert len(plain) == crops and {"cls", "jpg", "json"} <= set(plain.column_names)
    carded = datasets.load_dataset(str(d), split=HF_SPLIT)  # the card: cls has its names
    assert len(carded) == crops
    assert carded.features["cls"].names == ["real", "fake"]
    row = carded[0]
    assert carded.features["cls"].int2str(row["cls"]) in ("real", "fake")
    assert row["json"]["label"] == row["cls"] and row["jpg"].size == (224, 224)

    stream = wds.WebDataset(sorted(glob.glob(str(d / "shards" / "*.tar"))), shardshuffle=False)
    assert sum(1 for _ in stream) == crops
    indexed = wids.ShardListDataset(str(d / WIDS_INDEX))
    assert len(indexed) == crops
    assert int(indexed[crops - 1][".cls"]) in (0, 1)


def _first_layout(d: Path) -> None:
    """Put the tables back beside the tars, as the first layout had them."""
    for p in (d / "meta").iterdir():
        p.rename(d / "shards" / p.name)
    (d / "meta").rmdir()


def test_a_first_layout_output_is_refused_by_readers_then_moved_and_resumed_by_extract(
    extract, tmp_path
):
    m, src = extract
    d = shutil.copytree(src, tmp_path / "old")
    tars = {p.name: p.read_bytes() for p in (d / "shards").glob("*.tar")}
    _first_layout(d)
    for read in (read_extract_shards, verify_extract):
        with pytest.raises(InputError, match="first layout") as e:
            read(d)
        assert "mv " in str(e.value) and "dfprep extract" in str(e.value)  # how to move them
        assert "\n" not in str(e.value)
    s = run_extract([m], d, params())
    assert s.migrated > 0 and s.skipped == s.jobs and s.videos_run == 0  # nothing redone
    assert {p.name: p.read_bytes() for p in (d / "shards").glob("*.tar")} == tars
    assert {p.suffix for p in (d / "shards").iterdir()} == {".tar"}
    assert verify_extract(d, [m]).ok
