"""Fakes paired with their originals (manifest column original_id) and FF++/DFD masks (mask_path),
on the publishers' layouts (tests/dataset_fixtures.py and tiny FF++/DFD trees)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from dataset_fixtures import make_celebdf, make_dfdc, make_fakeavceleb, touch
from dfprep.adapters import AdapterOptions, VideoRow
from dfprep.core.errors import InputError
from dfprep.manifest import build_manifest, rows_to_table
from dfprep.schema import make_video_id

FF_METHODS = ("Deepfakes", "FaceSwap", "FaceShifter", "Face2Face", "NeuralTextures")


def _by_rel(table, root: Path) -> dict[str, dict]:
    base = root.resolve()
    return {Path(r["path"]).relative_to(base).as_posix(): r for r in table.to_pylist()}


def _originals(rows: dict[str, dict], dataset: str) -> dict[str, str]:
    """Fake relpath -> relpath of its original ('' when unpaired); reals have none."""
    rel_of = {make_video_id(dataset, rel): rel for rel in rows}
    assert not any(r["original_id"] or r["mask_path"] for r in rows.values() if r["label"] == 0)
    return {rel: rel_of.get(r["original_id"], "") for rel, r in rows.items() if r["label"] == 1}


def _ffpp_tree(root: Path, masks=("Deepfakes", "Face2Face")) -> None:
    pairs = {"train": [["000", "001"]], "val": [["002", "003"]], "test": [["004", "005"]]}
    for split, ps in pairs.items():
        (root / "splits").mkdir(parents=True, exist_ok=True)
        (root / "splits" / f"{split}.json").write_text(json.dumps(ps))
        for a, b in ps:
            for vid in (a, b):
                touch(root / f"original_sequences/youtube/c23/videos/{vid}.mp4")
            for m in FF_METHODS:
                for name in (f"{a}_{b}", f"{b}_{a}"):
                    touch(root / f"manipulated_sequences/{m}/c23/videos/{name}.mp4")
                    if m in masks:
                        touch(root / f"manipulated_sequences/{m}/masks/videos/{name}.mp4")


def test_ffpp_fakes_name_their_target_video_and_mask(tmp_path):
    _ffpp_tree(tmp_path)
    (tmp_path / "manipulated_sequences/Face2Face/masks/videos/005_004.mp4").unlink()
    rows = _by_rel(build_manifest("ffpp", tmp_path), tmp_path)
    originals = _originals(rows, "ffpp")
    assert len(originals) == 6 * 5
    for rel, orig in originals.items():
        target = Path(rel).stem.split("_")[0]
        assert orig == f"original_sequences/youtube/c23/videos/{target}.mp4", rel
        method = rel.split("/")[1]
        mask = rows[rel]["mask_path"]
        if method == "Deepfakes" or (method == "Face2Face" and not rel.endswith("005_004.mp4")):
            assert mask == str(tmp_path.resolve() / rel.replace("c23/videos", "masks/videos"))
        else:
            assert mask == "", rel  # FaceShifter has none; the others lack them in this copy
    # the mask folder is never read as videos
    assert not any("/masks/" in r["path"] for r in rows.values())


def test_ffpp_a_fake_whose_original_is_missing_is_unpaired(tmp_path, caplog):
    _ffpp_tree(tmp_path)
    (tmp_path / "original_sequences/youtube/c23/videos/003.mp4").unlink()
    with caplog.at_level(logging.WARNING):
        rows = _by_rel(build_manifest("ffpp", tmp_path), tmp_path)
    originals = _originals(rows, "ffpp")
    assert {rel for rel, o in originals.items() if not o} == {
        f"manipulated_sequences/{m}/c23/videos/003_002.mp4" for m in FF_METHODS
    }


def test_dfd_fakes_name_the_target_actors_scene(tmp_path):
    reals = ["01__kitchen_pan", "02__kitchen_pan", "01__outside_talking_still_laughing"]
    fakes = [
        "01_02__kitchen_pan__ABCD1234",
        "02_01__kitchen_pan__ZZ99XX00",
        "01_03__outside_talking_still_laughing__QWERTY12",
        "03_01__kitchen_pan__NOORIG00",  # actor 03 has no kitchen_pan video
    ]
    for r in reals:
        touch(tmp_path / f"original_sequences/actors/c23/videos/{r}.mp4")
    for f in fakes:
        touch(tmp_path / f"manipulated_sequences/DeepFakeDetection/c23/videos/{f}.mp4")
    touch(tmp_path / f"manipulated_sequences/DeepFakeDetection/masks/videos/{fakes[0]}.mp4")
    rows = _by_rel(build_manifest("dfd", tmp_path), tmp_path)
    originals = {Path(k).stem: Path(v).stem for k, v in _originals(rows, "dfd").items()}
    assert originals == {
        fakes[0]: "01__kitchen_pan",
        fakes[1]: "02__kitchen_pan",
        fakes[2]: "01__outside_talking_still_laughing",
        fakes[3]: "",
    }
    masked = {Path(rel).stem for rel, r in rows.items() if r["mask_path"]}
    assert masked == {fakes[0]}


def test_dfdc_original_from_the_metadata_in_its_part_then_others(tmp_path, caplog):
    want = make_dfdc(tmp_path, parts=2, originals=3, fakes=2, test=4)
    meta_path = tmp_path / "dfdc_train_part_1/metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["crosspart.mp4"] = {"label": "FAKE", "split": "train", "original": "p0real01.mp4"}
    meta["orphan.mp4"] = {"label": "FAKE", "split": "train", "original": "notdownloaded.mp4"}
    meta_path.write_text(json.dumps(meta))
    for name in ("crosspart.mp4", "orphan.mp4"):
        touch(tmp_path / "dfdc_train_part_1" / name)
    with caplog.at_level(logging.INFO):
        rows = _by_rel(build_manifest("dfdc", tmp_path), tmp_path)
    originals = _originals(rows, "dfdc")
    for rel, orig in originals.items():
        if rel.startswith("test/"):
            assert orig == "", rel  # labels.csv names no original
        elif rel.endswith("crosspart.mp4"):
            assert orig == "dfdc_train_part_0/p0real01.mp4"
        elif rel.endswith("orphan.mp4"):
            assert orig == ""
        else:
            part, name = rel.split("/")
            assert orig == f"{part}/{name[:2]}real{name[6:8]}.mp4", rel
            assert Path(orig).stem == want[rel].group
    assert "1 fake(s) have their original in another training part" in caplog.text
    assert "1 fake(s) name an original that is not in the download" in caplog.text


def test_celebdf_fakes_are_made_from_the_targets_real_video(tmp_path):
    make_celebdf(tmp_path)
    (tmp_path / "Celeb-real/id5_0001.mp4").unlink()  # not in the test list
    rows = _by_rel(build_manifest("celebdf", tmp_path), tmp_path)
    originals = _originals(rows, "celebdf")
    assert len(originals) == 12 * 2 * 2
    for rel, orig in originals.items():
        a, _, n = Path(rel).stem.split("_")
        assert orig == ("" if (a, n) == ("id5", "0001") else f"Celeb-real/{a}_{n}.mp4"), rel


def test_fakeavceleb_original_is_the_same_identitys_named_real_video(tmp_path):
    make_fakeavceleb(tmp_path, n_ids=6)
    rows = _by_rel(build_manifest("fakeavceleb", tmp_path), tmp_path)
    originals = _originals(rows, "fakeavceleb")
    assert len(originals) == 6 * 5
    for rel, orig in originals.items():
        parts = rel.split("/")
        want = f"RealVideo-RealAudio/{parts[1]}/{parts[2]}/{parts[3]}/{parts[4][:5]}.mp4"
        assert orig == want, rel
    # two real videos of that name for one identity (another race folder): ambiguous, unpaired
    extra = "RealVideo-RealAudio/African/women/id00001/00001.mp4"
    with (tmp_path / "meta_data.csv").open("a") as f:
        f.write(
            "id00001,-,-,real,A,RealVideo-RealAudio,African,women,00001.mp4,"
            "FakeAVCeleb/RealVideo-RealAudio/African/women/id00001\n"
        )
    touch(tmp_path / extra)
    rows = _by_rel(build_manifest("fakeavceleb", tmp_path), tmp_path)
    unpaired = {rel for rel, o in _originals(rows, "fakeavceleb").items() if not o}
    assert unpaired == {rel for rel in rows if "/id00001/" in rel and rows[rel]["label"] == 1}
    assert len(unpaired) == 5


def test_folder_csv_original_column(tmp_path):
    for rel in ("real/a.mp4", "fake/a_swapped.mp4", "fake/b.mp4", "fake/c.mp4"):
        touch(tmp_path / rel)
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "path,label,original\n"
        "real/a.mp4,0,\n"
        "fake/a_swapped.mp4,1,./real/a.mp4\n"
        "fake/b.mp4,1,real/not_listed.mp4\n"
        "fake/c.mp4,1,\n"
    )
    table = build_manifest("itw", tmp_path, adapter="folder", opts=AdapterOptions(csv=csv))
    originals = _originals(_by_rel(table, tmp_path), "itw")
    assert originals == {"fake/a_swapped.mp4": "real/a.mp4", "fake/b.mp4": "", "fake/c.mp4": ""}
    csv.write_text("path,label,original\nreal/a.mp4,0,fake/c.mp4\n")
    with pytest.raises(InputError, match=r"labels.csv:2: a real video cannot have an original"):
        build_manifest("itw", tmp_path, adapter="folder", opts=AdapterOptions(csv=csv))


def test_manifest_unpairs_a_fake_whose_original_is_not_a_row(tmp_path, caplog):
    rows = [
        VideoRow("r/a.mp4", "test", 0, "real", "real"),
        VideoRow("f/a.mp4", "test", 1, "x", "FS", original="r/a.mp4"),
        VideoRow("f/b.mp4", "test", 1, "x", "FS", original="r/gone.mp4", mask="m/b.mp4"),
    ]
    with caplog.at_level(logging.WARNING):
        t = {
            r["path"].rsplit("/", 2)[-2] + "/" + r["path"].rsplit("/", 1)[1]: r
            for r in rows_to_table("x", tmp_path, rows).to_pylist()
        }
    assert t["f/a.mp4"]["original_id"] == make_video_id("x", "r/a.mp4")
    assert t["f/b.mp4"]["original_id"] == ""
    assert t["f/b.mp4"]["mask_path"] == f"{tmp_path.resolve()}/m/b.mp4"  # the mask is kept
    assert "x: 1 fake(s) were made from an original that is not in the manifest" in caplog.text
