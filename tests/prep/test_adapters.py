"""The dataset adapters on tiny copies of each published layout (tests/dataset_fixtures.py)."""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from dataset_fixtures import (
    make_celebdf,
    make_df40,
    make_dfdc,
    make_dfeval2024,
    make_fakeavceleb,
    make_forgerynet,
    make_wilddeepfake,
    touch,
)
from dfprep.adapters import AdapterOptions
from dfprep.adapters.splits import derive_splits, read_options
from dfprep.core.errors import ConfigError, InputError
from dfprep.manifest import build_manifest


def _rows(table, root: Path) -> dict[str, dict]:
    base = root.resolve()
    return {Path(r["path"]).relative_to(base).as_posix(): r for r in table.to_pylist()}


def _check(rows: dict[str, dict], want: dict, dataset: str) -> None:
    """Exactly the wanted videos, each with its label, method, category and (official) split."""
    assert set(rows) == set(want)
    for rel, w in want.items():
        r = rows[rel]
        got = (r["label"], r["method"], r["category"], r["dataset"])
        assert got == (w.label, w.method, w.category, dataset), rel
        if w.split is not None:
            assert r["split"] == w.split, rel
    ids = [r["video_id"] for r in rows.values()]
    assert len(set(ids)) == len(ids)


def _no_group_straddles(rows: dict[str, dict], want: dict, splits=("train", "val", "test")) -> dict:
    """Every group (identity / original) sits in one split; returns group -> split."""
    split_of: dict[str, set] = defaultdict(set)
    for rel, w in want.items():
        if rows[rel]["split"] in splits:
            split_of[w.group].add(rows[rel]["split"])
    assert all(len(s) == 1 for s in split_of.values()), {
        g: s for g, s in split_of.items() if len(s) > 1
    }
    return {g: next(iter(s)) for g, s in split_of.items()}


# ---- derived splits and options -----------------------------------------------------------------
def test_derive_splits_whole_groups_deterministic_and_proportional():
    sizes = {f"g{i}": 1 + i % 4 for i in range(200)}
    a = derive_splits(sizes, [("val", 0.15), ("test", 0.15)], "s")
    assert a == derive_splits(dict(reversed(sizes.items())), [("val", 0.15), ("test", 0.15)], "s")
    share = Counter()
    for g, s in a.items():
        share[s] += sizes[g]
    total = sum(sizes.values())
    biggest = max(sizes.values()) / total
    for split, f in (("val", 0.15), ("test", 0.15), ("train", 0.7)):
        assert abs(share[split] / total - f) <= biggest
    assert derive_splits(sizes, [("val", 0.15), ("test", 0.15)], "other") != a
    # a tiny held-out fraction still gets a group rather than silently none
    assert "val" in derive_splits({"a": 5, "b": 5, "c": 5}, [("val", 0.01)]).values()
    with pytest.raises(ConfigError, match="leave nothing for train"):
        derive_splits(sizes, [("val", 0.5), ("test", 0.5)])


def test_read_options_casts_cli_strings_and_rejects_unknown_keys():
    defaults = {"val_fraction": 0.1, "frame_stride": 10, "seed": "x", "flag": False}
    opts = AdapterOptions(options={"val_fraction": "0.2", "frame_stride": "3", "flag": "yes"})
    assert read_options(opts, "t", defaults) == {
        "val_fraction": 0.2,
        "frame_stride": 3,
        "seed": "x",
        "flag": True,
    }
    with pytest.raises(ConfigError, match=r"t: unknown option.*val_fractoin"):
        read_options(AdapterOptions(options={"val_fractoin": "0.2"}), "t", defaults)
    with pytest.raises(ConfigError, match="frame_stride: expected an integer"):
        read_options(AdapterOptions(options={"frame_stride": "ten"}), "t", defaults)


# ---- Celeb-DF --------------------------------------------------------------------------------------
def test_celebdf_default_is_the_papers_no_val(tmp_path):
    want = make_celebdf(tmp_path)
    rows = _rows(build_manifest("celebdf", tmp_path), tmp_path)
    _check(rows, want, "celebdf")
    listed = [
        ln.split()[1] for ln in (tmp_path / "List_of_testing_videos.txt").read_text().splitlines()
    ]
    assert sorted(r for r, x in rows.items() if x["split"] == "test") == sorted(listed)
    assert {x["split"] for r, x in rows.items() if r not in listed} == {"train"}  # everything else
    assert not any(x["split_derived"] for x in rows.values())


