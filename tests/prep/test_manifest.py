import json

import pyarrow.parquet as pq
import pytest

from dfprep.adapters import AdapterOptions
from dfprep.core.errors import InputError
from dfprep.manifest import build_manifest, read_manifest, write_manifest
from dfprep.schema import make_video_id


def _ffpp_tree(
    root, pairs_by_split, methods=("Deepfakes", "FaceSwap", "Face2Face", "NeuralTextures")
):
    (root / "splits").mkdir(parents=True)
    orig = root / "original_sequences/youtube/c23/videos"
    orig.mkdir(parents=True)
    for split, pairs in pairs_by_split.items():
        (root / "splits" / f"{split}.json").write_text(json.dumps(pairs))
        for a, b in pairs:
            for vid in (a, b):
                (orig / f"{vid}.mp4").write_bytes(b"")
            for m in methods:
                d = root / "manipulated_sequences" / m / "c23/videos"
                d.mkdir(parents=True, exist_ok=True)
                (d / f"{a}_{b}.mp4").write_bytes(b"")
                (d / f"{b}_{a}.mp4").write_bytes(b"")
    return root


SPLITS = {
    "train": [["000", "003"], ["001", "002"]],
    "val": [["004", "005"]],
    "test": [["006", "007"]],
}


def test_ffpp_labels_splits_categories(tmp_path):
    root = _ffpp_tree(tmp_path / "ff", SPLITS)
    t = build_manifest("ffpp", root)
    rows = {r["video_id"]: r for r in t.to_pylist()}
    assert t.num_rows == 8 + 4 * 8
    real = rows[make_video_id("ffpp", "original_sequences/youtube/c23/videos/004.mp4")]
    assert (real["label"], real["split"], real["category"], real["method"]) == (
        0,
        "val",
        "real",
        "real",
    )
    f2f = rows[make_video_id("ffpp", "manipulated_sequences/Face2Face/c23/videos/007_006.mp4")]
    assert (f2f["label"], f2f["split"], f2f["category"]) == (1, "test", "RE")
    df = rows[make_video_id("ffpp", "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4")]
    assert (df["category"], df["split"], df["source_id"]) == ("FS", "train", "000")
    assert all("." not in v for v in rows)
    # no leakage: every id number appears in one split only
    split_of = {}
    for r in rows.values():
        for num in r["path"].rsplit("/", 1)[1][:-4].split("_"):
            assert split_of.setdefault(num, r["split"]) == r["split"]
    assert sorted(t.column("video_id").to_pylist()) == t.column("video_id").to_pylist()


def test_ffpp_ids_stable_and_roundtrip(tmp_path):
    root = _ffpp_tree(tmp_path / "ff", SPLITS)
    a = build_manifest("ffpp", root)
    b = build_manifest("ffpp", root)
    assert a.equals(b)
    out = write_manifest(a, tmp_path / "m" / "ffpp.parquet")
    assert read_manifest(out).equals(a)


def test_ffpp_errors_name_the_culprit(tmp_path):
    with pytest.raises(InputError, match="dataset root not found"):
        build_manifest("ffpp", tmp_path / "nope")
    root = _ffpp_tree(tmp_path / "ff", SPLITS)
    (root / "splits/val.json").write_text('[["004", ')
    with pytest.raises(InputError, match=r"val\.json"):
        build_manifest("ffpp", root)
    (root / "splits/val.json").write_text(json.dumps([["004", "005"], ["000", "009"]]))
    with pytest.raises(InputError, match="000 is in both"):
        build_manifest("ffpp", root)


def test_ffpp_unlisted_video_is_an_error(tmp_path):
    root = _ffpp_tree(tmp_path / "ff", SPLITS)
    (root / "original_sequences/youtube/c23/videos/999.mp4").write_bytes(b"")
    with pytest.raises(InputError, match=r"999\.mp4 belongs to no pair"):
        build_manifest("ffpp", root)


