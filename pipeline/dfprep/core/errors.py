"""User-facing errors: the CLIs print these as one line and exit with `exit_code`, never a traceback.

Exit statuses of `dfprep` and `dftrain` (README, "Exit status"):
0 done; 1 the work ran but part of it failed (a shard job, a video with --strict, `verify` found
problems, `predict` could not score a video); 2 bad input or a bad parameter, refused before any
work starts; 3 training diverged (the loss became NaN/inf); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130


class DfprepError(Exception):
    """An error caused by the user's input (a path, a file, a parameter); the message names the culprit."""

    exit_code = EXIT_BAD_INPUT


class InputError(DfprepError):
    """A dataset root, metadata file or manifest that is missing or malformed."""


class ConfigError(DfprepError):
    """An unknown or invalid parameter."""


def first_line(e: BaseException | str) -> str:
    """The first line of an error's message, surrounding blank space removed ("" for an empty
    message; never raises, unlike `str(e).splitlines()[0]`)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else ""