def test_celebdf_labels_official_test_and_identity_val(tmp_path):
    want = make_celebdf(tmp_path)
    opts = AdapterOptions(options={"val_fraction": "0.1"})
    rows = _rows(build_manifest("celebdf", tmp_path, opts=opts), tmp_path)
    _check(rows, want, "celebdf")
    listed = [
        ln.split()[1] for ln in (tmp_path / "List_of_testing_videos.txt").read_text().splitlines()
    ]
    assert sorted(r for r, x in rows.items() if x["split"] == "test") == sorted(listed)
    assert {x["split"] for r, x in rows.items() if r not in listed} == {"train", "val"}
    assert all(x["split_derived"] == (x["split"] != "test") for x in rows.values())
    # no identity (of the real video a file is made from) in both train and val
    _no_group_straddles(rows, want, ("train", "val"))
    assert all(rows[r]["source_id"] == w.group for r, w in want.items())
    assert _rows(build_manifest("celebdf", tmp_path, opts=opts), tmp_path) == rows


@pytest.mark.parametrize(
    ("line", "match"),
    [
        (
            "0 Celeb-real/id1_0000.mp4",
            r"List_of_testing_videos.txt:3: label 0 \(= fake\) contradicts the folder Celeb-real",
        ),
        ("2 Celeb-real/id1_0000.mp4", r"List_of_testing_videos.txt:3: unknown label '2'"),
        ("1 Celeb-real/id1_0099.mp4", r"List_of_testing_videos.txt:3: listed file is missing"),
        (
            "1 Other/id1_0000.mp4",
            r"List_of_testing_videos.txt:3: 'Other/id1_0000.mp4' is not in one of",
        ),
        (
            "1 Celeb-real/id0_0000.mp4",
            r"List_of_testing_videos.txt:3: Celeb-real/id0_0000.mp4 is listed twice",
        ),
    ],
)
def test_celebdf_bad_list_lines_name_file_and_line(tmp_path, line, match):
    make_celebdf(tmp_path)
    lst = tmp_path / "List_of_testing_videos.txt"
    lines = lst.read_text().splitlines()
    lst.write_text("\n".join([*lines[:2], line, *lines[2:]]) + "\n")
    with pytest.raises(InputError, match=match):
        build_manifest("celebdf", tmp_path)


def test_celebdf_skip_missing_and_bad_names(tmp_path):
    make_celebdf(tmp_path)
    (tmp_path / "Celeb-real/id0_0000.mp4").unlink()
    opts = AdapterOptions(skip_missing=True)
    rows = _rows(build_manifest("celebdf", tmp_path, opts=opts), tmp_path)
    assert opts.missing == ["Celeb-real/id0_0000.mp4"]
    assert "Celeb-real/id0_0000.mp4" not in rows
    touch(tmp_path / "Celeb-synthesis/id1-id2.mp4")
    with pytest.raises(InputError, match=r"id1-id2.mp4: file name does not follow"):
        build_manifest("celebdf", tmp_path, opts=AdapterOptions(skip_missing=True))