def test_ffpp_leaves_dfd_alone_and_warns_of_missing_methods(tmp_path, caplog):
    import logging

    from dfprep.core.errors import ConfigError

    root = _ffpp_tree(tmp_path / "ff", SPLITS)  # no FaceShifter, like the sample dataset
    for rel in (
        "original_sequences/actors/c23/videos/01__kitchen_pan.mp4",
        "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__kitchen_pan__ABCD1234.mp4",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    with caplog.at_level(logging.INFO, logger="dfprep.adapters.ffpp"):
        t = build_manifest("ffpp", root)
    assert t.num_rows == 8 + 4 * 8  # the DFD videos are not FF++
    assert (
        "FaceShifter is missing" in caplog.text and "dfprep manifest --dataset dfd" in caplog.text
    )
    only = build_manifest(
        "ffpp", root, opts=AdapterOptions(options={"methods": "Deepfakes, Face2Face"})
    )
    assert set(only["method"].to_pylist()) == {"real", "Deepfakes", "Face2Face"}
    with pytest.raises(ConfigError, match="option methods: 'DeepFakeDetection' is not one of"):
        build_manifest(
            "ffpp", root, opts=AdapterOptions(options={"methods": "Deepfakes,DeepFakeDetection"})
        )
    with pytest.raises(ConfigError, match="compression must be one of"):
        build_manifest("ffpp", root, opts=AdapterOptions(options={"compression": "c10"}))
    (root / "manipulated_sequences/FaceShiftr").mkdir()
    with pytest.raises(InputError, match=r"unknown manipulation folder .*FaceShiftr"):
        build_manifest("ffpp", root)


def test_dfd_names_and_folders(tmp_path):
    root = tmp_path / "ff"
    reals = root / "original_sequences/actors/c23/videos"
    fakes = root / "manipulated_sequences/DeepFakeDetection/c23/videos"
    with pytest.raises(
        InputError, match=r"dfd: folder missing: .*original_sequences/actors/c23/videos"
    ):
        build_manifest("dfd", root.parent)
    for d, names in (
        (reals, ["01__kitchen_pan.mp4", "02__hugging_happy.mp4"]),
        (fakes, ["01_02__kitchen_pan__ABCD1234.mp4", "02_01__hugging_happy__ZZ99XX00.mp4"]),
    ):
        d.mkdir(parents=True)
        for n in names:
            (d / n).write_bytes(b"")
    t = build_manifest("dfd", root)
    assert sorted(
        zip(t["label"].to_pylist(), t["source_id"].to_pylist(), t["split"].to_pylist(), strict=True)
    ) == [(0, "01", "test"), (0, "02", "test"), (1, "01", "test"), (1, "02", "test")]
    assert set(t["method"].to_pylist()) == {"real", "DeepFakeDetection"}
    (fakes / "01_02__kitchen_pan.mp4").write_bytes(b"")
    with pytest.raises(
        InputError,
        match=r"01_02__kitchen_pan.mp4 does not follow DFD's <target>_<source>__<scene>__<id>",
    ):
        build_manifest("dfd", root)


def test_folder_layout(tmp_path):
    for rel in ("real/a.mp4", "real/sub/b.MP4", "fake/x/c.mp4", "fake/notes.txt"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    t = build_manifest("itw", tmp_path, adapter="folder")
    rows = t.to_pylist()
    assert [r["label"] for r in rows] == [1, 0, 0]
    assert {r["split"] for r in rows} == {"test"}
    assert rows[0]["category"] == "unknown" and rows[1]["category"] == "real"


def test_folder_csv_and_its_errors(tmp_path):
    (tmp_path / "v").mkdir()
    for n in ("a", "b"):
        (tmp_path / "v" / f"{n}.mp4").write_bytes(b"")
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label,split,method\nv/a.mp4,real,train,\nv/b.mp4,1,test,faceswap\n")
    t = build_manifest("house", tmp_path, adapter="folder", opts=AdapterOptions(csv=csv))
    assert [(r["label"], r["split"], r["method"]) for r in t.to_pylist()] == [
        (0, "train", "real"),
        (1, "test", "faceswap"),
    ]
    csv.write_text("path,label\nv/a.mp4,maybe\n")
    with pytest.raises(InputError, match=r"labels.csv:2: unknown label 'maybe'"):
        build_manifest("house", tmp_path, adapter="folder", opts=AdapterOptions(csv=csv))
    csv.write_text("file,label\nv/a.mp4,0\n")
    with pytest.raises(InputError, match="missing column 'path'"):
        build_manifest("house", tmp_path, adapter="folder", opts=AdapterOptions(csv=csv))
    csv.write_text("path,label\nv/a.mp4,0\nv/gone.mp4,1\n")
    with pytest.raises(InputError, match=r"labels.csv:3: listed file is missing"):
        build_manifest("house", tmp_path, adapter="folder", opts=AdapterOptions(csv=csv))
    opts = AdapterOptions(csv=csv, skip_missing=True)
    t = build_manifest("house", tmp_path, adapter="folder", opts=opts)
    assert t.num_rows == 1 and opts.missing == ["v/gone.mp4"]


def test_duplicate_ids_are_an_error(tmp_path):
    for rel in ("real/a.mp4", "real/a.avi"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    with pytest.raises(InputError, match="duplicate video id"):
        build_manifest("x", tmp_path, adapter="folder")


def test_read_manifest_checks_columns(tmp_path):
    import pyarrow as pa

    p = tmp_path / "m.parquet"
    pq.write_table(pa.table({"video_id": ["a"], "path": ["/x"]}), p)
    with pytest.raises(InputError, match="missing column"):
        read_manifest(p)
    p.write_text("not parquet")
    with pytest.raises(InputError, match="not a Parquet manifest"):
        read_manifest(p)


def test_video_ids_are_safe_and_distinct():
    a = make_video_id(
        "fakeavceleb",
        "FakeAVCeleb/FakeVideo-FakeAudio/African/men/id00076/00109_10_id00476_wavtolip.mp4",
    )
    assert a.startswith("fakeavceleb-FakeAVCeleb-FakeVideo-FakeAudio-African-men-id00076-")
    b = make_video_id("x", "a b/c.mp4")
    c = make_video_id("x", "a_b/c.mp4")
    assert b != c and "." not in b and " " not in b
