"""Ctrl-C noticed wherever it lands.

Python turns SIGINT into a KeyboardInterrupt at the next bytecode, but when that is inside a C
extension's import or a callback, what surfaces is another error (for example `ImportError:
initialization failed`), which a driver would record as a failed job and exit 1. The watch
remembers that the signal came, so such an error can be turned back into the interrupt it was.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def interrupt_watch() -> Iterator[Callable[[], bool]]:
    """Yields `seen()`: whether SIGINT arrived inside the block. The previous handler still runs
    (the default one raises KeyboardInterrupt); an ignored SIGINT stays ignored."""
    seen = False
    prev = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or prev is signal.SIG_IGN:
        yield lambda: False
        return

    def handler(signum, frame):
        nonlocal seen
        seen = True
        if callable(prev):
            prev(signum, frame)
        else:  # SIG_DFL, or a handler installed outside Python
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: seen
    finally:
        signal.signal(signal.SIGINT, prev)