# ---- DFDC ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("nested", [False, True])
def test_dfdc_labels_test_set_and_val_by_original(tmp_path, nested, caplog):
    want = make_dfdc(tmp_path, nested=nested)
    with caplog.at_level(logging.WARNING, logger="dfprep.adapters.dfdc"):
        rows = _rows(build_manifest("dfdc", tmp_path), tmp_path)
    assert "no published validation set" in caplog.text
    _check(rows, want, "dfdc")
    train_side = {r: w for r, w in want.items() if w.split is None}
    groups = _no_group_straddles(rows, train_side, ("train", "val"))
    assert set(groups.values()) == {"train", "val"}
    assert all(
        rows[r]["split"] in ("train", "val") and rows[r]["split_derived"] for r in train_side
    )
    assert all(not rows[r]["split_derived"] for r, w in want.items() if w.split == "test")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda m: m.update({"p0real00.mp4": {"label": "MAYBE"}}),
            r"metadata.json: p0real00.mp4: unknown label 'MAYBE'",
        ),
        (lambda m: m["p0fake000.mp4"].pop("original"), r"p0fake000.mp4: FAKE without its original"),
        (
            lambda m: m.pop("p0fake010.mp4"),
            r"metadata.json: p0fake010.mp4 is in dfdc_train_part_0 but not in",
        ),
        (
            lambda m: m.update({"gone.mp4": {"label": "REAL", "split": "train"}}),
            r"metadata.json: gone.mp4: listed file is missing",
        ),
    ],
)
def test_dfdc_bad_metadata(tmp_path, edit, match):
    make_dfdc(tmp_path)
    meta_path = tmp_path / "dfdc_train_part_0/metadata.json"
    meta = json.loads(meta_path.read_text())
    edit(meta)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(InputError, match=match):
        build_manifest("dfdc", tmp_path)


def test_dfdc_labels_csv_errors_and_skip_missing(tmp_path):
    make_dfdc(tmp_path)
    labels = tmp_path / "test/labels.csv"
    good = labels.read_text()
    labels.write_text(good.replace("filename,label", "file,label"))
    with pytest.raises(InputError, match=r"labels.csv:1: missing column\(s\) filename"):
        build_manifest("dfdc", tmp_path)
    labels.write_text(good.replace("t002.mp4,0", "t002.mp4,FAKE"))
    with pytest.raises(InputError, match=r"labels.csv:4: unknown label 'FAKE'"):
        build_manifest("dfdc", tmp_path)
    labels.write_text(good)
    (tmp_path / "test/t001.mp4").unlink()
    (tmp_path / "dfdc_train_part_1/p1fake031.mp4").unlink()
    opts = AdapterOptions(skip_missing=True)
    rows = _rows(build_manifest("dfdc", tmp_path, opts=opts), tmp_path)
    assert sorted(opts.missing) == ["dfdc_train_part_1/p1fake031.mp4", "test/t001.mp4"]
    assert "test/t001.mp4" not in rows


def test_dfdc_published_validation_set(tmp_path, caplog):
    want = make_dfdc(tmp_path, validation=6)
    with caplog.at_level(logging.WARNING, logger="dfprep.adapters.dfdc"):
        rows = _rows(build_manifest("dfdc", tmp_path), tmp_path)
    assert not caplog.text
    _check(rows, want, "dfdc")
    assert {x["split"] for r, x in rows.items() if r.startswith("dfdc_train_part_")} == {"train"}
    assert {x["split"] for r, x in rows.items() if r.startswith("validation/")} == {"val"}
    assert not any(x["split_derived"] for x in rows.values())
    derived = _rows(
        build_manifest("dfdc", tmp_path, opts=AdapterOptions(options={"val": "derived"})), tmp_path
    )
    assert not any(r.startswith("validation/") for r in derived)
    assert {x["split"] for r, x in derived.items() if r.startswith("dfdc_train_part_")} == {
        "train",
        "val",
    }
    (tmp_path / "validation/labels.csv").rename(tmp_path / "validation/val_labels.csv")
    with pytest.raises(
        InputError, match=r"published validation set's labels are missing: .*validation/labels.csv"
    ):
        build_manifest("dfdc", tmp_path, opts=AdapterOptions(options={"val": "official"}))
    with pytest.raises(
        InputError, match=r"validation holds videos but not labels.csv: the validation set's labels"
    ):
        build_manifest(
            "dfdc", tmp_path
        )  # the videos are there, the labels file is not where expected
    opts = AdapterOptions(options={"val_labels": "validation/val_labels.csv"})
    assert _rows(build_manifest("dfdc", tmp_path, opts=opts), tmp_path).keys() == rows.keys()
    with pytest.raises(ConfigError, match="option val must be one of"):
        build_manifest("dfdc", tmp_path, opts=AdapterOptions(options={"val": "yes"}))


# ---- FakeAVCeleb -----------------------------------------------------------------------------------
KEEP_FA = AdapterOptions(options={"fake_audio": "keep"})


