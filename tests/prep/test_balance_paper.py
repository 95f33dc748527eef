"""Balance on a pool shaped like the paper's training split: does the selection land on Table 1?

The pool is the crop index alone (no images), built with numpy: per dataset the train videos of
Table 1 (its split and class totals, and the published train/test composition), each with as many
crops as seconds at 1 FPS. Durations: FF++ about 17 s a video and Celeb-DF about 13 s (their
published frame totals), DFDC 10 s clips. FakeAVCeleb and ForgeryNet publish no usable durations:
their crops per video are Table 1's own real samples over their train real videos (about 8.6 and
2.3), and ForgeryNet's fake crops are its fake segments' (Table 1's 55K over its fake videos).
So for those two the test checks the rule (floors, running out), not an independent prediction.

Run with `-s` to see the table beside Table 1.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dfprep.balance import select_crops
from dfprep.catalogue import load_catalogue
from dfprep.config import BalanceConfig
from dfprep.schema import CROP_INDEX_SCHEMA
from dfprep.shards import INDEX_COLUMNS

# dataset: (train real videos, train fake videos, mean real crops, mean fake crops)
PAPER_TRAIN = {
    "ffpp": (720, 3600, 17.0, 17.0),  # 720 / 3,600 by the pair lists
    "celebdf": (890 - 178, 5639 - 340, 13.0, 13.0),  # all videos minus the test list's 178 / 340
    "dfdc": (19154, 100000, 10.0, 10.0),  # the training parts; 10 s clips
    "fakeavceleb": (
        349,
        14720 - 349,
        8.6,
        8.6,
    ),  # 70 % of the 498 reals; the rest of its 14,720 train videos
    "forgerynet": (
        35256,
        28941,
        2.33,
        1.9,
    ),  # 64,197 train videos in Table 1's real:fake proportion
}


def _crops(rng: np.random.Generator, n: int, mean: float, fixed: bool) -> np.ndarray:
    if fixed:
        return np.full(n, int(mean), np.int64)
    return 1 + rng.poisson(
        mean - 1, n
    )  # at least one crop: a video with no face is not in the pool


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def paper_pool(seed: int = 0) -> pa.Table:
    """The train split's crop index: INDEX_COLUMNS + source, one face per sampled second."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {c: [] for c in ("video_id", "dataset", "label", "sample_index")}
    for ds, (vr, vf, mr, mf) in PAPER_TRAIN.items():
        for label, n, mean in ((0, vr, mr), (1, vf, mf)):
            crops = _crops(rng, n, mean, fixed=ds == "dfdc")
            total = int(crops.sum())
            ids = _join(
                pa.array([f"{ds}-{'rf'[label]}"] * n), pc.cast(pa.array(np.arange(n)), pa.string())
            )
            parts["video_id"].append(ids.take(pa.array(np.repeat(np.arange(n), crops))))
            parts["dataset"].append(pa.array([ds] * total))
            parts["label"].append(np.full(total, label, np.int8))
            parts["sample_index"].append(
                np.arange(total) - np.repeat(np.cumsum(crops) - crops, crops)
            )
    vid = pa.chunked_array(parts["video_id"]).combine_chunks()
    k = np.concatenate(parts["sample_index"]).astype(np.int32)
    label = np.concatenate(parts["label"])
    n = len(vid)
    data = {
        "key": _join(vid, pa.array(["_s"] * n), pc.cast(pa.array(k), pa.string())),
        "shard": pa.array(["x.tar"] * n),
        "video_id": vid,
        "dataset": pa.chunked_array(parts["dataset"]).combine_chunks(),
        "split": pa.array(["train"] * n),
        "label": label,
        "video_label": label,
        "category": pa.array(np.where(label == 0, "real", "FS")),
        "method": pa.array(np.where(label == 0, "real", "m")),
        "sample_index": k,
        "time": k.astype(np.float64),
        "face_index": np.zeros(n, np.int16),
    }
    schema = pa.schema([CROP_INDEX_SCHEMA.field(c) for c in INDEX_COLUMNS])
    t = pa.Table.from_arrays(
        [
            pa.array(data[c]).cast(schema.field(c).type)
            if not isinstance(data[c], pa.Array)
            else data[c].cast(schema.field(c).type)
            for c in INDEX_COLUMNS
        ],
        schema=schema,
    )
    return t.append_column("source", pa.array(np.zeros(n, np.int32)))


@pytest.fixture(scope="module")
def pool() -> pa.Table:
    return paper_pool()


