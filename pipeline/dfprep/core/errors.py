"""User-facing errors: the CLIs print these as one line and exit with `exit_code`, never a traceback.

Exit statuses of `dfprep` and `dftrain` (docs/parameters.md, "Exit status"):
0 done; 1 the work ran but part of it failed (a shard job, a video with --strict, `verify` found
problems, `predict` could not score a video); 2 bad input or a bad parameter, refused before any
work starts; 3 training diverged (the loss became NaN/inf); 130 interrupted (Ctrl-C); 143
terminated (SIGTERM, as schedulers send it).
"""

from __future__ import annotations

import errno

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM: what a shell reports for a process SIGTERM ended

# errnos of a read that can succeed later (the file back, the network file system answering, the
# permission fixed, memory or handles free again): what makes a video's failure transient
# (dfprep.extract.failures)
TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ENOENT", "EIO", "ESTALE", "ETIMEDOUT", "EAGAIN", "EINTR", "ENOMEM", "EMFILE", "ENFILE",
        "EBUSY", "EACCES", "EPERM", "ENOTCONN", "ECONNRESET", "ECONNABORTED", "EHOSTDOWN",
        "EHOSTUNREACH", "ENETDOWN", "ENETUNREACH", "ENOLINK", "EREMOTEIO", "ENXIO",
    )
    if hasattr(errno, name)
)  # fmt: skip


class DfprepError(Exception):
    """An error caused by the user's input (a path, a file, a parameter); the message names the culprit."""

    exit_code = EXIT_BAD_INPUT


class InputError(DfprepError):
    """A dataset root, metadata file or manifest that is missing or malformed."""


class ConfigError(DfprepError):
    """An unknown or invalid parameter."""


class DetectorError(DfprepError):
    """A run's detector process failed or stopped answering (the run's fault, not a video's): the
    run stops, its finished shards are kept."""

    exit_code = EXIT_FAILED


class WriteError(DfprepError, OSError):
    """An output that cannot be written (disk full, file too large, read-only): names the file.

    Still an OSError (with the original errno) for callers that catch those."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno

    def __reduce__(self):  # the errno survives the trip back from a Dask worker
        return (type(self), (str(self), self.errno))


def first_line(e: BaseException | str) -> str:
    """The first line of an error's message, surrounding blank space removed ("" for an empty
    message; never raises, unlike `str(e).splitlines()[0]`)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def one_line(e: BaseException) -> str:
    """An error as one line for a status row or a summary: ours as they are (they name a path,
    which may itself hold a line break, escaped here), others prefixed with their type."""
    if isinstance(e, DfprepError):
        return str(e).strip().replace("\r", "\\r").replace("\n", "\\n") or type(e).__name__
    msg = first_line(e)
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__