def test_fakeavceleb_quirky_metadata_labels_and_identity_splits(tmp_path):
    want = make_fakeavceleb(tmp_path)
    rows = _rows(build_manifest("fakeavceleb", tmp_path, opts=KEEP_FA), tmp_path)
    _check(rows, want, "fakeavceleb")
    names = Counter(Path(r).name for r in rows)
    assert max(names.values()) == 2  # repeated file names are distinct videos
    assert any(" (" in r for r in rows)
    groups = _no_group_straddles(rows, want)
    assert set(groups.values()) == {"train", "val", "test"}
    assert all(x["split_derived"] for x in rows.values())
    fake_audio = [r for r in rows if r.startswith("RealVideo-FakeAudio/")]
    assert fake_audio and all(rows[r]["label"] == 0 for r in fake_audio)


def test_fakeavceleb_fake_audio_option(tmp_path):
    want = make_fakeavceleb(tmp_path)
    keep = _rows(build_manifest("fakeavceleb", tmp_path, opts=KEEP_FA), tmp_path)
    fa = {r for r in want if r.startswith("RealVideo-FakeAudio/")}
    drop = _rows(
        build_manifest("fakeavceleb", tmp_path), tmp_path
    )  # the default: out of every split
    assert set(drop) == set(keep) - fa
    ev = _rows(
        build_manifest(
            "fakeavceleb", tmp_path, opts=AdapterOptions(options={"fake_audio": "exclude-eval"})
        ),
        tmp_path,
    )
    assert set(ev) == set(keep) - {r for r in fa if keep[r]["split"] != "train"}
    assert {r for r in fa if keep[r]["split"] == "train"} and {
        r for r in fa if keep[r]["split"] != "train"
    }
    assert all(ev[r]["split"] == keep[r]["split"] for r in ev)  # the split does not move
    with pytest.raises(ConfigError, match="fake_audio must be one of"):
        build_manifest("fakeavceleb", tmp_path, opts=AdapterOptions(options={"fake_audio": "drop"}))


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("source,target1", "identity,target1", r"meta_data.csv:1: missing column\(s\) source"),
        (",faceswap,C,", ",deepfake,C,", r"meta_data.csv:\d+: unknown method 'deepfake'"),
        (
            ",fsgan,C,",
            ",fsgan,D,",
            r"meta_data.csv:\d+: category 'D' does not match type FakeVideo-RealAudio",
        ),
        (",real,A,", ",real,B,", r"meta_data.csv:\d+: category 'B' does not match"),
        ("women,00001.mp4,", "women,00001.mp4,extra,", r"meta_data.csv:\d+: expected 10 values"),
        (
            ",FakeAVCeleb/RealVideo-RealAudio/African",
            ",RealVideo-RealAudio/African",
            r"does not start with 'FakeAVCeleb/'",
        ),
    ],
)
def test_fakeavceleb_bad_metadata(tmp_path, old, new, match):
    make_fakeavceleb(tmp_path)
    meta = tmp_path / "meta_data.csv"
    text = meta.read_text()
    assert old in text
    meta.write_text(text.replace(old, new, 1))
    with pytest.raises(InputError, match=match):
        build_manifest("fakeavceleb", tmp_path)


def test_fakeavceleb_missing_and_unlisted_files(tmp_path):
    want = make_fakeavceleb(tmp_path)
    gone = next(r for r in want if r.startswith("FakeVideo-FakeAudio/"))
    (tmp_path / gone).unlink()
    with pytest.raises(InputError, match=r"meta_data.csv:\d+: listed file is missing"):
        build_manifest("fakeavceleb", tmp_path)
    opts = AdapterOptions(skip_missing=True)
    assert gone not in _rows(build_manifest("fakeavceleb", tmp_path, opts=opts), tmp_path)
    assert opts.missing == [gone]
    touch(tmp_path / "FakeVideo-RealAudio/African/men/id00000/stray.mp4")
    with pytest.raises(InputError, match=r"stray.mp4 is on disk but not in the metadata"):
        build_manifest("fakeavceleb", tmp_path, opts=AdapterOptions(skip_missing=True))


def _flat(segments: list[dict]) -> list[float]:
    return [t for g in segments for t in (g["start"], g["end"])]


