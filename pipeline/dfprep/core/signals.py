"""Ctrl-C and SIGTERM noticed wherever they land.

SIGTERM is what schedulers send before they kill a job (Slurm's scancel and time limit, Kubernetes,
systemd). Python's default would end the process at once, with no summary and temporary files
left behind; here it raises `Terminated`, a KeyboardInterrupt, so that whatever cleans up after
Ctrl-C (temporary files, a half-written shard, the output lock, the summary) runs after SIGTERM
too. A command ended by SIGINT exits 130, by SIGTERM 143 (128 + the signal's number), as a shell
reports a process the signal killed.

Python turns SIGINT into a KeyboardInterrupt at the next bytecode, but when that is inside a C
extension's import or a callback, what surfaces is another error (for example `ImportError:
initialization failed`), which a driver would record as a failed job and exit 1. The watch
remembers that a signal came, so such an error can be turned back into the interrupt it was.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from dfprep.core.errors import EXIT_INTERRUPTED, EXIT_TERMINATED


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C (see the module's docstring)."""


def exit_code(e: BaseException) -> int:
    """The exit status of a command ended by this interrupt: 143 after SIGTERM, else 130."""
    return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_terminated(signum, frame):
    raise Terminated("terminated (SIGTERM)")


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises `Terminated` (in the main thread; an ignored SIGTERM
    stays ignored)."""
    if not _main_thread() or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return
    prev = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, prev)


class Watch:
    """What `interrupt_watch` yields: called, whether SIGINT or SIGTERM arrived; `signal`, which
    ("SIGINT", "SIGTERM" or "")."""

    def __init__(self) -> None:
        self.signal = ""

    def __call__(self) -> bool:
        return bool(self.signal)


@contextlib.contextmanager
def interrupt_watch() -> Iterator[Watch]:
    """Yields a `Watch` of the block: SIGINT's previous handler still runs (the default one raises
    KeyboardInterrupt), SIGTERM raises `Terminated`; an ignored signal stays ignored."""
    watch = Watch()
    if not _main_thread():
        yield watch
        return
    prev = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        watch.signal = signal.Signals(signum).name
        before = prev[signum]
        if signum == signal.SIGTERM and before in (signal.SIG_DFL, None):
            _raise_terminated(signum, frame)
        if callable(before):
            before(signum, frame)
        else:  # SIG_DFL, or a handler installed outside Python
            raise KeyboardInterrupt

    for s, before in prev.items():
        if before is not signal.SIG_IGN:
            signal.signal(s, handler)
    try:
        yield watch
    finally:
        for s, before in prev.items():
            if before is not signal.SIG_IGN:
                signal.signal(s, before if before is not None else signal.SIG_DFL)
