"""dfprep balance: selection (pure), resharding, statistics. Pools are fabricated in tmp_path."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dfprep.balance import run_balance, select_crops
from dfprep.balance.select import class_budgets, spread, water_fill
from dfprep.cli import app
from dfprep.config import BalanceConfig, load_params
from dfprep.core.errors import ConfigError, InputError
from dfprep.schema import CROP_INDEX_SCHEMA, VIDEO_STATUS_SCHEMA, CropRecord, SampleLabels, make_key
from dfprep.shards import TarSink, iter_samples

# ---- fabricated extract outputs ------------------------------------------------------------------


def vid(
    video_id,
    dataset="ds",
    split="train",
    label=1,
    crops=5,
    method=None,
    fake_from=None,
    status=None,
    error="",
):
    """One video of a fabricated pool; fake_from = first fake second of a partly fake video."""
    return {
        "video_id": video_id,
        "dataset": dataset,
        "split": split,
        "label": label,
        "crops": crops,
        "method": method or ("real" if label == 0 else "swap"),
        "fake_from": fake_from,
        "status": status or ("ok" if crops else "no_face"),
        "error": error,
    }


def noise_jpeg(seed: int, color=None, size: int = 32) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    px = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    if color is not None:
        px = (np.array(color, np.uint8) * 0.9 + px * 0.1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_extract(
    root: Path,
    videos: list[dict],
    per_shard: int = 4,
    prefix: str = "pool",
    payload=None,
    incomplete: tuple[int, ...] = (),
) -> Path:
    """An extract output directory as `dfprep extract` writes it (tars in shards/; index, videos,
    stats in meta/)."""
    import webdataset as wds

    shards, tables = root / "shards", root / "meta"
    shards.mkdir(parents=True, exist_ok=True)
    tables.mkdir(parents=True, exist_ok=True)
    videos = sorted(videos, key=lambda v: v["video_id"])
    for j in range(0, len(videos), per_shard):
        name = f"{prefix}-{j // per_shard:06d}"
        index_rows, video_rows = [], []
        with wds.TarWriter(str(shards / f"{name}.tar"), mtime=0) as tw:
            for v in videos[j : j + per_shard]:
                for k in range(v["crops"]):
                    label = v["label"] if v["fake_from"] is None else int(k >= v["fake_from"])
                    labels = SampleLabels(
                        v["video_id"],
                        v["dataset"],
                        v["split"],
                        label,
                        v["label"],
                        "real" if label == 0 else "FS",
                        v["method"],
                    )
                    key = make_key(v["video_id"], k, 0)
                    meta = CropRecord(
                        key, labels, k, 25 * k, float(k), 0, 0.99, [1, 2, 30, 40], [0.0] * 10
                    ).to_json()
                    jpg = payload(v, k) if payload else noise_jpeg(zlib.crc32(key.encode()))
                    tw.write(
                        {
                            "__key__": key,
                            "cls": str(label).encode(),
                            "jpg": jpg,
                            "json": json.dumps(meta, sort_keys=True).encode(),
                        }
                    )
                    index_rows.append({**meta, "shard": f"{name}.tar", "jpeg_bytes": len(jpg)})
                video_rows.append(
                    {
                        "video_id": v["video_id"],
                        "path": f"/data/{v['video_id']}.mp4",
                        "dataset": v["dataset"],
                        "split": v["split"],
                        "label": v["label"],
                        "category": "real" if v["label"] == 0 else "FS",
                        "method": v["method"],
                        "status": v["status"],
                        "error": v["error"],
                        "frames_sampled": v["crops"],
                        "frames_with_face": v["crops"],
                        "crops": v["crops"],
                        "strategy": "seek",
                        "duration": float(v["crops"]),
                        "width": 64,
                        "height": 64,
                    }
                )
        pq.write_table(
            pa.Table.from_pylist(index_rows, schema=CROP_INDEX_SCHEMA),
            tables / f"{name}.index.parquet",
        )
        pq.write_table(
            pa.Table.from_pylist(video_rows, schema=VIDEO_STATUS_SCHEMA),
            tables / f"{name}.videos.parquet",
        )
        if j // per_shard not in incomplete:
            (tables / f"{name}.stats.json").write_text(
                json.dumps({"shard": name, "params_hash": "abc"})
            )
    return root


def index_table(videos: list[dict]) -> pa.Table:
    """The crop index of a pool without writing anything (for the pure selection tests)."""
    rows = []
    for v in videos:
        for k in range(v["crops"]):
            label = v["label"] if v["fake_from"] is None else int(k >= v["fake_from"])
            rows.append(
                {
                    "key": make_key(v["video_id"], k, 0),
                    "shard": "x.tar",
                    "video_id": v["video_id"],
                    "dataset": v["dataset"],
                    "split": v["split"],
                    "label": label,
                    "video_label": v["label"],
                    "category": "real" if label == 0 else "FS",
                    "method": v["method"],
                    "sample_index": k,
                    "frame_index": 25 * k,
                    "time": float(k),
                    "face_index": 0,
                }
            )
    t = pa.Table.from_pylist(rows, schema=pa.schema([CROP_INDEX_SCHEMA.field(c) for c in rows[0]]))
    return t.append_column("source", pa.array([0] * len(t), pa.int32()))


def imbalanced_pool(
    rng: np.random.Generator, real: int = 30, fake: int = 150, split: str = "train"
) -> list[dict]:
    """1:5 real:fake videos with 1 to 40 crops each."""
    return [
        vid(
            f"{split}-r{i:04d}",
            dataset=f"d{i % 3}",
            split=split,
            label=0,
            crops=int(rng.integers(1, 41)),
        )
        for i in range(real)
    ] + [
        vid(
            f"{split}-f{i:04d}",
            dataset=f"d{i % 3}",
            split=split,
            label=1,
            crops=int(rng.integers(1, 41)),
            method=f"m{i % 4}",
        )
        for i in range(fake)
    ]


def read_tar(path: Path) -> list[tuple[str, dict[str, bytes]]]:
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for m in tar:
            key, ext = m.name.split(".", 1)
            samples.setdefault(key, {})[ext] = tar.extractfile(m).read()
    return list(samples.items())


def selected_counts(table: pa.Table, split: str) -> Counter:
    t = table.filter(pa.compute.equal(table["split"], split))
    return Counter(t["label"].to_pylist())


# ---- pure selection -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_water_fill_gives_equal_quotas_summing_to_budget(seed):
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 60, 200)
    budget = int(rng.integers(201, n.sum()))
    q = water_fill(n, budget, np.random.default_rng(0))
    assert q.sum() == budget
    assert (q >= 1).all() and (q <= n).all()
    unsaturated = q < n
    # every group below its own size sits at the common level (or one above it)
    assert q[unsaturated].max() - q[unsaturated].min() <= 1
    assert (q[~unsaturated] <= q[unsaturated].max()).all()


def test_water_fill_keeps_one_per_group_over_budget_and_all_under():
    n = np.array([5, 1, 9, 3])
    assert water_fill(n, 2, np.random.default_rng(0)).tolist() == [1, 1, 1, 1]
    assert water_fill(n, 100, np.random.default_rng(0)).tolist() == n.tolist()


def test_spread_picks_the_middle_of_equal_strata():
    rows = spread(np.array([0, 100]), np.array([30, 7]), np.array([3, 7]))
    first, second = rows[:3], rows[3:]
    assert first[0] >= 30 // 6 and first[-1] <= 29 - 30 // 6 + 1  # not the first N, not the last N
    gaps = np.diff(first)
    assert gaps.max() - gaps.min() <= 1 and gaps.min() >= 30 // 3 - 1
    assert second.tolist() == list(range(100, 107))  # quota == crops: every row once


@pytest.mark.parametrize("total", [0, 1000])
@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_ratio_within_2_percent_on_a_1_to_5_pool(total, ratio):
    videos = imbalanced_pool(np.random.default_rng(1))
    sel = select_crops(index_table(videos), BalanceConfig(total=total, ratio=ratio, min_shards=1))
    c = selected_counts(sel.table, "train")
    assert abs(c[0] / c[1] - ratio) <= 0.02 * ratio
    if total:
        assert abs(c[0] + c[1] - total) <= 1
    else:  # as many as the ratio allows: the minority class gives all its crops
        pool = Counter(index_table(videos)["label"].to_pylist())
        assert c[0] == pool[0] or c[1] == pool[1]
    assert sel.plans["train"].ratio_reached


def test_every_video_keeps_a_crop_even_over_budget():
    videos = imbalanced_pool(np.random.default_rng(2))
    sel = select_crops(index_table(videos), BalanceConfig(total=100, min_shards=1))
    per_video = Counter(sel.table["video_id"].to_pylist())
    assert set(per_video) == {v["video_id"] for v in videos}
    plan = sel.plans["train"]
    assert plan.budget_exceeded and any("more than the total" in n for n in plan.notes)
    c = selected_counts(sel.table, "train")
    assert c[1] == 150 and abs(c[0] / c[1] - 1) <= 0.02  # 150 fake videos: the ratio is kept


def test_quotas_are_equal_across_videos_and_spread_over_time():
    videos = [vid(f"r{i}", label=0, crops=40) for i in range(4)] + [
        vid(f"f{i}", crops=40) for i in range(4)
    ]
    sel = select_crops(index_table(videos), BalanceConfig(total=32, min_shards=1))
    times: dict[str, list[float]] = {}
    for v, t in zip(sel.table["video_id"].to_pylist(), sel.table["time"].to_pylist(), strict=True):
        times.setdefault(v, []).append(t)
    assert {len(t) for t in times.values()} == {4}
    for t in times.values():
        t = sorted(t)
        assert t[0] >= 40 / 8 - 1 and t[-1] <= 40 - 40 / 8  # covers the timeline, not its start
        gaps = np.diff(t)
        assert gaps.max() - gaps.min() <= 1


def test_partly_fake_video_feeds_both_classes_and_test_is_never_selected():
    videos = [
        vid("mix", crops=20, fake_from=10),
        vid("r", label=0, crops=20),
        vid("f", crops=20),
        vid("t", split="test", crops=20),
        vid("v", split="val", label=0, crops=4),
        vid("vf", split="val", crops=8),
    ]
    sel = select_crops(index_table(videos), BalanceConfig(min_shards=1))
    assert "test" not in set(sel.table["split"].to_pylist())
    mix = sel.table.filter(pa.compute.equal(sel.table["video_id"], "mix"))
    assert set(mix["label"].to_pylist()) == {0, 1}
    for label, time in zip(mix["label"].to_pylist(), mix["time"].to_pylist(), strict=True):
        assert (time >= 10) == (label == 1)
    assert selected_counts(sel.table, "val") == Counter({0: 4, 1: 4})  # val balanced on its own


@pytest.mark.parametrize("scope", ["global", "dataset"])
def test_dataset_and_method_caps_hold(scope):
    videos = imbalanced_pool(np.random.default_rng(3))
    cfg = BalanceConfig(dataset_caps={"d0": 120}, method_caps={"m1": 40}, min_shards=1, scope=scope)
    sel = select_crops(index_table(videos), cfg)
    assert Counter(sel.table["dataset"].to_pylist())["d0"] <= 120
    assert Counter(sel.table["method"].to_pylist())["m1"] <= 40
    c = selected_counts(sel.table, "train")
    if scope == "global":  # the other datasets make up for d0's capped reals
        assert abs(c[0] / c[1] - 1) <= 0.02
    else:  # each dataset on its own: d0's fake videos keep one crop each, more than its reals
        notes = sel.plans["train"].notes
        assert any(n.startswith("train: d0: the ratio 1 cannot be reached") for n in notes)
        for d in ("d1", "d2"):
            t = sel.table.filter(pa.compute.equal(sel.table["dataset"], d))
            k = Counter(t["label"].to_pylist())
            assert k[0] == k[1]


def test_class_budgets_keep_the_floors_and_the_pool_limits():
    b = class_budgets((500, 5000), (10, 100), 0, 1.0)
    assert (b.real, b.fake, b.ratio_reached) == (500, 500, True)
    b = class_budgets((500, 5000), (10, 800), 0, 1.0)  # more fake videos than real crops
    assert b.fake == 800 and b.real == 500 and not b.ratio_reached
    b = class_budgets((0, 50), (0, 5), 20, 1.0)
    assert b.real == 0 and b.fake == 10 and not b.ratio_reached


def test_output_shards_are_even_and_shuffled():
    videos = imbalanced_pool(np.random.default_rng(4))
    sel = select_crops(index_table(videos), BalanceConfig(samples_per_shard=100, min_shards=4))
    sizes = list(sel.shard_sizes["train"].values())
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == len(sel.table)
    assert len(sizes) == max(4, -(-len(sel.table) // 100))
    first = sel.table.filter(pa.compute.equal(sel.table["out_shard"], "train-000000.tar"))
    assert first["out_pos"].to_pylist() == list(range(len(first)))
    assert first["key"].to_pylist() != sorted(first["key"].to_pylist())
    assert len(set(first["dataset"].to_pylist())) == 3 and len(set(first["label"].to_pylist())) == 2


def test_config_is_validated_and_read_from_params(tmp_path):
    with pytest.raises(ConfigError, match="ratio"):
        BalanceConfig(ratio=0)
    with pytest.raises(ConfigError, match="dataset_caps"):
        BalanceConfig(dataset_caps={"ffpp": 0})
    p = tmp_path / "params.yaml"
    p.write_text("balance:\n  total: 1000\n  ratio: 1\n  dataset_caps: {forgerynet: 50}\n")
    cfg = load_params(p).balance
    assert (cfg.total, cfg.ratio, cfg.dataset_caps) == (1000, 1.0, {"forgerynet": 50})


# ---- end to end ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    rng = np.random.default_rng(5)
    a = imbalanced_pool(rng, real=6, fake=30) + imbalanced_pool(rng, real=2, fake=6, split="val")
    a += [
        vid("test-a", split="test", crops=3),
        vid("nf", crops=0, error="no face found"),
        vid("bad", crops=0, status="failed", error="InvalidDataError: /data/bad.mp4: broken"),
    ]
    b = [
        vid("other-r", dataset="other", label=0, crops=12),
        vid("other-f", dataset="other", crops=3),
    ]
    d1 = write_extract(root / "e1", a, per_shard=5, incomplete=(1,))
    d2 = write_extract(root / "e2", b, prefix="other")
    return [d1, d2]


def _balance(pool_dirs, out, **kw):
    cfg = BalanceConfig(**{"total": 200, "samples_per_shard": 40, "min_shards": 2, **kw})
    return run_balance(pool_dirs, out, cfg)


def test_balance_end_to_end_loses_and_duplicates_nothing(pool_dirs, tmp_path):
    res = _balance(pool_dirs, tmp_path / "out")
    out = tmp_path / "out"
    sel = pq.read_table(out / "selection.parquet")
    sizes = json.loads((out / "sizes.json").read_text())
    assert sizes == res.sizes and set(sizes) == {"train", "val"}
    # the skipped shard (no stats file) contributes nothing
    skipped = pq.read_table(pool_dirs[0] / "meta" / "pool-000001.index.parquet")["key"].to_pylist()
    assert not set(skipped) & set(sel["key"].to_pylist())
    assert any(
        "1 incomplete extract shard(s) skipped" in n and "pool-000001.tar" in n for n in res.notes
    )
    source_samples = {}
    for src in set(sel["source"].to_pylist()):
        source_samples.update(read_tar(Path(src)))
    seen = []
    for split, shards in sizes.items():
        assert sorted(p.name for p in (out / split).glob("*.tar")) == sorted(shards)
        for name, n in shards.items():
            samples = read_tar(out / split / name)
            assert len(samples) == n  # sizes.json matches the shards
            for key, members in samples:
                assert members == source_samples[key]  # every member, byte for byte
                assert json.loads(members["json"])["split"] == split
            seen += [k for k, _ in samples]
    assert len(seen) == len(set(seen)) == len(sel)
    assert set(seen) == set(sel["key"].to_pylist())
    stats = json.loads((out / "stats.json").read_text())
    train = stats["splits"]["train"]["datasets"]["all"]
    assert train["real"]["selected_crops"] + train["fake"]["selected_crops"] == sum(
        sizes["train"].values()
    )
    assert stats["extract"]["incomplete_shards"] == 1
    assert stats["extract"]["videos"]["failed"] == 1 and stats["extract"]["videos"]["no_face"] == 1
    assert stats["splits"]["test"]["datasets"]["all"]["fake"]["pool_crops"] == 3
    md = (out / "stats.md").read_text()
    assert (
        "| **all** |" in md and "incomplete shard" in md and "InvalidDataError: <path> broken" in md
    )
    # Table 1's training samples beside the selection (none of these datasets is the paper's)
    assert stats["table1"]["ffpp"] == {"real": 12000, "fake": 14000}
    assert stats["splits"]["train"]["plan"]["scope"] == "dataset"
    assert "Beside the paper's Table 1 (training samples; this run's scope: dataset)" in md
    assert "| ffpp | - | 12,000 | - | 14,000 | - | 0.86 |" in md
    assert (out / "stats.png").read_bytes()[:4] == b"\x89PNG"
    assert not (out / ".buckets").exists()


def test_shards_read_with_webdataset(pool_dirs, tmp_path):
    import webdataset as wds

    _balance(pool_dirs, tmp_path / "out")
    sizes = json.loads((tmp_path / "out" / "sizes.json").read_text())
    urls = [str(tmp_path / "out" / "train" / n) for n in sizes["train"]]
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode())
    assert len(samples) == sum(sizes["train"].values())
    assert all(s["cls"] == s["json"]["label"] and s["__key__"] == s["json"]["key"] for s in samples)


def test_balance_is_deterministic_and_seeded(pool_dirs, tmp_path):
    _balance(pool_dirs, tmp_path / "a")
    _balance(pool_dirs, tmp_path / "b")
    _balance(pool_dirs, tmp_path / "c", seed=1)
    files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert files == sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a/train/train-000000.tar").read_bytes() != (
        tmp_path / "c/train/train-000000.tar"
    ).read_bytes()


def test_dask_client_gives_the_same_bytes(pool_dirs, tmp_path):
    from distributed import Client

    _balance(pool_dirs, tmp_path / "seq")
    with Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    ) as client:
        cfg = BalanceConfig(total=200, samples_per_shard=40, min_shards=2)
        events = []
        run_balance(
            pool_dirs, tmp_path / "dask", cfg, client=client, progress=lambda *e: events.append(e)
        )
    for f in (tmp_path / "seq").rglob("*"):
        if f.is_file():
            assert (
                f.read_bytes() == (tmp_path / "dask" / f.relative_to(tmp_path / "seq")).read_bytes()
            ), f
    assert (
        ("read", 0, events[0][2]) in events
        and events[-1][0] == "write"
        and events[-1][1] == events[-1][2]
    )


def test_rerun_replaces_previous_output(pool_dirs, tmp_path):
    _balance(pool_dirs, tmp_path / "out", min_shards=6)
    _balance(pool_dirs, tmp_path / "out", min_shards=2)
    sizes = json.loads((tmp_path / "out" / "sizes.json").read_text())
    assert sorted(p.name for p in (tmp_path / "out" / "train").glob("*.tar")) == sorted(
        sizes["train"]
    )


def test_tarsink_writes_what_webdataset_writes():
    import webdataset as wds

    samples = [
        ("a_s00000_0", {"jpg": b"\xff\xd8x", "cls": b"1", "json": b"{}"}),
        ("b", {"txt": b"hi"}),
    ]
    ours, theirs = io.BytesIO(), io.BytesIO()
    with TarSink(ours) as sink:
        for k, m in samples:
            sink.write(k, m)
    tw = wds.TarWriter(theirs, mtime=0, encoder=False)
    for k, m in samples:
        tw.write({"__key__": k, **m})
    tw.close()
    assert ours.getvalue() == theirs.getvalue()


def test_keys_longer_than_ustar_allows_round_trip():
    key = "forgerynet-" + "x" * 120 + "_s00003_0"
    buf = io.BytesIO()
    with TarSink(buf) as sink:
        sink.write(key, {"jpg": b"j", "json": b"{}"})
        sink.write("short", {"cls": b"0"})
    buf.seek(0)
    got = list(iter_samples(buf, "mem", lambda k: k != "short"))
    assert got == [(key, {"jpg": b"j", "json": b"{}"})]


# ---- bad input ----------------------------------------------------------------------------------


def test_mislabelled_sample_is_refused(tmp_path):
    d = write_extract(tmp_path / "e", [vid("r", label=0, crops=3), vid("f", crops=3)])
    idx = d / "meta" / "pool-000000.index.parquet"
    t = pq.read_table(idx)
    labels = t["label"].to_pylist()
    labels[0] = 1 - labels[0]
    pq.write_table(
        t.set_column(t.schema.get_field_index("label"), "label", pa.array(labels, pa.int8())), idx
    )
    with pytest.raises(InputError, match=r"pool-000000\.tar: sample f_s00000_0: .*disagree"):
        run_balance([d], tmp_path / "out", BalanceConfig(min_shards=1))


def test_crop_missing_from_tar_is_refused(tmp_path):
    d = write_extract(tmp_path / "e", [vid("r", label=0, crops=2), vid("f", crops=3)])
    idx = d / "meta" / "pool-000000.index.parquet"
    t = pq.read_table(idx)
    extra = t.slice(len(t) - 1, 1).set_column(
        0, "key", pa.array(["r_s00099_0"])
    )  # a third crop of r
    pq.write_table(pa.concat_tables([t, extra]), idx)
    with pytest.raises(InputError, match=r"missing from the tar \(first: r_s00099_0\)"):
        run_balance([d], tmp_path / "out", BalanceConfig(min_shards=1))


def test_same_crop_in_two_extract_outputs_is_refused(tmp_path):
    a = write_extract(tmp_path / "a", [vid("r", label=0), vid("f")])
    b = write_extract(tmp_path / "b", [vid("f")], prefix="again")
    with pytest.raises(InputError, match="'f_s00000_0' appears more than once"):
        run_balance([a, b], tmp_path / "out")


def test_not_an_extract_dir_and_broken_shard_are_named(tmp_path):
    with pytest.raises(InputError, match="no shards/ folder"):
        run_balance([tmp_path], tmp_path / "out")
    d = write_extract(tmp_path / "e", [vid("r", label=0), vid("f")])
    (d / "shards" / "pool-000000.tar").unlink()
    with pytest.raises(
        InputError,
        match=r"pool-000000\.stats\.json: shard marked complete but pool-000000\.tar is missing",
    ):
        run_balance([d], tmp_path / "out")


# ---- memory -------------------------------------------------------------------------------------

MEASURE = """
import sys
from dfprep.balance import run_balance
from dfprep.config import BalanceConfig
res = run_balance([sys.argv[1]], sys.argv[2], BalanceConfig(samples_per_shard=40, min_shards=1))
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")).split()[1]
print(sum(sum(s.values()) for s in res.sizes.values()), peak)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_memory_stays_flat_when_the_pool_grows_tenfold(tmp_path):
    """Peak RSS of a balance run on 10x the pool (50 KB samples: 10 MB vs 100 MB) barely moves.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec.
    """
    blob = np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    peaks = {}
    for scale in (1, 10):
        videos = [vid(f"v{scale}-{i:05d}", label=i % 2, crops=10) for i in range(20 * scale)]
        d = write_extract(tmp_path / f"pool{scale}", videos, per_shard=5, payload=lambda v, k: blob)
        run = subprocess.run(
            [sys.executable, "-c", MEASURE, str(d), str(tmp_path / f"out{scale}")],
            capture_output=True,
            text=True,
            check=True,
        )
        n, peak_kb = map(int, run.stdout.split())
        assert n == 200 * scale
        peaks[scale] = peak_kb / 1024
    print(f"peak RSS: {peaks[1]:.0f} MB for 10 MB of crops, {peaks[10]:.0f} MB for 100 MB")
    assert peaks[10] - peaks[1] < 30  # holding the pool would add about 90 MB