# ---- ForgeryNet ------------------------------------------------------------------------------------
def test_forgerynet_labels_categories_splits_and_segments(tmp_path):
    want, segs = make_forgerynet(tmp_path)
    rows = _rows(build_manifest("forgerynet", tmp_path), tmp_path)
    _check(rows, want, "forgerynet")
    assert {x["split"] for r, x in rows.items() if r.startswith("Training/")} == {"train", "val"}
    assert {x["split"] for r, x in rows.items() if r.startswith("Validation/")} == {"test"}
    assert all(x["split_derived"] == r.startswith("Training/") for r, x in rows.items())
    for rel, s in segs.items():
        got = rows[rel]["fake_segments"]
        if s is None:
            assert got is None, rel
        else:
            assert _flat(got) == pytest.approx([t for seg in s for t in seg]), rel


def test_forgerynet_fps_option_skips_probing(tmp_path):
    make_forgerynet(tmp_path)
    rel = "Training/video/train_video_release/4/p000/video.mp4"
    (tmp_path / rel).write_bytes(b"")  # no longer readable: the fps option must be used instead
    with pytest.raises(InputError, match=r"cannot read .*p000/video.mp4 for its frame rate"):
        build_manifest("forgerynet", tmp_path)
    rows = _rows(
        build_manifest("forgerynet", tmp_path, opts=AdapterOptions(options={"fps": "50"})), tmp_path
    )
    assert _flat(rows[rel]["fake_segments"]) == pytest.approx([0.2, 0.3, 0.4, 0.6])


@pytest.mark.parametrize(
    ("line", "match"),
    [
        (
            "2 train_video_release/1/x/video.mp4 0 10 1 1 1 1",
            r"video_list.txt:13: 2 segment\(s\) need 11 fields, got 8",
        ),
        (
            "1 train_video_release/1/x/video.mp4 0 10 maybe 1 1 1",
            r"video_list.txt:13: segment 1 flag 'maybe'",
        ),
        ("1 train_video_release/1/x/video.mp4 0 10 1 1 0 1", r"video_list.txt:13: labels disagree"),
        (
            "1 train_video_release/1/x/video.mp4 0 10 1 0 0 0",
            r"video_list.txt:13: a real video \(binary 0\) with a fake segment",
        ),
        (
            "2 train_video_release/1/x/video.mp4 0 10 1 5 10 0 1 1 1",
            r"video_list.txt:13: segments overlap at frame 5",
        ),
        (
            "1 train_video_release/1/x/video.mp4 0 10 1 1 2 1",
            r"video_list.txt:13: 16-class 1 has triple label 2, but 1 on line",
        ),
        (
            "1 train_video_release/1/x/video.mp4 0 10 1 1 3 1",
            r"video_list.txt:13: labels out of range",
        ),
        (
            "1 train_video_release/1/x/video.mp4 0 10 1 1 1 1",
            r"video_list.txt:13: listed file is missing",
        ),
    ],
)
def test_forgerynet_bad_lines(tmp_path, line, match):
    make_forgerynet(tmp_path)
    lst = tmp_path / "Training/video_list.txt"
    lines = lst.read_text().splitlines()
    lst.write_text("\n".join([*lines[:12], line, *lines[12:]]) + "\n")
    with pytest.raises(InputError, match=match):
        build_manifest("forgerynet", tmp_path)


# ---- DF40 ------------------------------------------------------------------------------------------
ALL_DOMAINS = {"domain": "all"}


def test_df40_frames_reals_and_out_of_scope(tmp_path, caplog):
    want = make_df40(tmp_path)
    with caplog.at_level(logging.INFO, logger="dfprep.adapters.df40"):
        rows = _rows(
            build_manifest("df40", tmp_path, opts=AdapterOptions(options=ALL_DOMAINS)), tmp_path
        )
    _check(rows, want, "df40")
    assert "StyleGAN2" in caplog.text
    assert all(x["split"] == "test" and not x["split_derived"] for x in rows.values())
    for rel, x in rows.items():
        assert (x["kind"], x["frame_stride"]) == (
            ("video", 1) if rel.endswith(".mp4") else ("frames", 1)
        ), rel
    stride = _rows(
        build_manifest(
            "df40", tmp_path, opts=AdapterOptions(options={"frame_stride": "4", **ALL_DOMAINS})
        ),
        tmp_path,
    )
    assert {x["frame_stride"] for r, x in stride.items() if x["kind"] == "frames"} == {4}
    # the same FF-style folder name under several methods stays several videos
    assert sum(r.endswith("/frames/953_974") for r in rows) == 3


