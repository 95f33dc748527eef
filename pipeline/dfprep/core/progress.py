"""Progress of long work, for a person at a terminal and for a log alike (both command lines).

On a terminal a live rich bar; anywhere else (a redirected log, `dvc repro`'s output, CI) a plain
line every few seconds with done/total, rate, elapsed time and ETA, and a last line when the work
ends, so a log shows that a ten-minute stage is alive and how long it has left: every EVERY
seconds for the first minute, then less often (a tenth of the time elapsed, at most a minute
apart), whether or not a unit of work ended in between. `mode="off"` (the commands'
`--no-progress`) shows nothing at all. Thread-safe: Dask reports from its own thread.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, as_completed
from typing import Any

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
from rich.text import Text

from dfprep.core.cli import console as default_console

__all__ = [
    "EVERY",
    "MODES",
    "PROGRESS_HELP",
    "Count",
    "Phases",
    "Reporter",
    "clock_text",
    "progress_mode",
    "track_futures",
]

Count = Callable[[int, int], None]  # how a library function reports: count(done, total)
EVERY = 5.0  # seconds between two lines in a log, at first
LONGEST = 60.0  # ... and at most, however long the work
PROGRESS_HELP = (
    "Progress: a bar on a terminal, a line every few seconds in a log; --no-progress: none."
)
MODES = ("auto", "bar", "lines", "off")


def progress_mode(value: bool | str) -> str:
    """A command's --progress/--no-progress (True/False), or a mode, as a mode."""
    if value is True:
        return "auto"
    if value is False:
        return "off"
    if value not in MODES:
        raise ValueError(f"progress mode {value!r} is not one of {', '.join(MODES)}")
    return str(value)


