"""A fake's crops come from the face that was manipulated (planning, scores, selection,
fallbacks, masks, reused boxes, byte identity where nothing is paired, the report's sheet), in
the training splits; the test split is label-blind (never paired, every face)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dfprep import pairing
from dfprep.adapters import VideoRow
from dfprep.balance.report import DROPPED_SHEET, run_report
from dfprep.config import Params, replace
from dfprep.core.errors import InputError
from dfprep.extract import plan_jobs, run_extract
from dfprep.manifest import rows_to_table, write_manifest
from dfprep.pairing.scores import (
    Reference,
    alignment_problem,
    diff_scores,
    mask_scores,
    ssim_scores,
)
from dfprep.verify import verify_output
from test_extract import _digests, _samples
from two_faces import side_of, write_mask, write_pair

# ---- planning (pure) -------------------------------------------------------------------------


def _row(vid: str, label: int, original: str = "") -> dict:
    return {"video_id": vid, "label": label, "original_id": original}


def test_groups_put_each_original_before_its_fakes_and_order_by_smallest_id():
    rows = sorted(
        [
            _row("a-fake1", 1, "z-real"),
            _row("a-fake2", 1, "z-real"),
            _row("b-alone", 1),
            _row("c-lost", 1, "nowhere"),
            _row("z-real", 0),
            _row("y-real", 0),
        ],
        key=lambda r: r["video_id"],
    )
    ids = [[r["video_id"] for r in g] for g in pairing.groups(rows)]
    assert ids == [["z-real", "a-fake1", "a-fake2"], ["b-alone"], ["c-lost"], ["y-real"]]
    assert pairing.groups(rows, "off") == [[r] for r in rows]


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_pack_keeps_groups_whole_and_singletons_give_the_old_chunks(n):
    singles = [[_row(f"v{i}", 0)] for i in range(7)]
    flat = [g[0] for g in singles]
    assert pairing.pack(singles, n) == [flat[i : i + n] for i in range(0, 7, n)]
    groups = [[_row("o", 0), _row("f1", 1, "o"), _row("f2", 1, "o")], [_row("x", 0)]]
    jobs = pairing.pack(groups, n)
    assert [r["video_id"] for j in jobs for r in j] == ["o", "f1", "f2", "x"]
    home = {r["video_id"]: k for k, j in enumerate(jobs) for r in j}
    assert home["o"] == home["f1"] == home["f2"]  # the group is never cut
    if n < 3:  # a group larger than n: a job of its own
        assert jobs[home["o"]] == groups[0]
    assert all(len(j) <= max(n, 3) for j in jobs)


def test_original_positions_name_only_pairs_inside_the_job():
    job = (_row("o", 0), _row("f", 1, "o"), _row("g", 1, "elsewhere"), _row("h", 1))
    assert pairing.original_positions(job, "auto") == {1: 0}
    assert pairing.original_positions(job, "off") == {}


# ---- scores (pure) ---------------------------------------------------------------------------


def test_a_changed_face_scores_high_an_unchanged_one_and_reencode_noise_low():
    rng = np.random.default_rng(0)
    orig = rng.integers(0, 255, (90, 160), dtype=np.uint8)
    noise = np.clip(orig + rng.normal(0, 3, orig.shape), 0, 255).astype(np.uint8)  # re-encode
    fake = noise.copy()
    fake[10:50, 100:140] = rng.integers(0, 255, (40, 40), dtype=np.uint8)  # the swapped face
    boxes = [(100, 10, 140, 50), (10, 20, 50, 60)]
    swapped, untouched = diff_scores(fake, orig, boxes, floor=1.0)
    assert swapped > 10 and 0.7 < untouched < 1.3
    assert max(diff_scores(noise, orig, boxes, floor=1.0)) < 1.3  # noise alone: about 1
    # a still, noiseless frame: the floor keeps a tiny change from scoring as a swap
    assert diff_scores(orig, orig, boxes, floor=1.0) == [0.0, 0.0]
    swapped, untouched = ssim_scores(fake, orig, boxes, floor=1.0)  # the other measure agrees
    assert swapped > 3 and untouched < 1.3  # (noise below the floor here: untouched ~0.1)
    assert max(ssim_scores(noise, orig, boxes, floor=1.0)) < 1.3
    mask = np.zeros((90, 160), np.uint8)
    mask[10:50, 100:140] = 255
    assert mask_scores(mask, boxes) == [1.0, 0.0]


def test_alignment_problems_name_the_difference():
    ref = Reference("o", fps=25.0, duration=4.0)
    assert alignment_problem(25.0, 4.1, ref, 0.01, 0.5) == ""
    assert "frame rate" in alignment_problem(30.0, 4.0, ref, 0.01, 0.5)
    assert "duration" in alignment_problem(25.0, 6.0, ref, 0.01, 0.5)


# ---- end to end ------------------------------------------------------------------------------


def _table(root: Path, videos: list[tuple[str, int, str, str]], split: str = "train") -> pa.Table:
    """videos: (relative path, label, original's relative path or "", mask path or "").
    Pairing is for the training splits: the test split is never paired (see the label-blind
    tests below)."""
    rows = [
        VideoRow(rel, split, label, "m" if label else "real", "FS" if label else "real")
        for rel, label, _, _ in videos
    ]
    table = rows_to_table("t", root, rows)
    t = table.to_pylist()
    rel_of = {r["path"]: Path(r["path"]).relative_to(root).with_suffix("").as_posix() for r in t}
    ids = {rel_of[r["path"]]: r["video_id"] for r in t}
    spec = {Path(rel).with_suffix("").as_posix(): (orig, mask) for rel, _, orig, mask in videos}
    for r in t:
        orig, mask = spec[rel_of[r["path"]]]
        r["original_id"] = ids.get(orig, orig and "t-" + orig.replace("/", "-"))
        r["mask_path"] = mask
    return pa.Table.from_pylist(t, schema=table.schema)


def _params(select="auto", per_shard=64, **pair) -> Params:
    p = Params()
    return replace(
        p,
        run=replace(p.run, scheduler="inline"),
        shard=replace(p.shard, videos_per_shard=per_shard),
        detect=replace(p.detect, real_max_faces=0),  # every face of a real video: all real
        pair=replace(p.pair, select=select, **pair),
    )


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("pairs")
    v = root / "v"
    truth = {
        "a": write_pair(v, "a", swap="right", seed=0),  # the smaller face is the swapped one
        "b": write_pair(v, "b", swap="left", seed=1),  # the larger one
        "c": write_pair(v, "c", swap=None, seed=2),  # a re-encode: no face changed
        "s": write_pair(v, "s", swap="left", seed=3, people=1),  # one person
    }
    write_pair(v, "s0", swap=None, seed=5, people=1)  # one person, nothing changed
    write_pair(v, "fps", swap="right", seed=4, fps=10, original=False)  # a fake at another rate
    write_mask(v / "mask" / "a.mp4", truth["a"], side=1)
    names = ("a", "b", "c", "s", "s0")
    pairs = [(f"real/{n}.mp4", 0, "", "") for n in names]
    pairs += [(f"fake/{n}.mp4", 1, f"real/{n}", "") for n in names]
    m = write_manifest(_table(v, pairs), root / "pairs.parquet")
    m_unpaired = write_manifest(
        _table(v, [(r, lab, "", "") for r, lab, _, _ in pairs]), root / "unpaired.parquet"
    )
    (v / "real" / "bad.mp4").write_bytes(b"\0" * 64)
    odd = [
        ("real/a.mp4", 0, "", ""),
        ("fake/a.mp4", 1, "real/missing", ""),  # its original is not in the manifest
        ("fake/fps.mp4", 1, "real/a", ""),  # 10 fps against a 5 fps original
        ("real/bad.mp4", 0, "", ""),
        ("fake/b.mp4", 1, "real/bad", ""),  # its original does not decode
        ("fake/c.mp4", 1, "real/gone", str(v / "mask" / "a.mp4")),  # no original: its mask
    ]
    m_odd = write_manifest(_table(v, odd), root / "odd.parquet")
    return {"root": root, "m": m, "unpaired": m_unpaired, "odd": m_odd, "truth": truth}


def _index(out: Path) -> list[dict]:
    return [
        r
        for f in sorted((out / "meta").glob("*.index.parquet"))
        for r in pq.read_table(f).to_pylist()
    ]


def _videos(out: Path) -> dict[str, dict]:
    return {
        r["video_id"]: r
        for f in sorted((out / "meta").glob("*.videos.parquet"))
        for r in pq.read_table(f).to_pylist()
    }


@pytest.fixture(scope="module")
def runs(scenes, tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("runs")
    return {
        sel: (run_extract([scenes["m"]], base / sel, _params(sel)), base / sel)
        for sel in ("auto", "off")
    }


def test_the_manipulated_face_is_cropped_even_when_it_is_the_smaller_one(runs):
    _, out = runs["auto"]
    _, largest = runs["off"]
    crops = [r for r in _index(out) if r["label"] == 1]
    sides = {
        vid: {side_of(r["bbox"], None) for r in crops if r["video_id"] == vid}
        for vid in ("t-fake-a", "t-fake-b")
    }
    assert sides == {"t-fake-a": {1}, "t-fake-b": {0}}
    # the largest-face rule crops the larger face of fake a: the pristine one
    assert {side_of(r["bbox"], None) for r in _index(largest) if r["video_id"] == "t-fake-a"} == {0}
    assert all(r["manip_score"] >= 2.0 for r in crops)
    samples = _samples(out)
    assert all("manip_score" in json.loads(samples[r["key"]]["json"]) for r in crops)
    v = _videos(out)
    assert v["t-fake-a"]["pairing"] == "diff" and v["t-fake-a"]["faces_dropped"] == 2
    assert v["t-fake-a"]["original_id"] == "t-real-a"


def test_a_fake_in_which_no_face_differs_gives_no_crop(runs):
    _, out = runs["auto"]
    v = _videos(out)["t-fake-c"]
    assert (v["crops"], v["status"], v["faces_dropped"], v["pairing"]) == (0, "no_face", 4, "diff")


def test_real_crops_and_single_person_fakes_are_those_of_the_largest_face_rule(runs):
    (_, out), (_, largest) = runs["auto"], runs["off"]
    ours, theirs = _samples(out), _samples(largest)
    reals = {k for k, m in theirs.items() if m["cls"] == b"0"}
    assert reals and {k for k, m in ours.items() if m["cls"] == b"0"} == reals
    assert all(ours[k] == theirs[k] for k in reals)  # every member, byte for byte
    single = [k for k in theirs if k.startswith("t-fake-s_")]
    assert single and all(ours[k]["jpg"] == theirs[k]["jpg"] for k in single)
    assert all(r["manip_score"] is None for r in _index(out) if r["label"] == 0)


def test_one_person_fakes_keep_their_largest_face_when_it_differs(runs):
    (_, out), (_, largest) = runs["auto"], runs["off"]
    v = _videos(out)
    assert v["t-fake-s"]["faces_dropped"] == 0 and v["t-fake-s"]["pairing"] == "diff"
    ours = {r["key"]: r for r in _index(out) if r["video_id"] == "t-fake-s"}
    assert set(ours) == {r["key"] for r in _index(largest) if r["video_id"] == "t-fake-s"}
    assert all(r["manip_score"] is not None for r in ours.values())
    # one person whose face never differs (a re-encode): not manipulated, no crop
    assert (v["t-fake-s0"]["crops"], v["t-fake-s0"]["faces_dropped"]) == (0, 2)


def test_unpaired_manifests_give_the_same_jobs_and_bytes_either_way(scenes, tmp_path):
    n = 3
    rows = sorted(pq.read_table(scenes["unpaired"]).to_pylist(), key=lambda r: r["video_id"])
    expected = [
        (f"unpaired-{i // n:06d}", [r["video_id"] for r in rows[i : i + n]])
        for i in range(0, len(rows), n)
    ]
    for m, sel in ((scenes["unpaired"], "auto"), (scenes["unpaired"], "off")):
        jobs = plan_jobs([m], tmp_path, _params(sel, n).extract)
        assert [(j.name, [r["video_id"] for r in j.videos]) for j in jobs] == expected
    paired_off = plan_jobs([scenes["m"]], tmp_path, _params("off", n).extract)
    assert [[r["video_id"] for r in j.videos] for j in paired_off] == [
        sorted(r["video_id"] for r in pq.read_table(scenes["m"]).to_pylist())[i : i + n]
        for i in range(0, 10, n)
    ]
    a = run_extract([scenes["unpaired"]], tmp_path / "auto", _params("auto", n))
    b = run_extract([scenes["unpaired"]], tmp_path / "off", _params("off", n))
    assert a.crops == b.crops > 0 and _digests(tmp_path / "auto") == _digests(tmp_path / "off")


def test_paired_jobs_keep_each_fake_with_its_original(scenes, tmp_path):
    jobs = plan_jobs([scenes["m"]], tmp_path, _params("auto", 3).extract)
    for j in jobs:
        ids = {r["video_id"] for r in j.videos}
        assert all(r["original_id"] in ids for r in j.videos if r["label"] == 1)
    assert max(len(j.videos) for j in jobs) <= 3


def test_fallbacks_say_why_and_keep_the_largest_face_rule(scenes, tmp_path):
    s = run_extract([scenes["odd"]], tmp_path / "auto", _params("auto"))
    run_extract([scenes["odd"]], tmp_path / "off", _params("off"))
    v, largest = _videos(tmp_path / "auto"), _videos(tmp_path / "off")
    assert v["t-fake-a"]["pairing"] == "fallback: original t-real-missing not in this manifest"
    assert v["t-fake-fps"]["pairing"].startswith(
        "fallback: frame rate 10.000 vs the original's 5.000"
    )
    assert v["t-fake-b"]["pairing"].startswith("fallback: original failed: ")
    for vid in ("t-fake-a", "t-fake-fps", "t-fake-b"):
        assert v[vid]["crops"] == largest[vid]["crops"] > 0 and v[vid]["faces_dropped"] == 0
    assert s.pairing_fallbacks and sum(s.pairing_fallbacks.values()) == 3
    # no original but a mask: the mask decides (fake c's "manipulated" region: a's right face)
    assert v["t-fake-c"]["pairing"] == "mask"
    crops = [r for r in _index(tmp_path / "auto") if r["video_id"] == "t-fake-c"]
    assert crops and {side_of(r["bbox"], None) for r in crops} == {1}
    assert all(r["manip_score"] >= 0.2 for r in crops)


def test_mask_source_selects_the_masked_face(scenes, tmp_path):
    root = scenes["root"] / "v"
    m = write_manifest(
        _table(
            root, [("fake/a.mp4", 1, "", str(root / "mask" / "a.mp4")), ("fake/b.mp4", 1, "", "")]
        ),
        tmp_path / "mask.parquet",
    )
    run_extract([m], tmp_path / "o", _params("mask"))
    v = _videos(tmp_path / "o")
    assert v["t-fake-a"]["pairing"] == "mask" and v["t-fake-a"]["faces_dropped"] == 2
    assert {
        side_of(r["bbox"], None) for r in _index(tmp_path / "o") if r["video_id"] == "t-fake-a"
    } == {1}
    assert v["t-fake-b"]["pairing"] == ""  # neither mask nor original: the largest-face rule


def test_reused_boxes_are_the_originals_at_the_same_time(scenes, tmp_path):
    run_extract([scenes["m"]], tmp_path / "o", _params("auto", reuse_original_boxes=True))
    rows = _index(tmp_path / "o")
    orig = {
        (r["sample_index"], side_of(r["bbox"], None)): r["bbox"]
        for r in rows
        if r["video_id"] == "t-real-a"
    }
    fake = [r for r in rows if r["video_id"] == "t-fake-a"]
    assert fake and all(r["bbox"] == orig[(r["sample_index"], 1)] for r in fake)
    assert all(r["manip_score"] >= 2.0 for r in fake)


def test_report_shows_the_dropped_faces_and_verify_counts_them(runs, scenes, tmp_path):
    s, out = runs["auto"]
    assert s.faces_dropped == 2 + 2 + 4 + 2 and s.paired == 5
    r = verify_output(out, [scenes["m"]])
    assert r.ok, r.problems
    assert r.counts["faces_dropped"] == s.faces_dropped and r.counts["paired"] == 5
    rep = run_report([out], tmp_path / "rep", Params().report)
    assert (tmp_path / "rep" / DROPPED_SHEET).exists() and rep.dropped == s.faces_dropped
    assert "Faces dropped as unmanipulated" in (tmp_path / "rep" / "report.md").read_text()
    rep_off = run_report([runs["off"][1]], tmp_path / "rep-off", Params().report)
    assert rep_off.dropped == 0 and not (tmp_path / "rep-off" / DROPPED_SHEET).exists()


def test_shards_written_before_pairing_are_still_read(runs, scenes, tmp_path):
    """Older indexes and video tables lack the later columns (manip_score, pairing,
    faces_dropped; faces_in_frame, pts_time, max_faces_in_frame, multi_face_share, flags):
    readers, verify and the report cope."""
    import shutil

    from dfprep.schema import LATER_COLUMNS
    from dfprep.shards import read_dropped, read_extract_shards

    old = tmp_path / "old"
    shutil.copytree(runs["off"][1], old)
    for f in (old / "meta").glob("*.parquet"):
        t = pq.read_table(f)
        pq.write_table(t.select([c for c in t.column_names if c not in LATER_COLUMNS]), f)
    assert "faces_in_frame" in LATER_COLUMNS and "flags" in LATER_COLUMNS
    shards, _ = read_extract_shards(old)
    assert sum(len(s.index) for s in shards) == runs["off"][0].crops
    assert all(v is None for s in shards for v in s.videos["flags"].to_pylist())
    assert read_dropped(old)[1] == 0
    r = verify_output(old, [scenes["m"]])
    assert r.ok, r.problems
    rep = run_report([old], tmp_path / "rep", Params().report)
    assert "## Videos to check" in rep.markdown.read_text()


# ---- the test split is label-blind: never paired, every face ---------------------------------


def test_test_rows_are_never_grouped_nor_compared():
    rows = [
        {**_row("a-fake", 1, "z-real"), "split": "test"},
        {**_row("b-fake", 1, "y-real"), "split": "train"},
        {**_row("c-fake", 1, "z-real"), "split": "train"},  # a test original is never lent
        {**_row("y-real", 0), "split": "train"},
        {**_row("z-real", 0), "split": "test"},
    ]
    ids = [[r["video_id"] for r in g] for g in pairing.groups(rows)]
    assert ids == [["a-fake"], ["y-real", "b-fake"], ["c-fake"], ["z-real"]]
    assert [pairing.wants_original(r, "auto") for r in rows[:3]] == [False, True, True]
    assert pairing.original_positions(rows, "auto") == {1: 3}
    p = Params()
    cfg = replace(p.detect, max_faces=1, real_max_faces=3, test_max_faces=0)
    ex = replace(p.extract, detect=cfg)
    from dfprep.pairing.select import face_limit

    assert [face_limit(r, ex) for r in rows] == [0, 1, 1, 3, 0]  # test: one rule, any label


def _test_split(scenes, root: Path, *, keep_pairs: bool) -> Path:
    """The scenes' videos all in the test split, with their originals and a mask, or without."""
    v = scenes["root"] / "v"
    names = ("a", "b", "c", "s", "s0")
    videos = [(f"real/{n}.mp4", 0, "", "") for n in names]
    videos += [
        (f"fake/{n}.mp4", 1, f"real/{n}", str(v / "mask" / "a.mp4") if n == "a" else "")
        for n in names
    ]
    if not keep_pairs:
        videos = [(rel, lab, "", "") for rel, lab, _, _ in videos]
    name = "paired" if keep_pairs else "bare"
    return write_manifest(_table(v, videos, "test"), root / name / "ffpp.parquet")


def test_a_test_split_gives_the_same_bytes_with_or_without_originals_and_masks(scenes, tmp_path):
    """Nothing a detector would not know on an unseen video changes what is scored."""
    paired = _test_split(scenes, tmp_path, keep_pairs=True)
    bare = _test_split(scenes, tmp_path, keep_pairs=False)
    assert sum(bool(r["original_id"]) for r in pq.read_table(paired).to_pylist()) == 5
    for n in (3, 64):
        jobs = [plan_jobs([m], tmp_path, _params("auto", n).extract) for m in (paired, bare)]
        assert [[r["video_id"] for r in j.videos] for j in jobs[0]] == [
            [r["video_id"] for r in j.videos] for j in jobs[1]
        ]
    for m, out in ((paired, "p"), (bare, "b")):
        s = run_extract([m], tmp_path / out, _params("auto", 3))
        assert s.paired == 0 and s.faces_dropped == 0 and not s.pairing_fallbacks
    crops = {k: v for k, v in _digests(tmp_path / "p").items() if not k.endswith("videos.parquet")}
    assert crops == {k: v for k, v in _digests(tmp_path / "b").items() if k in crops}
    assert sum(k.endswith(".tar") for k in crops) == 4
    assert {r["pairing"] for r in _videos(tmp_path / "p").values()} == {""}
    # the fake in which no face differs is scored like any other video (the training split
    # drops it: see test_a_fake_in_which_no_face_differs_gives_no_crop)
    assert _videos(tmp_path / "p")["t-fake-c"]["crops"] > 0


def test_a_two_person_test_video_gives_a_crop_of_each_face(scenes, tmp_path):
    m = _test_split(scenes, tmp_path, keep_pairs=True)
    run_extract([m], tmp_path / "all", _params("auto"))
    p = _params("auto")
    run_extract([m], tmp_path / "one", replace(p, detect=replace(p.detect, test_max_faces=1)))
    for vid in ("t-real-a", "t-fake-a", "t-fake-b"):
        rows = [r for r in _index(tmp_path / "all") if r["video_id"] == vid]
        per_frame: dict[int, set] = {}
        for r in rows:
            per_frame.setdefault(r["sample_index"], set()).add(side_of(r["bbox"], None))
        assert per_frame and all(sides == {0, 1} for sides in per_frame.values()), vid
        assert {r["face_index"] for r in rows} == {0, 1}
        one = [r for r in _index(tmp_path / "one") if r["video_id"] == vid]
        assert len(one) == len(per_frame)  # test_max_faces 1: the largest face per frame
        assert {side_of(r["bbox"], None) for r in one} == {0}  # the left face is the larger


def test_a_train_split_fake_keeps_its_pairing_beside_a_test_split(scenes, tmp_path):
    v = scenes["root"] / "v"
    rows = _table(v, [("real/a.mp4", 0, "", ""), ("fake/a.mp4", 1, "real/a", "")]).to_pylist()
    rows += _table(
        v, [("real/b.mp4", 0, "", ""), ("fake/b.mp4", 1, "real/b", "")], "test"
    ).to_pylist()
    m = write_manifest(
        pa.Table.from_pylist(rows, schema=_table(v, []).schema), tmp_path / "m.parquet"
    )
    s = run_extract([m], tmp_path / "o", _params("auto"))
    v = _videos(tmp_path / "o")
    assert (v["t-fake-a"]["pairing"], v["t-fake-b"]["pairing"]) == ("diff", "")
    assert s.paired == 1
    crops = _index(tmp_path / "o")
    assert {side_of(r["bbox"], None) for r in crops if r["video_id"] == "t-fake-a"} == {1}
    assert {side_of(r["bbox"], None) for r in crops if r["video_id"] == "t-fake-b"} == {0, 1}


def test_paired_test_videos_of_an_older_extract_are_refused(runs, scenes, tmp_path):
    """An extract made before the test split became label-blind: verify names it, eval refuses."""
    import shutil

    from dftrain.testset import read_test_set

    old = tmp_path / "old"
    shutil.copytree(runs["auto"][1], old)
    for f in (old / "meta").glob("*.videos.parquet"):
        t = pq.read_table(f)
        pq.write_table(t.set_column(t.schema.get_field_index("split"), "split",
                                    pa.array(["test"] * len(t))), f)  # fmt: skip
    r = verify_output(old)
    assert any("test video 't-fake-a' was cropped against its original" in p for p in r.problems)
    with pytest.raises(InputError, match=r"test video 't-fake-a' was cropped against its original"):
        read_test_set([old], "test")
    assert read_test_set([runs["auto"][1]], "train").videos.num_rows == 10  # not the test split


# ---- on the sample dataset (dfprep synth's two-person scenes and its ground truth) ---------


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    from dfprep.config import SynthConfig
    from dfprep.synth import synth_ffpp

    root = tmp_path_factory.mktemp("sample")
    synth_ffpp(root, SynthConfig(originals=2, multi_person=2, seconds=1.6, sizes=("640x360",)))
    return root


def test_on_the_sample_fake_crops_come_from_the_manipulated_face(sample, tmp_path):
    """The pairing targets on a small sample: the share of fake crops whose face was manipulated
    (ground truth) from the largest-face rule's to 100 %, no real crop lost, single-person crops
    unchanged."""
    from dfprep.bench.pairing import all_train, by_video_id, manipulated
    from dfprep.manifest import build_manifest
    from dfprep.synth.truth import is_multi_person, load_truth

    truth = by_video_id(load_truth(sample))
    m = write_manifest(all_train(build_manifest("ffpp", sample)), tmp_path / "ffpp.parquet")
    assert sum(bool(r["original_id"]) for r in pq.read_table(m).to_pylist()) == 16
    share, reals, single = {}, {}, {}
    for sel in ("off", "auto", "mask"):
        p = _params(sel)
        p = replace(p, detect=replace(p.detect, real_max_faces=-1))
        run_extract([m], tmp_path / sel, p)
        rows = _index(tmp_path / sel)
        fakes = [r for r in rows if r["label"] == 1]
        share[sel] = sum(manipulated(truth, r) for r in fakes) / len(fakes)
        reals[sel] = sorted(r["key"] for r in rows if r["label"] == 0)
        multi = {v for v, e in truth.items() if is_multi_person(e)}
        keys = {r["key"] for r in fakes if r["video_id"] not in multi}
        jpgs = _samples(tmp_path / sel)
        single[sel] = {k: jpgs[k]["jpg"] for k in keys}
    assert share["off"] < 0.95 and share["auto"] == share["mask"] == 1.0, share
    assert reals["auto"] == reals["mask"] == reals["off"]
    assert single["auto"] == single["off"] and single["mask"] == single["off"]
