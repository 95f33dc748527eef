"""dfprep extract: manifests -> fixed shard jobs -> (decode -> detect -> crop) per video -> shards.

The manifest is cut into shard jobs of N videos in video-id order before any work starts, so a
shard's content never depends on scheduling. On Dask every video is its own task, so every core
is busy whatever the number of jobs, to the last video of the run; the driver writes each shard
from its videos' results in manifest order, so its bytes never depend on which worker ran what,
or when. This module is the driver side (the plan, the Dask run, the summary); what a worker
runs, one video (and, inline, one whole shard job), is `dfprep.extract_worker`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dfprep import pairing
from dfprep.config import ExtractConfig, Params, replace
from dfprep.core.atomic import write_json
from dfprep.core.signals import interrupt_watch
from dfprep.errors import InputError
from dfprep.extract_worker import (  # noqa: F401  (process_video, VideoResult: dftrain.predict's API)
    JobWriter,
    ShardJob,
    VideoResult,
    VideoTimeout,
    crop_label,
    encode_jpeg,
    one_line,
    process_video,
    reference_part,
    result_part,
    run_shard_job,
    run_video,
)
from dfprep.manifest import read_manifest
from dfprep.outputs import output_dir
from dfprep.shard import ShardFiles, remove_stale_tmp, shard_name, writing


def manifest_prefix(path: Path) -> str:
    """Shard name prefix of a manifest: its file stem, made safe."""
    stem = path.name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9_]", "_", stem) or "manifest"


def job_hash(cfg: ExtractConfig, rows: list[dict]) -> str:
    """What the shard's bytes depend on: the output params and the videos' ids and labels.

    The path is left out on purpose: moving a dataset to another disk does not redo its shards;
    a mask's path is reduced to whether there is one. Columns added later are left out at their
    default value (`faces: detect`, no original, no mask), so older shards stay valid.
    """
    unset = {"faces": "detect", "original_id": "", "mask_path": ""}
    content = [
        {
            k: (bool(v) if k == "mask_path" else v)
            for k, v in r.items()
            if k != "path" and not (k in unset and v == unset[k])
        }
        for r in rows
    ]
    blob = json.dumps([cfg.params_hash(), content], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def plan_jobs(manifests: list[Path], out_dir: Path, cfg: ExtractConfig) -> list[ShardJob]:
    jobs: list[ShardJob] = []
    seen_prefix: dict[str, Path] = {}
    seen_ids: dict[str, Path] = {}
    n = cfg.shard.videos_per_shard  # >= 1: validated with the config
    for m in manifests:
        m = Path(m)
        prefix = manifest_prefix(m)
        if prefix in seen_prefix:
            raise InputError(
                f"manifests {seen_prefix[prefix]} and {m} would write the same shard names ({prefix}-*); rename one"
            )
        seen_prefix[prefix] = m
        rows = sorted(read_manifest(m).to_pylist(), key=lambda r: r["video_id"])
        for r in rows:
            if r["video_id"] in seen_ids:
                raise InputError(
                    f"video id {r['video_id']!r} is in both {seen_ids[r['video_id']]} and {m}"
                )
            seen_ids[r["video_id"]] = m
        # a fake and its original in one job, so the original is decoded once (dfprep.pairing);
        # without pairs (or pair.select: off) these are the video-id chunks of n videos
        for i, chunk in enumerate(pairing.pack(pairing.groups(rows, cfg.pair.select), n)):
            jobs.append(
                ShardJob(
                    shard_name(prefix, i),
                    str(out_dir / "shards"),
                    tuple(chunk),
                    job_hash(cfg, chunk),
                    str(m.resolve()),
                )
            )
    return jobs


def resolve_threads(cfg: ExtractConfig, run) -> ExtractConfig:
    """Decoder and detector threads of a process running one video at a time: explicit values,
    else its share of the cores (see `threads_per_worker`)."""
    from dfprep.distribute import threads_per_worker

    return replace(
        cfg,
        decode=replace(cfg.decode, threads=threads_per_worker(run, cfg.decode.threads)),
        detect=replace(cfg.detect, threads=threads_per_worker(run, cfg.detect.threads)),
    )


# ---- driver --------------------------------------------------------------------------------


@dataclass
class ExtractSummary:
    out: str
    jobs: int = 0
    skipped: int = 0  # complete from an earlier run
    done: int = 0
    videos_run: int = 0  # videos processed by this run (excludes resumed shards)
    failed_jobs: list[tuple[str, str]] = field(default_factory=list)
    videos: int = 0
    ok: int = 0
    no_face: int = 0
    failed: int = 0
    crops: int = 0
    paired: int = 0  # fakes whose faces were chosen against their original or mask
    pairing_fallbacks: dict = field(default_factory=dict)  # reason -> fakes (largest faces kept)
    faces_dropped: int = 0  # faces of paired fakes left out as unmanipulated
    seconds: float = 0.0
    interrupted: bool = False
    errors: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def check_owners(jobs: list[ShardJob], shards_dir: Path) -> None:
    """Refuse to touch shards that another manifest of the same file name wrote into this folder.

    Shard names come from the manifest's file name; each shard's stats record the manifest that
    wrote it. Shards without that record (older runs) count as this manifest's."""
    ours = {j.name.rsplit("-", 1)[0]: j.manifest for j in jobs}
    if not shards_dir.is_dir():
        return
    for p in sorted(shards_dir.glob("*.stats.json")):
        prefix = p.name[: -len(".stats.json")].rsplit("-", 1)[0]
        if prefix not in ours:
            continue
        owner = (ShardFiles(shards_dir, p.name[: -len(".stats.json")]).read_stats() or {}).get(
            "manifest"
        )
        if owner and ours[prefix] and owner != ours[prefix]:
            raise InputError(
                f"{shards_dir}: shards {prefix}-* were written from manifest {owner}; {ours[prefix]} has the "
                "same file name and would replace them: rename one manifest or use another --out "
                "(or pass --overwrite to replace them)"
            )


