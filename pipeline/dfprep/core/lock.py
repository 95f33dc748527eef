"""One run at a time per output folder: every command that writes a folder holds `OUT/.dfprep.lock`.

A second run on the same folder is refused at once, in one line naming the holder (command, PID,
host, start time): two runs writing one folder remove and replace each other's files.

How a holder is known to be alive:
- The lock is a kernel lock (`flock`) on the file, held while the run lives; the kernel drops it
  when the process ends, however it ends (Ctrl-C, SIGTERM, kill -9, a crash), so a lock file left
  by a dead run is taken over by the next one. The file also records who holds it, for the message.
- A record that names this host whose PID is gone (or is another process now: its start time
  differs) is stale too, also on file systems where `flock` does nothing.
- A record that names another host cannot be checked from here: on NFS, `flock` covers other
  clients only where the mount supports locking, and a crashed host's lock file stays behind.
  Such a lock is refused, and the message says so and names the file to remove once that run is
  known to be over.

The file is removed when the run ends normally, so a finished output holds no trace of it.
(`filelock` does the kernel part but keeps no holder record in the versions the project allows.)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from dfprep.core.atomic import writing
from dfprep.core.errors import InputError

__all__ = ["LOCK_NAME", "LockHeld", "output_lock"]

LOCK_NAME = ".dfprep.lock"


class LockHeld(InputError):
    """Another run holds the output folder (exit status 2: nothing was done)."""


def _started(pid: int) -> float | None:
    """A process's start time (what tells it from a later process that reuses its PID)."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def _record(command: str) -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "since": time.time(),
        "started": _started(os.getpid()),
    }


def _read(fd: int) -> dict | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 1 << 16) or b"null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive_here(holder: dict) -> bool:
    """Whether a holder recorded on this host still runs (the same process, not a PID reuse)."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    started = _started(pid)
    if started is None:
        return False
    recorded = holder.get("started")
    return not isinstance(recorded, (int, float)) or abs(started - recorded) < 1.0


def _who(holder: dict | None) -> str:
    if not holder:
        return "another run"
    since = holder.get("since")
    when = (
        time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(since))
        if isinstance(since, (int, float)) and since > 0
        else ""
    )
    return (
        f"{holder.get('command') or 'another run'} (PID {holder.get('pid', '?')} on "
        f"{holder.get('host', '?')}{when})"
    )


def _refuse(folder: Path, path: Path, holder: dict | None, here: str) -> LockHeld:
    who = _who(holder)
    if holder and holder.get("host") not in (None, here):
        return LockHeld(
            f"{folder}: locked by {who}; a lock from another host cannot be checked from {here}: "
            f"if that run is over, remove {path}"
        )
    return LockHeld(f"{folder}: in use by {who}: wait for it to end, or choose another output")


def _acquire(folder: Path, command: str) -> tuple[int, Path]:
    path = folder / LOCK_NAME
    here = socket.gethostname()
    while True:
        with writing(path):
            folder.mkdir(parents=True, exist_ok=True)
            # never through a link: a planted .dfprep.lock would have us overwrite its target
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise _refuse(folder, path, holder, here) from None
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # its holder removed it between our open and our lock: start again
            os.close(fd)
            continue
        holder = _read(fd)
        if holder and (holder.get("host") != here or _alive_here(holder)):
            os.close(fd)  # another host's, or a live one that flock did not stop
            raise _refuse(folder, path, holder, here)
        try:
            with writing(path):
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, json.dumps(_record(command)).encode())
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd, path


@contextlib.contextmanager
def output_lock(folder: str | Path, command: str) -> Iterator[Path]:
    """Hold FOLDER for COMMAND ("dfprep extract") while the block runs; a folder another live run
    holds is a `LockHeld` error naming it. FOLDER is made if need be, and removed again if the
    block left it empty. Yields the lock file's path."""
    folder = Path(folder)
    created = not folder.exists()
    fd, path = _acquire(folder, command)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still locked: nobody can take it in between
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