def test_df40_reals_are_required_unless_disabled(tmp_path):
    want = make_df40(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "Celeb-DF-v2")
    with pytest.raises(
        InputError, match=r"CDF-domain fakes need the Celeb-DF test reals under .*Celeb-DF-v2"
    ):
        build_manifest("df40", tmp_path)
    rows = _rows(
        build_manifest(
            "df40", tmp_path, opts=AdapterOptions(options={"reals": "none", **ALL_DOMAINS})
        ),
        tmp_path,
    )
    assert set(rows) == {r for r, w in want.items() if r.startswith("DF40/")}
    shutil.rmtree(tmp_path / "FaceForensics++/original_sequences/youtube/c23/frames/012")
    with pytest.raises(InputError, match=r"test.json: 012: listed file is missing"):
        build_manifest("df40", tmp_path, opts=AdapterOptions(options={"domain": "ff"}))


def test_df40_one_domain_each_with_its_own_reals(tmp_path, caplog):
    want = make_df40(tmp_path)
    by_domain = {}
    for domain in ("cdf", "ff", "own"):
        with caplog.at_level(logging.INFO, logger="dfprep.adapters.df40"):
            by_domain[domain] = _rows(
                build_manifest("df40", tmp_path, opts=AdapterOptions(options={"domain": domain})),
                tmp_path,
            )
    cdf, ff, own = by_domain["cdf"], by_domain["ff"], by_domain["own"]
    assert set(cdf) == {
        r for r in want if "/cdf/" in r or r.startswith("Celeb-DF-v2/")
    }  # the default
    assert set(_rows(build_manifest("df40", tmp_path), tmp_path)) == set(cdf)
    assert set(ff) == {r for r in want if "/ff/" in r or r.startswith("FaceForensics++/")}
    assert set(own) == {r for r in want if r.startswith("DF40/heygen/")}
    assert set(cdf) | set(ff) | set(own) == set(want) and not (set(cdf) & set(ff))
    assert "method(s) have no cdf domain and were left out: MRAA, fomm, heygen" in caplog.text
    with pytest.raises(ConfigError, match="option domain must be one of cdf, ff, own, all"):
        build_manifest("df40", tmp_path, opts=AdapterOptions(options={"domain": "celebdf"}))


def test_df40_unknown_method_folder(tmp_path):
    make_df40(tmp_path)
    (tmp_path / "DF40/newswap/ff/frames/000").mkdir(parents=True)
    with pytest.raises(InputError, match=r"unknown method folder .*newswap"):
        build_manifest("df40", tmp_path)


# ---- WildDeepfake ----------------------------------------------------------------------------------
def test_wilddeepfake_sequences_labels_splits_stride(tmp_path):
    """Evaluated whole by default (Table 2: every sequence is test data); split=official keeps
    the published *_train / *_test folders."""
    want = make_wilddeepfake(tmp_path)
    rows = _rows(build_manifest("wilddeepfake", tmp_path), tmp_path)
    _check(rows, {rel: replace(w, split="test") for rel, w in want.items()}, "wilddeepfake")
    assert all(
        (x["kind"], x["frame_stride"], x["split_derived"]) == ("frames", 10, False)
        for x in rows.values()
    )
    official = AdapterOptions(options={"split": "official"})
    rows = _rows(build_manifest("wilddeepfake", tmp_path, opts=official), tmp_path)
    _check(rows, want, "wilddeepfake")
    assert {r["split"] for r in rows.values()} == {"train", "test"}
    _no_group_straddles(rows, want)
    with pytest.raises(ConfigError, match="option split must be one of test, official"):
        build_manifest("wilddeepfake", tmp_path, opts=AdapterOptions(options={"split": "train"}))