def prepare_out(jobs: list[ShardJob], out: Path, overwrite: bool) -> tuple[list[ShardJob], int]:
    """Remove temporary and stale files; return the jobs still to run and the number kept."""
    shards_dir = out / "shards"
    if not overwrite:
        check_owners(jobs, shards_dir)
    with writing(shards_dir):
        shards_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(shards_dir)
    planned = {j.name for j in jobs}
    prefixes = {j.name.rsplit("-", 1)[0] for j in jobs}
    for p in shards_dir.glob("*.stats.json"):  # shards of an older plan of the same manifests
        name = p.name[: -len(".stats.json")]
        if name.rsplit("-", 1)[0] in prefixes and name not in planned:
            ShardFiles(shards_dir, name).remove()
    pending = []
    for j in jobs:
        files = ShardFiles(j.shards_dir, j.name)
        if overwrite:
            files.remove()  # else a worker would take the old files for a finished first attempt
        if overwrite or not files.is_complete(j.params_hash):
            pending.append(j)
    return pending, len(jobs) - len(pending)


def summarize(jobs: list[ShardJob], out: Path, summary: ExtractSummary) -> ExtractSummary:
    """Totals from the stats files on disk (the authority, whichever run wrote them)."""
    errors: Counter = Counter()
    summary.videos = summary.ok = summary.no_face = summary.failed = summary.crops = 0
    summary.paired = summary.faces_dropped = 0
    fallbacks: Counter = Counter()
    for j in jobs:
        stats = ShardFiles(j.shards_dir, j.name).read_stats()
        if not stats or stats.get("params_hash") != j.params_hash:
            continue
        summary.videos += stats["videos"]
        summary.ok += stats["ok"]
        summary.no_face += stats["no_face"]
        summary.failed += stats["failed"]
        summary.crops += stats["crops"]
        errors.update(stats.get("errors", {}))
        pairing_counts = stats.get("pairing", {})
        summary.paired += pairing_counts.get("diff", 0) + pairing_counts.get("mask", 0)
        fallbacks.update({k: v for k, v in pairing_counts.items() if k.startswith("fallback:")})
        summary.faces_dropped += stats.get("faces_dropped", 0)
    summary.errors = dict(errors.most_common(20))
    summary.pairing_fallbacks = dict(fallbacks.most_common(20))
    with writing(out / "extract.json"):
        write_json(out / "extract.json", summary.as_dict(), newline=False, sort_keys=True)
    return summary