def clock_text(seconds: float) -> str:
    """4:05, 1:02:03; '?' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _rate_text(rate: float, unit: str) -> str:
    return f"{rate:.2f} {unit}/s" if rate >= 0.995 or rate == 0 else f"{60 * rate:.1f} {unit}/min"


class _DetailColumn(ProgressColumn):
    def __init__(self, reporter: Reporter):
        super().__init__()
        self.reporter = reporter

    def render(self, task) -> Text:
        return Text(self.reporter.detail_text(), style="progress.data.speed")


class _RateColumn(ProgressColumn):
    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(
            _rate_text(speed, self.unit) if speed else f"- {self.unit}/s", "progress.data.speed"
        )


class Reporter:
    """Counts `unit`s of work done out of `total` and shows it (see the module's docstring).

    `detail(fields)` turns the fields given to `advance`/`update` (crops, loss, ...) into the text
    shown after the counts. `mode`: auto (a bar on a terminal, else lines) | bar | lines | off."""

    def __init__(
        self,
        label: str,
        unit: str,
        *,
        total: int | None = None,
        mode: bool | str = "auto",
        console: Console | None = None,
        every: float = EVERY,
        detail: Callable[[dict[str, Any]], str] | None = None,
        transient: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label, self.unit, self.every = label, unit, every
        self.console = console or default_console
        mode = progress_mode(mode)
        if mode == "auto":
            mode = "bar" if self.console.is_terminal else "lines"
        self.mode = mode
        self.fields: dict[str, Any] = {}
        self._detail = detail
        self._clock = clock
        self._lock = threading.RLock()
        self.total, self.done = total, 0
        self._t0 = self._last = None
        self._bar: Progress | None = None
        self._task = None
        self._transient = transient
        self._closed = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- the numbers ------------------------------------------------------------------------
    def detail_text(self) -> str:
        return self._detail(self.fields) if self._detail and self.fields else ""

    def elapsed(self) -> float:
        return 0.0 if self._t0 is None else self._clock() - self._t0

    def rate(self) -> float:
        t = self.elapsed()
        return self.done / t if t > 0 else 0.0

    def interval(self) -> float:
        """Seconds between two lines in a log now (see the module's docstring)."""
        return min(LONGEST, max(self.every, self.elapsed() / 10))

    def eta(self) -> float | None:
        rate = self.rate()
        if self.total is None or rate <= 0:
            return None
        return max(0.0, self.total - self.done) / rate

    def line(self, final: bool = False) -> str:
        """The line a log gets: 'extract: 120/700 videos (17%) · 2.31 videos/s · 0:52 elapsed ·
        ETA 4:11 · 1,234 crops'."""
        if self.total:
            counts = (
                f"{self.done:,}/{self.total:,} {self.unit} ({100 * self.done / self.total:.0f}%)"
            )
        else:
            counts = f"{self.done:,} {self.unit}"
        parts = [f"{self.label}: {counts}"]
        if self.done:
            parts.append(_rate_text(self.rate(), self.unit))
        if final:
            parts.append(f"done in {clock_text(self.elapsed())}")
        else:
            parts.append(f"{clock_text(self.elapsed())} elapsed")
            if self.total and self.done:
                parts.append(f"ETA {clock_text(self.eta())}")
        detail = self.detail_text()
        return " · ".join(parts + ([detail] if detail else []))

    # -- driving it -------------------------------------------------------------------------
    def start(self, total: int | None = None, **fields: Any) -> Reporter:
        """(Re)start the count at 0 of `total`; the clock starts here."""
        with self._lock:
            self.total, self.done = total, 0
            self.fields.update(fields)
            self._t0 = self._last = self._clock()
            self._closed = False
            if self.mode == "bar":
                if self._bar is None:
                    self._bar = Progress(
                        TextColumn(f"[bold]{escape(self.label)}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn(escape(self.unit)), _DetailColumn(self), _RateColumn(self.unit),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                        console=self.console, refresh_per_second=4, transient=self._transient,
                    )  # fmt: skip
                    self._bar.start()
                    self._task = self._bar.add_task(self.label, total=total)
                else:
                    self._bar.reset(self._task, total=total, completed=0)
            elif self.mode == "lines":
                self._print(self.line())
                if self._beat is None or not self._beat.is_alive():
                    self._stop.clear()
                    self._beat = threading.Thread(target=self._heartbeat, daemon=True)
                    self._beat.start()
        return self

    def _heartbeat(self) -> None:
        """A line when none came for an interval (long units of work: a 4K video, an epoch)."""
        while not self._stop.wait(min(1.0, self.every)):
            self._tick()

    def _tick(self) -> None:
        with self._lock:
            if self._closed or self._t0 is None:
                return
            now = self._clock()
            if now - self._last >= self.interval():
                self._last = now
                self._print(self.line())

    def advance(self, n: int = 1, **fields: Any) -> None:
        self.update(completed=self.done + n, **fields)

    def update(self, completed: int | None = None, total: int | None = None, **fields: Any) -> None:
        with self._lock:
            if self._t0 is None:
                self.start(total if total is not None else self.total)
            if total is not None:
                self.total = total
            if completed is not None:
                self.done = completed
            self.fields.update(fields)
            if self.mode == "bar" and self._bar is not None:
                self._bar.update(self._task, completed=self.done, total=self.total)
            elif self.mode == "lines":
                self._tick()

    def log(self, message: str) -> None:
        """A message among the progress (above the bar on a terminal)."""
        if self.mode != "off":
            self._print(message)

    def close(self) -> None:
        """Stop the bar; in a log, the last line (once, and only if the work started)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
            elif self.mode == "lines" and self._t0 is not None:
                self._print(self.line(final=True))
            beat = self._beat
        if beat is not None:
            beat.join(timeout=5)

    def _print(self, text: str) -> None:
        self.console.print(escape(text), highlight=False, soft_wrap=True)

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track_futures(futures: Sequence[Future], count: Count | None) -> None:
    """Wait for FUTURES, calling count(done, total) as each one ends (their errors are left for
    `.result()` to raise, in the caller's order)."""
    if count is None:
        return
    count(0, len(futures))
    for done, _ in enumerate(as_completed(futures), 1):
        count(done, len(futures))


class Phases:
    """A callback(phase, done, total) that shows each phase of a piece of work in turn: a Reporter
    each, labelled `label phase`, counting `units[phase]`. `close()` at the end."""

    def __init__(self, label: str, units: dict[str, str], mode: bool | str = "auto"):
        self.label, self.units, self.mode = label, units, mode
        self.phase: str | None = None
        self.bar: Reporter | None = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase != self.phase:
            self.close()
            self.phase = phase
            unit = self.units.get(phase, "tasks")
            self.bar = Reporter(f"{self.label} {phase}", unit, mode=self.mode).start(total)
        self.bar.update(completed=done, total=total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
