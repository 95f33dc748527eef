"""Progress for a person and for a log (`dfprep.core.progress`, both command lines) and output that
is never wrapped when it does not go to a terminal (`dfprep.core.cli`)."""

from __future__ import annotations

import io
import logging
import time

import pytest
from rich.console import Console

from dfprep.core.cli import WIDE, log_handler, make_console
from dfprep.core.progress import Phases, Reporter, track_futures


def _log_console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=WIDE, soft_wrap=True), buf


def test_in_a_log_a_line_every_few_seconds_with_counts_rate_and_eta():
    console, buf = _log_console()
    now = [100.0]
    r = Reporter("extract", "videos", console=console, clock=lambda: now[0], every=5.0,
                 detail=lambda f: f"{f['crops']} crops")  # fmt: skip
    assert r.mode == "lines"  # not a terminal
    r.start(10, crops=0)
    for i in range(10):
        now[0] += 2.0
        r.advance(1, crops=3 * (i + 1))
    r.close()
    lines = buf.getvalue().splitlines()
    assert lines[0] == "extract: 0/10 videos (0%) · 0:00 elapsed · 0 crops"
    assert lines[1] == (
        "extract: 3/10 videos (30%) · 30.0 videos/min · 0:06 elapsed · ETA 0:14 · 9 crops"
    )  # a line once 5 s have passed, not one per video
    assert len(lines) == 5
    assert lines[-1] == "extract: 10/10 videos (100%) · 30.0 videos/min · done in 0:20 · 30 crops"


def test_lines_come_less_often_as_the_work_grows_long_and_without_any_unit_done():
    r = Reporter("x", "items", console=_log_console()[0], clock=lambda: 0.0)
    r._t0 = 0.0
    assert r.interval() == 5.0
    r._clock = lambda: 300.0
    assert r.interval() == 30.0  # a tenth of the time elapsed
    r._clock = lambda: 36000.0
    assert r.interval() == 60.0  # at most a minute apart
    console, buf = _log_console()
    slow = Reporter("synth", "videos", console=console, every=0.2)
    slow.start(3)
    time.sleep(0.9)  # no video done: the heartbeat still says where it is
    slow.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) >= 3 and all(ln.startswith("synth: 0/3 videos") for ln in lines)


def test_off_shows_nothing_and_a_terminal_gets_a_bar():
    console, buf = _log_console()
    with Reporter("eval", "crops", console=console, mode=False) as r:
        r.start(5)
        r.advance(5)
    assert buf.getvalue() == ""
    term = Console(file=io.StringIO(), force_terminal=True, width=120)
    with Reporter("eval", "crops", console=term) as r:
        assert r.mode == "bar"
        r.start(5)
        r.advance(5)
    assert "eval" in term.file.getvalue() and "5/5" in term.file.getvalue()
    with pytest.raises(ValueError, match="progress mode"):
        Reporter("x", "y", mode="sometimes")


def test_phases_and_futures_report_each_step():
    from concurrent.futures import ThreadPoolExecutor

    seen = []
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(time.sleep, 0.01) for _ in range(4)]
        track_futures(futures, lambda done, total: seen.append((done, total)))
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    show = Phases("balance", {"read": "source shards", "write": "shards"}, mode=False)
    bars = []
    for phase, total in (("read", 3), ("write", 2)):
        for done in range(total + 1):
            show(phase, done, total)
        bars.append(show.bar)
        assert (show.bar.label, show.bar.unit, show.bar.done) == (
            f"balance {phase}",
            {"read": "source shards", "write": "shards"}[phase],
            total,
        )
    show.close()
    assert show.bar is None and bars[0] is not bars[1]


def test_output_that_is_not_for_a_terminal_is_never_wrapped(capsys):
    row = "| " + " | ".join(f"column {i} with a long name" for i in range(8)) + " |"
    out = make_console()  # stdout is captured here: not a terminal
    assert not out.is_terminal and out.width == WIDE
    out.print(row)
    assert capsys.readouterr().out.splitlines() == [row]
    handler = log_handler()  # plain lines, not rich's width-padded records
    assert type(handler) is logging.StreamHandler
    rec = logging.LogRecord("x", logging.WARNING, "", 0, "a message", None, None)
    assert handler.format(rec) == "WARNING a message"
