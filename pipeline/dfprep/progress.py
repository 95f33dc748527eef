"""Extract's progress and summary table for the CLI (the library never prints)."""

from __future__ import annotations

import threading
from collections import defaultdict

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dfprep.core.progress import Reporter


class ExtractProgress:
    """Counts per-video events from the workers and shows them (`dfprep.core.progress.Reporter`:
    a bar on a terminal, a line every few seconds in a log); thread-safe (Dask calls back from its
    own thread)."""

    def __init__(self, console: Console | None = None, enabled: bool | str = True):
        self.reporter = Reporter(
            "extract",
            "videos",
            mode=enabled,
            console=console,
            detail=lambda f: f"{f['crops']:,} crops · {f['failed']:,} failed",
        )
        self.console = self.reporter.console
        self._lock = threading.Lock()
        self._seen: dict[str, int] = defaultdict(int)
        self.crops = 0
        self.failed = 0

    def __enter__(self) -> ExtractProgress:
        return self  # the count starts once the plan is known (bad input fails before that)

    def __exit__(self, *exc) -> None:
        self.reporter.close()

    def on_plan(self, total: int, done: int) -> None:
        if done:
            # resumed shards are not re-timed: keep them out of the rate and the ETA
            self.reporter.log(f"resuming: {done} of {total} videos already extracted")
        self.reporter.start(total - done, crops=0, failed=0)

    def on_event(self, ev: dict) -> None:
        if "dashboard" in ev:  # once, when the Dask client is up
            self.reporter.log(f"Dask: {ev['workers']} worker(s), dashboard {ev['dashboard']}")
            return
        if "retrying" in ev:  # once, before the work
            self.console.print(
                f"retrying {ev['retrying']} video(s) that failed for a reason that can pass "
                "(file missing, time limit, I/O error): their shards are redone",
                markup=False, highlight=False, soft_wrap=True,
            )  # fmt: skip
            return
        if "detector" in ev:  # once, before the work: where faces are detected (GPU mode)
            self.console.print(
                f"detect: {ev['detector']}", markup=False, highlight=False, soft_wrap=True
            )
            return
        with self._lock:
            shard = ev.get("shard", "")
            if ev.get("job_done"):
                missing = max(0, int(ev.get("videos", 0)) - self._seen[shard])
                self._seen[shard] += missing
                advance = missing
            else:
                self._seen[shard] += 1
                self.crops += int(ev.get("crops", 0))
                self.failed += ev.get("status") == "failed"
                advance = 1
            self.reporter.advance(advance, crops=self.crops, failed=self.failed)


def summary_table(s) -> Table:
    t = Table(title=f"dfprep extract -> {escape(str(s.out))}", show_header=True)
    for col in (
        "jobs",
        "resumed",
        "videos",
        "ok",
        "no face",
        "failed",
        "crops",
        "seconds",
        "videos/s",
    ):
        t.add_column(col, justify="right")
    rate = f"{s.videos_run / s.seconds:.2f}" if s.seconds > 0 and s.videos_run else "-"
    t.add_row(
        f"{s.jobs}" + (f" ({len(s.failed_jobs)} failed)" if s.failed_jobs else ""),
        str(s.skipped),
        str(s.videos),
        str(s.ok),
        str(s.no_face),
        str(s.failed),
        str(s.crops),
        f"{s.seconds:.1f}",
        rate,
    )
    return t