def test_wilddeepfake_unextracted_archive_and_label_mismatch(tmp_path):
    make_wilddeepfake(tmp_path)
    touch(tmp_path / "fake_test/8.tar.gz")
    with pytest.raises(InputError, match=r"fake_test/8.tar.gz is not extracted; .*tar -xzf"):
        build_manifest("wilddeepfake", tmp_path)
    opts = AdapterOptions(skip_missing=True)
    build_manifest("wilddeepfake", tmp_path, opts=opts)
    assert opts.missing == ["fake_test/8"]
    touch(tmp_path / "real_test/5/fake/9/000.png")
    with pytest.raises(
        InputError, match=r"real_test/5/fake/9 is a fake sequence inside real_test/"
    ):
        build_manifest("wilddeepfake", tmp_path, opts=AdapterOptions(skip_missing=True))


# ---- Deepfake-Eval-2024 ----------------------------------------------------------------------------
def test_dfeval2024_labels_splits_and_dropped_rows(tmp_path, caplog):
    want, dropped = make_dfeval2024(tmp_path)
    with caplog.at_level(logging.WARNING, logger="dfprep.adapters.dfeval2024"):
        rows = _rows(
            build_manifest(
                "dfeval2024", tmp_path, opts=AdapterOptions(options={"split": "finetuning"})
            ),
            tmp_path,
        )
    _check(rows, want, "dfeval2024")
    assert f"{dropped} video(s) with an empty or unknown Video Ground Truth" in caplog.text
    assert {x["split"] for x in rows.values()} == {"train", "test"}
    every = _rows(
        build_manifest("dfeval2024", tmp_path), tmp_path
    )  # the default: every labelled video
    assert set(every) == set(rows) and {x["split"] for x in every.values()} == {"test"}


def test_dfeval2024_errors(tmp_path):
    make_dfeval2024(tmp_path)
    meta = tmp_path / "video-metadata-publish.csv"
    good = meta.read_text()
    meta.write_text(good.replace("Video Ground Truth", "Ground Truth"))
    with pytest.raises(
        InputError, match=r"video-metadata-publish.csv:1: missing column\(s\) Video Ground Truth"
    ):
        build_manifest("dfeval2024", tmp_path)
    meta.write_text(good.replace(",Real,", ",Deepfake,", 1))
    with pytest.raises(
        InputError, match=r"video-metadata-publish.csv:2: unknown Video Ground Truth 'Deepfake'"
    ):
        build_manifest("dfeval2024", tmp_path)
    meta.write_text(good)
    (tmp_path / "video-data/0001a9c2.mp4").unlink()
    with pytest.raises(InputError, match=r"video-metadata-publish.csv:3: listed file is missing"):
        build_manifest("dfeval2024", tmp_path)
    opts = AdapterOptions(skip_missing=True)
    build_manifest("dfeval2024", tmp_path, opts=opts)
    assert opts.missing == ["video-data/0001a9c2.mp4"]


def test_forgerynet_list_elsewhere_and_unfindable_videos(tmp_path):
    want, _ = make_forgerynet(tmp_path)
    (tmp_path / "lists").mkdir()
    (tmp_path / "Training/video_list.txt").rename(tmp_path / "lists/train.txt")
    opts = AdapterOptions(options={"train_list": "lists/train.txt"})
    assert set(_rows(build_manifest("forgerynet", tmp_path, opts=opts), tmp_path)) == set(want)
    (tmp_path / "Training/video").rename(tmp_path / "Training/videos")
    with pytest.raises(
        InputError, match=r"train.txt:1: cannot find train_video_release/ in any of"
    ):
        build_manifest("forgerynet", tmp_path, opts=opts)


def test_fakeavceleb_duplicate_rows(tmp_path):
    want = make_fakeavceleb(tmp_path, n_ids=4)
    meta = tmp_path / "meta_data.csv"
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join([*lines, lines[3]]) + "\n")  # the same row again: one video
    assert set(_rows(build_manifest("fakeavceleb", tmp_path, opts=KEEP_FA), tmp_path)) == set(want)
    meta.write_text("\n".join([*lines, lines[3].replace(",faceswap,", ",fsgan,")]) + "\n")
    with pytest.raises(
        InputError, match=r"meta_data.csv:30: .* already listed differently on line 4"
    ):
        build_manifest("fakeavceleb", tmp_path)
