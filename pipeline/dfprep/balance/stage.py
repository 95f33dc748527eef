"""`dfprep balance`: extract outputs -> balanced, shuffled train/val shards + sizes + statistics.

Output directory:
  train/train-NNNNNN.tar, val/val-NNNNNN.tar   WebDataset shards, samples keep all members
  sizes.json                                   {"train": {shard: n}, "val": {...}}, written last
  selection.parquet                            the selected crops: source shard, output shard, position
  stats.json, stats.md, stats.png              Table-1-style statistics
Same inputs and seed give byte-identical files. Tasks run on a Dask client when one is given
(one per source shard, then one per output shard), else one after another in this process.
A run holds the folder (`dfprep.core.lock`); one that fails or is interrupted removes every file
it wrote, finished shards included, and the folders it made, and nothing else.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dfprep.balance.layout import SIZES, write_sizes
from dfprep.balance.pool import read_pool
from dfprep.balance.reshard import bucket_source, write_shard
from dfprep.balance.select import BALANCED_SPLITS, Selection, select_crops
from dfprep.balance.stats import compute_stats, plot_stats, stats_markdown
from dfprep.config import BalanceConfig
from dfprep.core.atomic import remove_tmp, write_json, write_text, writing
from dfprep.core.errors import InputError
from dfprep.core.lock import output_lock
from dfprep.core.outputs import output_dir
from dfprep.core.signals import Terminated

BUCKETS = ".buckets"
Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class BalanceResult:
    out: Path
    sizes: dict[str, dict[str, int]]
    stats: dict
    seconds: float
    source_shards: int  # source shards read (each once)
    bytes_written: int
    notes: list[str]  # what the user should know: budget exceeded, ratio missed, shards skipped


class BalanceInterrupted(KeyboardInterrupt):
    """Ctrl-C during `run_balance`; the message says how far it got. Nothing counts as written:
    sizes.json, the completeness mark, is written last, and a rerun starts over."""


class BalanceTerminated(BalanceInterrupted, Terminated):
    """SIGTERM during `run_balance` (exit status 143)."""


def _run(tasks: list[tuple], client, phase: str, progress: Progress | None, retries: int) -> list:
    """Run fn(*args) for each (fn, *args): on the Dask client if any, else here in order."""
    done, results = 0, [None] * len(tasks)
    if progress:
        progress(phase, 0, len(tasks))
    if client is None:
        for i, (fn, *args) in enumerate(tasks):
            results[i] = fn(*args)
            done += 1
            if progress:
                progress(phase, done, len(tasks))
        return results
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]
    futures = [
        client.submit(fn, *args, key=f"balance-{phase}-{token}-{i}", retries=retries, pure=False)
        for i, (fn, *args) in enumerate(tasks)
    ]
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for fut in as_completed(futures):
            results[index[fut.key]] = (
                fut.result()
            )  # re-raises the task's error (InputError stays one)
            done += 1
            if progress:
                progress(phase, done, len(tasks))
    finally:
        client.cancel([f for f in futures if not f.done()])
    return results


def _clear(out: Path) -> None:
    """Remove what a previous balance run wrote here (only our own file names)."""
    (out / SIZES).unlink(missing_ok=True)  # first: the directory stops counting as done
    for split in BALANCED_SPLITS:
        for pattern in (
            f"{split}-*.tar",
            f".{split}-*.tar.tmp-*",
        ):  # shards, and tmp files of killed runs
            for p in (out / split).glob(pattern):
                p.unlink()
    for name in ("selection.parquet", "stats.json", "stats.md", "stats.png"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / BUCKETS, ignore_errors=True)


def _selection_table(selection: Selection, sources: list[str]) -> pa.Table:
    t = selection.table
    src = pc.take(pa.array(sources, pa.string()), t["source"])
    return t.set_column(t.schema.get_field_index("source"), "source", src)


def _remove_partial(out: Path, state: dict) -> None:
    """What a failed or interrupted run wrote (best effort: tasks may still be running elsewhere):
    its temporary files and buckets; once it had cleared the folder, every output file there
    (`_clear`'s names: only this run can have written them since, it holds the folder), and the
    split folders it made, once empty."""
    shutil.rmtree(out / BUCKETS, ignore_errors=True)
    for split in BALANCED_SPLITS:
        for p in (out / split).glob(f".{split}-*.tar.tmp-*"):
            p.unlink(missing_ok=True)
    remove_tmp(out)  # write_json's
    if state.get("cleared"):
        with contextlib.suppress(OSError):
            _clear(out)
    for d in state.get("made", []):
        with contextlib.suppress(OSError):
            d.rmdir()  # only if empty: a folder holding anything else stays


def _table1() -> dict[str, dict[str, int]]:
    """Table 1's training samples from the catalogue (none if it cannot be read: stats only lose the column)."""
    from dfprep.catalogue import load_catalogue
    from dfprep.core.errors import ConfigError

    try:
        cat = load_catalogue()
    except ConfigError:
        return {}
    return {n: dict(e.samples) for n, e in cat.datasets.items() if e.samples}


def run_balance(
    extract_dirs: Sequence[str | Path],
    out: str | Path,
    cfg: BalanceConfig | None = None,
    client=None,
    progress: Progress | None = None,
    retries: int = 2,
) -> BalanceResult:
    """Select, reshard and report. `client`: a dask.distributed Client, or None to run here.

    Whatever stops it (Ctrl-C raises BalanceInterrupted, a KeyboardInterrupt, SIGTERM its
    subclass BalanceTerminated; a full disk a WriteError), what it wrote is removed, finished
    shards included, and sizes.json is not written."""
    out = output_dir(out).resolve()  # tasks may run on other machines, in other directories
    state: dict = {"phase": "select", "done": 0, "total": 0}
    created = [p for p in (out, *out.parents) if not p.exists()]  # removed again if it fails

    def track(phase: str, done: int, total: int) -> None:
        state.update(phase=phase, done=done, total=total)
        if progress:
            progress(phase, done, total)

    try:
        with output_lock(out, "dfprep balance"):
            try:
                return _balance(
                    extract_dirs, out, cfg or BalanceConfig(), client, track, retries, state
                )
            except BaseException as e:
                _remove_partial(out, state)
                if isinstance(e, KeyboardInterrupt):
                    raise _interrupted(state, out, isinstance(e, Terminated)) from None
                raise
    except BaseException:
        for d in created:  # innermost first; only if empty
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


def _interrupted(state: dict, out: Path, terminated: bool) -> BalanceInterrupted:
    """What the run was doing when Ctrl-C came, and that nothing was published."""
    what = {
        "select": "selecting crops",
        "read": "reading the source shards",
        "write": "writing the output shards",
    }.get(state["phase"], state["phase"])
    tasks = f" ({state['done']} of {state['total']} tasks done)" if state["total"] else ""
    return (BalanceTerminated if terminated else BalanceInterrupted)(
        f"{'terminated (SIGTERM)' if terminated else 'interrupted'} while {what}{tasks}; nothing was published in {out} (sizes.json is "
        "written last): rerun the same command"
    )


def _balance(
    extract_dirs,
    out: Path,
    cfg: BalanceConfig,
    client,
    progress: Progress,
    retries: int,
    state: dict,
) -> BalanceResult:
    t0 = time.time()
    pool = read_pool(list(extract_dirs))
    if len(pool.index) == 0:
        raise InputError(
            f"no crops in {', '.join(map(str, extract_dirs))} (no complete shard with faces)"
        )
    selection = select_crops(pool.index, cfg)
    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    state["cleared"] = True
    state["made"] = [out / s for s in BALANCED_SPLITS if not (out / s).exists()]
    for split in BALANCED_SPLITS:
        (out / split).mkdir(exist_ok=True)
    buckets = out / BUCKETS
    buckets.mkdir()

    # pass 1: each source shard once -> one bucket file each
    sel = selection.table
    by_source = sel.group_by("source").aggregate([]).column("source").to_pylist()
    bucket_of: dict[int, str] = {s: str(buckets / f"{s:06d}.parquet") for s in sorted(by_source)}
    tasks = []
    for s, path in bucket_of.items():
        picks = sel.filter(pc.equal(sel["source"], s)).select(
            ["key", "label", "out_shard", "out_pos"]
        )
        tasks.append((bucket_source, pool.sources[s], picks, path))
    counts = _run(tasks, client, "read", progress, retries)
    if sum(counts) != len(sel):
        raise InputError(f"read {sum(counts)} selected crops from the sources, expected {len(sel)}")

    # pass 2: each output shard from the buckets that feed it
    feeds = sel.group_by(["out_shard", "source"]).aggregate([])
    feed_of: dict[str, list[str]] = {}
    for name, s in zip(feeds["out_shard"].to_pylist(), feeds["source"].to_pylist(), strict=True):
        feed_of.setdefault(name, []).append(bucket_of[s])
    tasks = []
    for split in BALANCED_SPLITS:
        for name, n in selection.shard_sizes.get(split, {}).items():
            tasks.append((write_shard, str(out / split / name), sorted(feed_of.get(name, [])), n))
    written = _run(tasks, client, "write", progress, retries)
    shutil.rmtree(buckets, ignore_errors=True)

    sizes = {split: dict(selection.shard_sizes.get(split, {})) for split in BALANCED_SPLITS}
    got = {w["name"]: w["count"] for w in written}
    for split in BALANCED_SPLITS:
        for name, n in sizes[split].items():
            if got.get(name) != n:
                raise InputError(
                    f"{out / split / name}: wrote {got.get(name)} samples, expected {n}"
                )

    with writing(out / "selection.parquet"):
        pq.write_table(_selection_table(selection, pool.sources), out / "selection.parquet")
    stats = compute_stats(pool, selection, cfg, reference=_table1())
    with writing(out / "stats.*"):
        write_json(out / "stats.json", stats)
        write_text(out / "stats.md", stats_markdown(stats))
        plot_stats(stats, out / "stats.png")
    write_sizes(out, sizes)  # last: marks the output complete
    notes = [n for plan in selection.plans.values() for n in plan.notes]
    if pool.skipped:
        notes.append(
            f"{len(pool.skipped)} incomplete extract shard(s) skipped (no stats file), e.g. {pool.skipped[0]}"
        )
    return BalanceResult(
        out, sizes, stats, time.time() - t0, len(bucket_of), sum(w["bytes"] for w in written), notes
    )
