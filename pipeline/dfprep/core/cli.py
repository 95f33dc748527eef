"""The one error path of both command lines (`dfprep`, `dftrain`).

A `DfprepError` becomes one red line on stderr, `error: <message>`, and the exit status of its
class (`DfprepError.exit_code`: 2 for bad input or parameters, 3 for a diverged training run; see
`dfprep.core.errors`), never a traceback. The message is escaped for rich markup, so a path such as
`ffpp [v2].parquet` prints as it is. `console` (stderr) and `stdout` fit a terminal and never wrap
what goes to a log.

Two more things end every command the same way: an OSError that says the disk refused a write
(full, read-only, over quota, a file too large) is one line, exit 2, like the `WriteError`s the
writers raise themselves; SIGTERM raises `Terminated` (see `dfprep.core.signals`), and a command
that does not handle it otherwise ends with one line and exit status 143.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from dfprep.core.errors import DfprepError, WriteError, first_line
from dfprep.core.signals import Terminated, exit_code, terminate_as_interrupt

F = TypeVar("F", bound=Callable[..., Any])

WIDE = 10_000  # the width of a console that is not a terminal: tables at their natural width


def make_console(stderr: bool = False) -> Console:
    """A console that fits a terminal, and never wraps what goes to a log, a pipe or a file (rich
    would hard-wrap it at 80 columns, splitting every row of a Markdown table)."""
    c = Console(stderr=stderr)
    return c if c.is_terminal else Console(stderr=stderr, width=WIDE, soft_wrap=True)


console = make_console(stderr=True)  # messages, progress, errors
stdout = make_console()  # results: tables, reports


def log_handler() -> logging.Handler:
    """Where a command's log records go: rich's handler on a terminal, plain `LEVEL message`
    lines on stderr anywhere else (rich's would pad every line to the console's width)."""
    if console.is_terminal:
        from rich.logging import RichHandler

        return RichHandler(console=console, show_time=False, show_path=False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return handler


def message(e: BaseException) -> str:
    """The one line that describes e: its message's first line. An error raised in a PyTorch
    DataLoader worker arrives re-raised with the worker's whole traceback as its message: then
    the original message, the traceback's last line without its `module.Class: ` prefix."""
    text = str(e)
    if "Original Traceback" in text:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        cls = type(e)
        return last.removeprefix(f"{cls.__module__}.{cls.__qualname__}: ") or cls.__name__
    return first_line(text) or type(e).__name__


def esc(x: object) -> str:
    """Any value (a path) as text that rich prints literally, brackets included."""
    return escape(str(x))


def print_error(text: str, out: Console | None = None) -> None:
    """`error: text` in red on stderr, markup-safe, never wrapped."""
    (out or console).print(f"[red]error:[/red] {escape(text)}", highlight=False, soft_wrap=True)


def fail(e: DfprepError, out: Console | None = None) -> typer.Exit:
    """Print e as one line; the typer.Exit to raise, with e's exit status."""
    print_error(message(e), out)
    return typer.Exit(getattr(e, "exit_code", 2))


# errnos that mean the storage refused a write (never a bug of ours, never a bad input file)
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def write_error(e: OSError) -> WriteError | None:
    """An OSError the storage raised on a write, as a one-line WriteError naming the file."""
    if e.errno not in WRITE_ERRNOS:
        return None
    where = e.filename if e.filename is not None else "the output"
    return WriteError(f"cannot write {where}: {os.strerror(e.errno)}", e.errno)


def handle_errors(fn: F) -> F:
    """Decorate a typer command: a DfprepError ends it with one line and its exit status, so does
    a write the storage refused (exit 2), and SIGTERM (exit 143)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with terminate_as_interrupt():
                return fn(*args, **kwargs)
        except DfprepError as e:
            raise fail(e) from None
        except Terminated as e:
            print_error(str(e) or "terminated (SIGTERM)")
            raise typer.Exit(exit_code(e)) from None
        except OSError as e:
            w = write_error(e)
            if w is None:
                raise
            raise fail(w) from None

    return wrapper  # type: ignore[return-value]


def add_version(app: typer.Typer, tool: str, version: str, help: str) -> None:
    """`TOOL --version` on APP (the same option on both command lines); HELP: the app's help."""

    def show(value: bool) -> None:
        if value:
            print(f"{tool} {version}")
            raise typer.Exit()

    @app.callback(help=help)
    def main(
        version: bool = typer.Option(
            False, "--version", callback=show, is_eager=True, help="Print the version and exit."
        ),
    ) -> None:
        pass


def comma_list(text: str | None, words: Mapping[str, Any] | None = None) -> tuple | None:
    """A comma-separated option as a tuple for a config field: integers as int, `words` mapped
    ({"auto": -1}), anything else kept as text for the field's rule to refuse, naming the option;
    None (unset) stays None."""
    if text is None:
        return None
    words = words or {}
    items = [w.strip() for w in text.split(",") if w.strip()]
    return tuple(
        words[w] if w in words else int(w) if w.lstrip("-").isdigit() else w for w in items
    )
