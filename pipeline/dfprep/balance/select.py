"""Which crops form the training set, and where each goes: pure functions over the crop index.

The unit of sampling is a (video, crop label) group, so a partly fake video gives its real and its
fake crops to the two classes separately. Within a split and class, the budget is shared out by
water-filling: every group gets at least one crop, groups get equal quotas as far as their crops
allow, and a group's quota is spread evenly over its timeline. Train and val are balanced
separately; test is never balanced (it is evaluated whole) and is not selected here.

`scope` says where the ratio holds. `dataset` (the default, the paper's Table 1): inside each
dataset, one class is kept whole (`keep`: real, or the minority class) and the other is sampled to
match it, at least one crop per video and capped by what exists; a `total` scales every dataset's
share down alike. `global`: one budget per class over all datasets, shared equally across videos.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dfprep.balance.layout import tar_name
from dfprep.config import BalanceConfig
from dfprep.core.errors import ConfigError, InputError
from dfprep.schema import FAKE, LABEL_NAMES, REAL, SPLITS

BALANCED_SPLITS = ("train", "val")
GROUP_ORDER = [("split", "ascending"), ("label", "ascending"), ("video_id", "ascending"),
               ("time", "ascending"), ("face_index", "ascending"), ("key", "ascending")]  # fmt: skip


def water_fill(n: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Quotas 1 <= q <= n, as equal as possible, summing to min(budget, sum(n)), or all 1.

    The level t is the largest with sum(min(n, t)) <= budget; the leftover (fewer than the groups
    above t) goes one each to a seeded random subset of them. More groups than budget: all get 1.
    """
    n = np.asarray(n, dtype=np.int64)
    if n.size == 0 or budget >= n.sum():
        return n.copy()
    if budget <= n.size:
        return np.ones_like(n)
    s = np.sort(n)
    csum = np.concatenate([[0], np.cumsum(s)])

    def filled(t: int) -> int:
        k = int(np.searchsorted(s, t, side="left"))  # groups with fewer than t crops
        return int(csum[k]) + t * (n.size - k)

    lo, hi = 1, int(s[-1])  # filled(lo) <= budget < filled(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if filled(mid) <= budget else (lo, mid)
    q = np.minimum(n, lo)
    rest = budget - int(q.sum())
    if rest:
        q[rng.choice(np.flatnonzero(n > lo), size=rest, replace=False)] += 1
    return q