def run_extract(
    manifests: list[str | Path],
    out: str | Path,
    params: Params | None = None,
    *,
    client=None,
    overwrite: bool = False,
    on_event: Callable[[dict], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
) -> ExtractSummary:
    """Run (or resume) an extraction. `client`: a dask Client, "inline" (no Dask), or None (make
    one from params.run). `on_plan(total_videos, already_done_videos)` and `on_event(event)`
    drive a progress display."""
    from dfprep.distribute import check_memory_limit, local_sink, make_client, remote_address

    params = params or Params()
    cfg = params.extract
    if not manifests:
        raise InputError("no manifest given")
    check_memory_limit(params.run)
    out = output_dir(out)
    if client is None and remote_address(params.run):
        # connect first: an unreachable scheduler is one error line, before any file is written
        with make_client(params.run) as c:
            return run_extract(
                manifests,
                out,
                params,
                client=c,
                overwrite=overwrite,
                on_event=on_event,
                on_plan=on_plan,
            )
    jobs = plan_jobs([Path(m) for m in manifests], out, cfg)
    pending, kept = prepare_out(jobs, out, overwrite)
    summary = ExtractSummary(out=str(out), jobs=len(jobs), skipped=kept)
    if on_plan:
        on_plan(
            sum(len(j.videos) for j in jobs), sum(len(j.videos) for j in jobs if j not in pending)
        )
    t0 = time.time()
    sink = on_event or (lambda e: None)
    with interrupt_watch() as interrupted:
        try:
            if not pending:
                pass
            elif client == "inline" or params.run.scheduler == "inline":
                cfg = resolve_threads(
                    cfg, replace(params.run, scheduler="inline")
                )  # one video at a time
                with local_sink(sink):
                    for j in pending:
                        try:
                            run_shard_job(j, cfg, params.run.video_timeout)
                            summary.done += 1
                            summary.videos_run += len(j.videos)
                        except Exception as e:
                            if interrupted():  # Ctrl-C inside an import or a C callback
                                raise KeyboardInterrupt from e
                            summary.failed_jobs.append((j.name, one_line(e)))
            elif client is not None:
                _run_on(client, pending, cfg, params, summary, sink, interrupted)
            else:
                with make_client(params.run) as c:
                    _run_on(c, pending, cfg, params, summary, sink, interrupted)
        except KeyboardInterrupt:
            summary.interrupted = True
        except Exception:
            if not interrupted():
                raise
            summary.interrupted = True  # Ctrl-C surfaced as another error (see dfprep.core.signals)
        finally:
            summary.seconds = round(time.time() - t0, 3)
            summarize(jobs, out, summary)
    return summary


# A Dask run: one task per video, results written in manifest order by the driver -------------

# Results the driver may hold while they wait for an earlier video of their shard (a slow video
# holds up only its own shard's writing, not the workers); past it, no new video is submitted.
MAX_WAITING_BYTES = 512 << 20


@dataclass
class Held:
    """Bytes of results held back, all jobs of a run together."""

    bytes: int = 0


class OrderedJob:
    """One shard job assembled from per-video results that arrive in any order: each result is
    written as soon as every earlier video of the job has been, so the bytes follow the manifest."""

    def __init__(self, job: ShardJob, held: Held | None = None, select: str = "auto"):
        self.job = job
        self.writer: JobWriter | None = None  # opened with the first video written
        self.waiting: dict[int, VideoResult] = {}
        self.held = held or Held()
        self.failed = False
        # pairs inside the job: fake -> its original's position; originals -> fakes still to run
        self.fakes_of = pairing.original_positions(job.videos, select)
        self.originals = set(self.fakes_of.values())
        self.waiting_fakes = Counter(self.fakes_of.values())

    @property
    def written(self) -> int:
        return self.writer.added if self.writer else 0

    @property
    def complete(self) -> bool:
        return self.written == len(self.job.videos)

    def add(self, i: int, result: VideoResult) -> None:
        """Video i of the job (its position in the manifest order) is done."""
        self.waiting[i] = result
        self.held.bytes += result.nbytes
        while self.written in self.waiting:
            r = self.waiting.pop(self.written)
            self.held.bytes -= r.nbytes
            if self.writer is None:
                self.writer = JobWriter(self.job)
            self.writer.add(r)

    def abort(self) -> None:
        self.failed = True
        self.held.bytes -= sum(r.nbytes for r in self.waiting.values())
        self.waiting.clear()
        if self.writer is not None:
            self.writer.abort()


def _run_on(
    client,
    pending: list[ShardJob],
    cfg: ExtractConfig,
    params: Params,
    summary: ExtractSummary,
    sink: Callable[[dict], None],
    interrupted: Callable[[], bool] = lambda: False,
) -> None:
    """Every video of the pending jobs as its own Dask task, in manifest order, at most a couple
    per worker thread ahead of the workers (so all cores stay busy to the last video whatever the
    number of jobs); the driver writes each shard from its videos' results in manifest order."""
    import uuid
    from collections import deque

    from distributed import as_completed

    from dfprep.distribute import task_slots

    slots = task_slots(client)
    sink({"dashboard": client.dashboard_link, "workers": len(client.nthreads())})
    cfg = task_config(cfg, client, sum(len(j.videos) for j in pending))
    held = Held()
    jobs = [OrderedJob(j, held, cfg.pair.select) for j in pending]
    queue = deque((oj, i) for oj in jobs for i in range(len(oj.job.videos)))
    run_id = uuid.uuid4().hex[:8]
    futures: dict = {}  # future -> (OrderedJob, video position)
    refs: dict = {}  # (job name, original's position) -> the future of its reference
    blocked: dict = {}  # future of a fake -> its original (job name, position), not back yet
    originals_back: set = set()
    done = as_completed()
    last_slots = time.monotonic()

    def submit_more() -> None:
        nonlocal slots, last_slots
        if time.monotonic() - last_slots > 5:  # workers come and go (adaptive clusters, deaths)
            slots, last_slots = task_slots(client), time.monotonic()
        # a fake waiting for its original's task does not count: the workers would sit idle
        while (
            queue
            and len(futures) - len(blocked) < 2 * slots
            and (held.bytes < MAX_WAITING_BYTES or not futures)
        ):
            oj, i = queue.popleft()
            if oj.failed:
                continue
            row = oj.job.videos[i]
            key = f"{oj.job.name}-{i:06d}-{run_id}"
            extra = {}
            if i in oj.fakes_of:  # a paired fake: its task waits for its original's reference
                extra["reference"] = refs.get((oj.job.name, oj.fakes_of[i]))
            if i in oj.originals:
                extra["want_reference"] = True
            fut = client.submit(
                run_video,
                row,
                cfg,
                params.run.video_timeout,
                **extra,
                key=f"dfprep-video-{key}",
                retries=params.run.retries,
                pure=False,
            )
            if i in oj.originals:  # its crops come back; its frames stay on the cluster
                ref = client.submit(
                    reference_part, fut, key=f"dfprep-reference-{key}", retries=params.run.retries
                )
                refs[(oj.job.name, i)] = ref
                fut = client.submit(
                    result_part, fut, key=f"dfprep-result-{key}", retries=params.run.retries
                )
            elif i in oj.fakes_of and (oj.job.name, oj.fakes_of[i]) not in originals_back:
                blocked[fut] = (oj.job.name, oj.fakes_of[i])
            futures[fut] = (oj, i)
            done.add(fut)

    def unblock(oj: OrderedJob, i: int) -> None:
        """Video I of OJ came back: if an original, its fakes can run now."""
        if i in oj.originals:
            originals_back.add((oj.job.name, i))
            for f in [f for f, k in blocked.items() if k == (oj.job.name, i)]:
                del blocked[f]

    def release(oj: OrderedJob, i: int | None = None) -> None:
        """Forget the references no fake of OJ still needs (all of them when I is None)."""
        if i is not None and i in oj.fakes_of:
            o = oj.fakes_of[i]
            oj.waiting_fakes[o] -= 1
            if oj.waiting_fakes[o] == 0:
                refs.pop((oj.job.name, o), None)
        elif i is None:
            for o in oj.originals:
                refs.pop((oj.job.name, o), None)

    def fail(oj: OrderedJob, e: BaseException) -> None:
        release(oj)
        oj.abort()
        mine = [f for f, (o, _) in futures.items() if o is oj]
        for f in mine:
            del futures[f]
            blocked.pop(f, None)
        if mine:
            client.cancel(mine)
        summary.failed_jobs.append((oj.job.name, one_line(e)))
        sink({"shard": oj.job.name, "job_done": True, "videos": len(oj.job.videos)})

    try:
        submit_more()
        for fut in done:
            oj, i = futures.pop(fut, (None, 0))
            blocked.pop(fut, None)
            if oj is None or oj.failed:  # a cancelled video of a failed job
                continue
            try:
                result = fut.result()
            except Exception as e:  # its worker died retries + 1 times, or the task raised
                if interrupted():  # Ctrl-C inside an import or a C callback
                    raise KeyboardInterrupt from e
                fail(oj, e)
                submit_more()
                continue
            del fut
            unblock(oj, i)
            release(oj, i)
            st = result.status_row
            sink({"shard": oj.job.name, "status": st["status"], "crops": st["crops"]})
            try:
                oj.add(i, result)
                if oj.complete:
                    oj.writer.commit(cfg)
                    summary.done += 1
                    summary.videos_run += len(oj.job.videos)
                    sink({"shard": oj.job.name, "job_done": True, "videos": len(oj.job.videos)})
                    jobs.remove(oj)
            except Exception as e:  # the disk: this job is lost, the others go on
                if interrupted():
                    raise KeyboardInterrupt from e
                fail(oj, e)
            submit_more()
    except BaseException:
        if futures:
            client.cancel(list(futures))
        raise
    finally:
        for oj in jobs:  # not committed (a committed job has left the list): drop its temporary tar
            oj.abort()


def task_config(cfg: ExtractConfig, client, videos: int) -> ExtractConfig:
    """cfg with the threads of one video task on this cluster (see `threads_per_task`)."""
    from dfprep.distribute import threads_per_task

    share = threads_per_task(client, 0, videos)  # asked once: it asks every worker
    return replace(
        cfg,
        decode=replace(cfg.decode, threads=cfg.decode.threads or share),
        detect=replace(cfg.detect, threads=cfg.detect.threads or share),
    )