def _pool(root):
    videos = [vid(f"r{i}", label=0, crops=4) for i in range(4)] + [vid(f"f{i}") for i in range(4)]
    videos += [vid("vr", split="val", label=0), vid("vf", split="val")]
    return write_extract(root, videos, per_shard=2)


def test_balance_in_a_log_prints_its_phases_and_no_progress_prints_none(tmp_path):
    pool = _pool(tmp_path / "x")
    runner = CliRunner()
    res = runner.invoke(app, ["balance", str(pool), "--out", str(tmp_path / "b"),
                                     "--scheduler", "inline", "--min-shards", "1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert re.search(r"balance read: (\d+)/\1 source shards \(100%\)", res.stderr)
    assert re.search(r"balance write: (\d+)/\1 shards \(100%\) .* done in", res.stderr)
    res = runner.invoke(app, ["balance", str(pool), "--out", str(tmp_path / "c"),
                                     "--scheduler", "inline", "--min-shards", "1", "--no-progress"])  # fmt: skip
    assert res.exit_code == 0 and "balance read" not in res.stderr


def test_the_stats_table_of_balance_prints_whole_lines(tmp_path):
    pool = _pool(tmp_path / "x")
    res = CliRunner().invoke(app, ["balance", str(pool), "--out", str(tmp_path / "b"),
                                          "--scheduler", "inline", "--min-shards", "1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    md = (tmp_path / "b" / "stats.md").read_text().splitlines()
    table = [ln for ln in md if ln.startswith("|")]
    assert table and max(map(len, table)) > 80  # a row wider than the old wrap
    printed = res.stdout.splitlines()
    assert all(ln in printed for ln in table)  # every row printed as one line
    assert json.loads((tmp_path / "b" / "sizes.json").read_text())