def per_dataset(table: pa.Table) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for row in table.group_by(["dataset", "label"]).aggregate([("key", "count")]).to_pylist():
        out.setdefault(row["dataset"], Counter())[row["label"]] = row["key_count"]
    return out


def videos_per_dataset(table: pa.Table) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    g = table.group_by(["dataset", "label"]).aggregate([("video_id", "count_distinct")]).to_pylist()
    for row in g:
        out.setdefault(row["dataset"], Counter())[row["label"]] = row["video_id_count_distinct"]
    return out


def show(title: str, got: dict[str, Counter], table1: dict[str, dict[str, int]]) -> None:
    print(f"\n{title}\n| dataset | real | Table 1 | fake | Table 1 |\n|---|---|---|---|---|")
    for ds, want in table1.items():
        r, f = got[ds][0], got[ds][1]
        print(
            f"| {ds} | {r:,} ({r / want['real'] - 1:+.0%}) | {want['real']:,} | "
            f"{f:,} ({f / want['fake'] - 1:+.0%}) | {want['fake']:,} |"
        )


@pytest.fixture(scope="module")
def table1() -> dict[str, dict[str, int]]:
    cat = load_catalogue()
    return {d: dict(cat.entry(d).samples) for d in PAPER_TRAIN}


def test_scope_dataset_lands_on_table_1(pool, table1):
    sel = select_crops(pool, BalanceConfig(min_shards=1))  # the defaults: scope dataset, keep real
    got, have, videos = per_dataset(sel.table), per_dataset(pool), videos_per_dataset(pool)
    show("scope: dataset, keep: real (the defaults)", got, table1)
    assert set(Counter(sel.table["video_id"].to_pylist())) == set(
        pool["video_id"].to_pylist()
    )  # every video kept
    for ds in PAPER_TRAIN:
        assert got[ds][0] == have[ds][0]  # the reals are kept whole
    for ds in ("ffpp", "celebdf", "dfdc"):  # 1:1 inside the dataset
        assert got[ds][1] == got[ds][0]
    assert (
        got["fakeavceleb"][1] == videos["fakeavceleb"][1]
    )  # one crop per fake video, more than its reals
    assert got["forgerynet"][1] == have["forgerynet"][1]  # the fake crops run out
    # near Table 1: the two classes' counts, and the real:fake ratio of each dataset
    for ds, want in table1.items():
        for c, name in ((0, "real"), (1, "fake")):
            assert abs(got[ds][c] / want[name] - 1) <= 0.25, (ds, name, got[ds][c], want[name])
        assert abs((got[ds][0] / got[ds][1]) / (want["real"] / want["fake"]) - 1) <= 0.2, ds
    total = {c: sum(g[c] for g in got.values()) for c in (0, 1)}
    print(f"total: {total[0]:,} real, {total[1]:,} fake (paper: 304K, 287K)")
    assert abs(total[0] / 304_000 - 1) <= 0.05 and abs(total[1] / 287_000 - 1) <= 0.05


def test_keep_minority_misses_forgerynet(pool, table1):
    # keep=minority differs from keep=real only where the fakes are the smaller class: ForgeryNet
    fnet = pool.filter(pc.equal(pool["dataset"], "forgerynet"))
    got = per_dataset(select_crops(fnet, BalanceConfig(min_shards=1, keep="minority")).table)[
        "forgerynet"
    ]
    print(
        f"\nkeep: minority, forgerynet: {got[0]:,} real ({got[0] / table1['forgerynet']['real'] - 1:+.0%}), "
        f"{got[1]:,} fake ({got[1] / table1['forgerynet']['fake'] - 1:+.0%})"
    )
    # its fakes are kept whole and its reals cut down to them (Table 1: 82K reals, 55K fakes)
    assert got[0] == got[1] < 0.7 * table1["forgerynet"]["real"]


def test_global_scope_gives_another_mix(pool, table1):
    glob = per_dataset(select_crops(pool, BalanceConfig(min_shards=1, scope="global")).table)
    show("scope: global", glob, table1)
    # one equal quota per fake video across all datasets: FF++ gets about half of Table 1's fakes,
    # FakeAVCeleb twice them, although the whole set is still 1:1
    assert glob["ffpp"][1] < 0.6 * table1["ffpp"]["fake"]
    assert glob["fakeavceleb"][1] > 1.5 * table1["fakeavceleb"]["fake"]
    total = {c: sum(g[c] for g in glob.values()) for c in (0, 1)}
    assert total[0] == total[1]
