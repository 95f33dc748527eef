"""The one error path of both command lines (`dfprep`, `dftrain`).

A `DfprepError` becomes one red line on stderr, `error: <message>`, and the exit status of its
class (`DfprepError.exit_code`: 2 for bad input or parameters, 3 for a diverged training run; see
`dfprep.core.errors`), never a traceback. The message is escaped for rich markup, so a path such as
`ffpp [v2].parquet` prints as it is.

Two more things end every command the same way: an OSError that says the disk refused a write
(full, read-only, over quota, a file too large) is one line, exit 2, like the `WriteError`s the
writers raise themselves; SIGTERM raises `Terminated` (see `dfprep.core.signals`), and a command
that does not handle it otherwise ends with one line and exit status 143.
"""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from dfprep.core.errors import DfprepError, WriteError, first_line
from dfprep.core.signals import Terminated, exit_code, terminate_as_interrupt

F = TypeVar("F", bound=Callable[..., Any])

console = Console(stderr=True)


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
