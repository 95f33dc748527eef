"""Rich progress and summary tables for the CLI (the library never prints)."""

from __future__ import annotations

import threading
from collections import defaultdict

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text


class RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} videos/s" if speed else "- videos/s", style="progress.data.speed")


class ExtractProgress:
    """Counts per-video events from the workers; thread-safe (Dask calls back from its own thread)."""

    def __init__(self, console: Console | None = None, enabled: bool = True):
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]extract"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("videos · {task.fields[crops]} crops · {task.fields[failed]} failed ·"),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not enabled,
            refresh_per_second=4,
        )
        self.task = self.progress.add_task("extract", total=None, crops=0, failed=0)
        self._lock = threading.Lock()
        self._seen: dict[str, int] = defaultdict(int)
        self.crops = 0
        self.failed = 0
        self._started = False

    def __enter__(self) -> ExtractProgress:
        return self  # the bar appears once the plan is known (bad input fails before that)

    def __exit__(self, *exc) -> None:
        if self._started:
            self.progress.stop()

    def on_plan(self, total: int, done: int) -> None:
        if not self._started:
            self.progress.start()
            self._started = True
        self.progress.reset(self.task, total=total, completed=0, crops=0, failed=0)
        if done:
            # resumed shards are not re-timed: keep them out of the rate and the ETA
            self.progress.update(self.task, total=total - done)
            self.progress.console.print(f"resuming: {done} of {total} videos already extracted")

    def on_event(self, ev: dict) -> None:
        if "dashboard" in ev:  # once, when the Dask client is up
            self.progress.console.print(
                f"Dask: {ev['workers']} worker(s), dashboard {ev['dashboard']}", highlight=False
            )
            return
        if "detector" in ev:  # once, before the work: where faces are detected (GPU mode)
            self.progress.console.print(
                f"detect: {ev['detector']}", highlight=False, soft_wrap=True
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
            self.progress.update(self.task, advance=advance, crops=self.crops, failed=self.failed)


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