def spread(starts: np.ndarray, n: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row numbers of q[g] of the n[g] rows of each group: the middle row of q equal strata."""
    q = np.asarray(q, dtype=np.int64)
    g = np.repeat(np.arange(q.size), q)
    i = np.arange(int(q.sum())) - np.repeat(np.cumsum(q) - q, q)
    return np.asarray(starts, dtype=np.int64)[g] + (
        (2 * i + 1) * np.asarray(n, dtype=np.int64)[g]
    ) // (2 * q[g])


@dataclass(frozen=True)
class Budget:
    real: int
    fake: int
    ratio_reached: bool  # False when the videos' floors or the pool made the ratio impossible


def class_budgets(
    avail: tuple[int, int], videos: tuple[int, int], total: int, ratio: float
) -> Budget:
    """(real, fake) crops of one split: the ratio first, then the total.

    Every video keeps one crop, so the floors may lift both classes above `total` (keeping the
    ratio); the pool may hold both below it. total = 0 takes as many as the ratio allows.
    """
    (ar, af), (vr, vf), r = avail, videos, ratio
    if ar == 0 or af == 0:
        nominal = (total * r / (1 + r), total / (1 + r)) if total else (ar, af)
        real, fake = (
            min(max(round(x), v), a) for x, v, a in zip(nominal, (vr, vf), (ar, af), strict=True)
        )
        return Budget(real, fake, False)
    lo, hi = max(vf, vr / r), min(af, ar / r)  # bounds of the fake count x (real = r * x)
    target = hi if total == 0 else total / (1 + r)
    x = min(max(target, lo), hi) if lo <= hi else min(max(target, vf), af)
    fake = min(max(round(x), vf), af)
    real = min(max(round(r * x), vr), ar)
    return Budget(real, fake, lo <= hi)


def keep_budget(avail: tuple[int, int], videos: tuple[int, int], ratio: float, keep: str) -> Budget:
    """(real, fake) crops of one dataset under scope=dataset and no total: the kept class whole,
    the other r times it (or 1/r), at least one crop per video, at most what the pool has."""
    (ar, af), (vr, vf) = avail, videos
    if keep == "real" or ar <= ratio * af:  # keep the reals whole, sample the fakes
        target = ar / ratio
        return Budget(ar, min(max(round(target), vf), af), ar > 0 and vf <= target <= af)
    target = ratio * af  # keep the fakes whole, sample the reals
    return Budget(min(max(round(target), vr), ar), af, af > 0 and vr <= target <= ar)


def dataset_budgets(
    avail: dict[str, tuple[int, int]],
    videos: dict[str, tuple[int, int]],
    total: int,
    ratio: float,
    keep: str,
) -> dict[str, Budget]:
    """Per dataset (real, fake) crops under scope=dataset. A total below the sum scales every
    dataset's share alike; each dataset then keeps its ratio, its floors and its pool limits."""
    out = {d: keep_budget(avail[d], videos[d], ratio, keep) for d in avail}
    whole = sum(b.real + b.fake for b in out.values())
    if total and whole > total:
        out = {
            d: class_budgets(
                avail[d], videos[d], max(1, round(total * (b.real + b.fake) / whole)), ratio
            )
            for d, b in out.items()
        }
    return out


@dataclass
class SplitPlan:
    """What the selection decided for one split (reported in stats.json)."""

    total: int  # the requested total (0 = as many as the ratio allows)
    pool: dict[str, int]  # crops per class in the pool
    videos: dict[str, int]  # (video, label) groups per class
    available: dict[str, int]  # crops per class after the dataset / method caps
    selected: dict[str, int]
    ratio: float | None  # selected real / fake
    ratio_reached: bool
    budget_exceeded: bool  # the one-crop-per-video floor pushed the split above `total`
    shards: int
    notes: list[str] = field(default_factory=list)
    scope: str = "global"  # dataset: the ratio holds inside each dataset (see BalanceConfig)


@dataclass
class Selection:
    table: pa.Table  # selected rows in output order: INDEX_COLUMNS + source, out_shard, out_pos
    plans: dict[str, SplitPlan]
    shard_sizes: dict[str, dict[str, int]]  # split -> out shard name -> samples


def shard_count(n: int, samples_per_shard: int, min_shards: int) -> int:
    """Enough shards for the loader workers, none larger than asked, never an empty one."""
    return 0 if n == 0 else min(n, max(min_shards, -(-n // samples_per_shard)))


def _validate(t: pa.Table) -> None:
    bad = t.filter(pc.invert(pc.is_in(t["label"], pa.array([REAL, FAKE], pa.int8()))))
    if len(bad):
        raise InputError(f"crop {bad['key'][0]}: label must be 0 or 1, got {bad['label'][0]}")
    bad = t.filter(pc.invert(pc.fill_null(pc.is_in(t["split"], pa.array(SPLITS)), False)))
    if len(bad):
        raise InputError(f"crop {bad['key'][0]}: unknown split {bad['split'][0]}")


def _codes(col: pa.ChunkedArray) -> tuple[np.ndarray, list]:
    enc = pc.dictionary_encode(col).combine_chunks()
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary.to_pylist()


def _apply_caps(
    caps: dict[str, int],
    names: np.ndarray,
    avail: np.ndarray,
    rng: np.random.Generator,
    what: str,
    split: str,
    notes: list[str],
) -> None:
    """Lower the groups' available crops so that each capped dataset / method stays under its cap."""
    for name, cap in caps.items():
        members = np.flatnonzero(names == name)
        if members.size == 0:
            continue
        avail[members] = np.minimum(avail[members], water_fill(avail[members], cap, rng))
        if members.size > cap:
            notes.append(
                f"{split}: {what} {name} has {members.size} videos, more than its cap of {cap} crops"
            )


def select_crops(index: pa.Table, cfg: BalanceConfig) -> Selection:
    """The balanced train and val sets and their shuffled output shards; deterministic for cfg.seed."""
    _validate(index)
    t = index.filter(pc.is_in(index["split"], pa.array(BALANCED_SPLITS))).sort_by(GROUP_ORDER)
    split_c, split_names = _codes(t["split"])
    video_c, _ = _codes(t["video_id"])
    label = t["label"].to_numpy().astype(np.int64)
    change = np.ones(len(t), dtype=bool)
    change[1:] = (np.diff(split_c) != 0) | (np.diff(label) != 0) | (np.diff(video_c) != 0)
    starts = np.flatnonzero(change)
    n = np.diff(np.append(starts, len(t)))
    g_split = (
        np.array(split_names, dtype=object)[split_c[starts]] if len(t) else np.array([], object)
    )
    g_label = label[starts]
    g_dataset = np.array(t["dataset"].take(pa.array(starts)).to_pylist(), dtype=object)
    g_method = np.array(t["method"].take(pa.array(starts)).to_pylist(), dtype=object)
    for caps, names, what in (
        (cfg.dataset_caps, g_dataset, "dataset"),
        (cfg.method_caps, g_method, "method"),
    ):
        unknown = sorted(set(caps) - set(names))
        if unknown:  # a typo would otherwise cap nothing, silently
            have = ", ".join(sorted(set(names))) or "none"
            raise ConfigError(
                f"balance.{what}_caps: {unknown[0]!r} is not a {what} of the train/val crops (have: {have})"
            )
    avail = n.copy()
    q = np.zeros_like(n)
    plans: dict[str, SplitPlan] = {}
    parts, sizes = [], {}
    for si, split in enumerate(BALANCED_SPLITS):
        total = cfg.total if split == "train" else cfg.val_total
        in_split = np.flatnonzero(g_split == split)
        notes: list[str] = []
        rng = np.random.default_rng([cfg.seed, si, 0])
        for caps, names, what in (
            (cfg.dataset_caps, g_dataset, "dataset"),
            (cfg.method_caps, g_method, "method"),
        ):
            sub = avail[in_split]
            _apply_caps(caps, names[in_split], sub, rng, what, split, notes)
            avail[in_split] = sub
        cls = {c: in_split[g_label[in_split] == c] for c in (REAL, FAKE)}
        if cfg.scope == "global":
            budget = class_budgets(
                (int(avail[cls[REAL]].sum()), int(avail[cls[FAKE]].sum())),
                (cls[REAL].size, cls[FAKE].size),
                total,
                cfg.ratio,
            )
            for c, b in ((REAL, budget.real), (FAKE, budget.fake)):
                q[cls[c]] = water_fill(
                    avail[cls[c]], b, np.random.default_rng([cfg.seed, si, 1 + c])
                )
        else:
            budget = _fill_per_dataset(cls, g_dataset, avail, q, total, cfg, si, split, notes)
        rows = spread(starts[in_split], n[in_split], q[in_split])
        chosen = {c: int(q[cls[c]].sum()) for c in (REAL, FAKE)}
        exceeded = bool(total) and chosen[REAL] + chosen[FAKE] > total
        if exceeded:
            notes.append(
                f"{split}: {chosen[REAL] + chosen[FAKE]} crops selected, more than the total of "
                f"{total}: every video keeps one crop and the ratio is kept"
            )
        if not in_split.size:
            notes.append(f"{split}: no crops in the pool")
        elif not budget.ratio_reached:
            notes.append(
                f"{split}: the ratio {cfg.ratio:g} cannot be reached with this pool "
                f"({chosen[REAL]} real, {chosen[FAKE]} fake crops selected)"
            )
        n_sel = rows.size
        n_shards = shard_count(n_sel, cfg.samples_per_shard, cfg.min_shards)
        order = np.random.default_rng([cfg.seed, si, 9]).permutation(n_sel)
        bounds = (np.arange(n_shards + 1) * n_sel) // max(n_shards, 1)
        pos = np.arange(n_sel)
        shard_i = np.searchsorted(bounds, pos, side="right") - 1
        shard_names = [tar_name(split, i) for i in range(n_shards)]
        sel = t.take(pa.array(rows[order]))
        sel = sel.append_column(
            "out_shard", pa.array([shard_names[i] for i in shard_i], pa.string())
        )
        sel = sel.append_column("out_pos", pa.array(pos - bounds[shard_i], pa.int32()))
        parts.append(sel)
        sizes[split] = {shard_names[i]: int(bounds[i + 1] - bounds[i]) for i in range(n_shards)}
        plans[split] = SplitPlan(
            total=total,
            pool={LABEL_NAMES[c]: int(n[cls[c]].sum()) for c in (REAL, FAKE)},
            videos={LABEL_NAMES[c]: int(cls[c].size) for c in (REAL, FAKE)},
            available={LABEL_NAMES[c]: int(avail[cls[c]].sum()) for c in (REAL, FAKE)},
            selected={LABEL_NAMES[c]: chosen[c] for c in (REAL, FAKE)},
            ratio=round(chosen[REAL] / chosen[FAKE], 6) if chosen[FAKE] else None,
            ratio_reached=bool(budget.ratio_reached) if in_split.size else False,
            budget_exceeded=exceeded,
            shards=n_shards,
            notes=notes,
            scope=cfg.scope,
        )
    return Selection(pa.concat_tables(parts), plans, sizes)


def _fill_per_dataset(
    cls: dict[int, np.ndarray],
    g_dataset: np.ndarray,
    avail: np.ndarray,
    q: np.ndarray,
    total: int,
    cfg: BalanceConfig,
    si: int,
    split: str,
    notes: list[str],
) -> Budget:
    """scope=dataset: each dataset's quotas (written into q); the split's overall budget."""
    members = {
        c: {d: idx[g_dataset[idx] == d] for d in sorted(set(g_dataset[idx]))}
        for c, idx in cls.items()
    }
    names = sorted(set(members[REAL]) | set(members[FAKE]))
    empty = np.array([], dtype=np.int64)
    group = {d: {c: members[c].get(d, empty) for c in (REAL, FAKE)} for d in names}
    budgets = dataset_budgets(
        {d: (int(avail[g[REAL]].sum()), int(avail[g[FAKE]].sum())) for d, g in group.items()},
        {d: (g[REAL].size, g[FAKE].size) for d, g in group.items()},
        total,
        cfg.ratio,
        cfg.keep,
    )
    for di, d in enumerate(names):
        b = budgets[d]
        for c, want in ((REAL, b.real), (FAKE, b.fake)):
            idx = group[d][c]
            q[idx] = water_fill(
                avail[idx], want, np.random.default_rng([cfg.seed, si, 1 + c, 1 + di])
            )
        if not b.ratio_reached:
            notes.append(
                f"{split}: {d}: the ratio {cfg.ratio:g} cannot be reached ({b.real} real, {b.fake} fake "
                f"crops from {group[d][REAL].size} real and {group[d][FAKE].size} fake videos)"
            )
    return Budget(
        sum(b.real for b in budgets.values()),
        sum(b.fake for b in budgets.values()),
        all(b.ratio_reached for b in budgets.values()),
    )
