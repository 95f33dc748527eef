"""A decode worker's side of extract's GPU mode: the detector it is given is a proxy of its host's
detector process (`dfprep.detectors.service`), which it starts when there is none yet.

`DetectorProcesses` is what a run hands its tasks (picklable): the detection settings, the device
kind, the batch, and the run's id and key. A worker finds its host's process for its GPU by a
socket path made of the run's id and the device, in a folder only the user can enter; the first
worker of a host to need it starts it (a file lock keeps it to one), so the mode works the same
inline, on a LocalCluster and on a remote cluster of GPU hosts, without anything started by hand.
`proxy_for` is a worker thread's proxy for a run.

`DetectorClient.submit` scales the frames here, on the worker's core (a 640x360 frame crosses
the socket, not a 1080p one), sends them and returns at once; `PendingFaces.result()` waits for
the faces, so the worker decodes its next chunk meanwhile (`dfprep.extract.video`).

Never hang: a reply that takes more than `timeout` seconds means the process is hung (it is killed
and started again); a process that dies is started again and the chunks it had are sent again
(detection is a pure function of the frame, so the faces are the same). A second failure in a
row raises `DetectorError`, which stops the run (not a failed video: `process_video` re-raises
it); so does a process that cannot start, with the last line of its log.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Client, Connection
from pathlib import Path

import numpy as np

from dfprep.config import DetectConfig
from dfprep.core.errors import DetectorError
from dfprep.detectors.base import Face, check_images, handshake, socket_timeouts
from dfprep.detectors.letterbox import prepare

__all__ = [
    "DetectorClient",
    "DetectorProcesses",
    "PendingFaces",
    "process_stats",
    "proxy_for",
    "stop_processes",
]

RESTARTS = 1  # a detector process may die (or hang) once in a row; the next time is an error
SERVICE = "dfprep.detectors.service"


@dataclass(frozen=True)
class DetectorProcesses:
    """A run's detector processes, as its tasks see them."""

    detect: DetectConfig
    device: str  # "cuda": one process per GPU of each host | "cpu": one per host
    batch: int  # frames per forward (run.detect_batch on CUDA)
    run_id: str
    authkey: bytes
    gpus: tuple[tuple[str, int], ...] = ()  # (host, GPUs) of a remote cluster's hosts
    local_gpus: int = 1  # GPUs of a host not listed (this host, inline or a LocalCluster)
    timeout: float = 60.0  # seconds a chunk may take before its process counts as hung
    startup_timeout: float = 300.0  # seconds a process may take to start (CUDA, the weights)
    idle: float = 30.0  # a process with no worker connected for this long exits
    max_wait: float = 0.01  # seconds a frame waits for a full batch

    def device_for(self, host: str, slot: int) -> str:
        """The device a worker uses: its slot (a worker number) modulo its host's GPUs."""
        if self.device == "cpu":
            return "cpu"
        return f"cuda:{slot % max(1, dict(self.gpus).get(host, self.local_gpus))}"

    def address(self, device: str) -> Path:
        return _folder() / f"{self.run_id}-{device.replace(':', '')}.sock"


def _folder() -> Path:
    """This user's folder for the sockets, lock files and logs (mode 0700, checked)."""
    base = Path(tempfile.gettempdir())
    if len(str(base)) > 60:  # a Unix socket path has at most 107 bytes
        base = Path("/tmp")
    folder = base / f"dfprep-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise DetectorError(f"{folder}: not a private folder of this user (mode {st.st_mode:o})")
    return folder


def _slot() -> tuple[str, int]:
    """(host as Dask sees it, a worker number) of this process; ("", 0) outside a worker."""
    try:
        from distributed import get_worker
        from distributed.comm import get_address_host

        worker = get_worker()
    except (ImportError, ValueError):
        return "", 0
    name = worker.name
    slot = name if isinstance(name, int) else zlib.crc32(str(name).encode())
    return get_address_host(worker.address), int(slot)


# --- starting and stopping a process ----------------------------------------------------------

_started: list[subprocess.Popen] = []  # ours, reaped when they end


def _log_tail(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def _sweep(folder: Path, older_than: float = 600.0) -> None:
    """Remove the files of earlier runs' detector processes that are gone (a run killed with
    kill -9 cannot remove its own); recent ones are left alone (a run may be restarting one)."""
    import psutil

    for pid_file in folder.glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            if time.time() - pid_file.stat().st_mtime < older_than:
                continue
            pid = int(pid_file.read_text())
            with contextlib.suppress(psutil.Error):
                if SERVICE in " ".join(psutil.Process(pid).cmdline()):
                    continue  # still running
            stem = pid_file.name[: -len(".pid")]
            for path in folder.glob(f"{stem}.*"):
                path.unlink()


def _start(spec: DetectorProcesses, device: str, address: Path) -> None:
    """Start the process for DEVICE and wait until it listens (under the caller's lock)."""
    import dfprep

    _sweep(address.parent)
    with contextlib.suppress(FileNotFoundError):
        address.unlink()  # a dead process's socket
    log = address.with_suffix(".log")
    env = dict(os.environ)
    root = str(Path(dfprep.__file__).resolve().parents[1])  # this dfprep, whatever the cwd
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    settings = {
        "detect": asdict(spec.detect),
        "device": device,
        "batch": spec.batch,
        "address": str(address),
        "authkey": spec.authkey.hex(),
        "idle": spec.idle,
        "max_wait": spec.max_wait,
    }
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", SERVICE, spec.run_id, device],  # named for ps and `stop`
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            close_fds=True,
        )
    _started.append(proc)
    address.with_suffix(".pid").write_text(str(proc.pid))
    proc.stdin.write((json.dumps(settings) + "\n").encode())
    proc.stdin.close()
    deadline = time.monotonic() + spec.startup_timeout
    while not address.exists():
        if proc.poll() is not None:
            raise DetectorError(
                f"the detector process on {device} did not start (exit status "
                f"{proc.returncode}): {_log_tail(log) or 'no message'}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise DetectorError(
                f"the detector process on {device} did not start within {spec.startup_timeout:g} s"
            )
        time.sleep(0.05)


def _connect(spec: DetectorProcesses, device: str) -> tuple[Connection, dict]:
    """A connection to DEVICE's process of this host, started first if there is none (or if
    the one there is hung: it is killed)."""
    address = spec.address(device)
    for p in list(_started):
        if p.poll() is not None:
            _started.remove(p)
    with contextlib.suppress(OSError, EOFError):
        return _hello(address, spec)
    with open(address.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker starts it; the others find it
        try:
            return _hello(address, spec)
        except TimeoutError:  # there, silent: hung (stopped processes accept connections)
            _kill_recorded(address)
        except (OSError, EOFError):  # not there, or dead
            pass
        _start(spec, device, address)
        try:
            return _hello(address, spec)
        except (OSError, EOFError) as e:
            _kill_recorded(address)
            raise DetectorError(f"the detector process on {device} does not answer: {e}") from e


def _kill_recorded(address: Path) -> None:
    """SIGKILL the process recorded for ADDRESS (if it is a detector process)."""
    import psutil

    with contextlib.suppress(ValueError, OSError, psutil.Error):
        proc = psutil.Process(int(address.with_suffix(".pid").read_text()))
        if SERVICE in " ".join(proc.cmdline()):  # never another process that took the pid
            proc.kill()


def _hello(address: Path, spec: DetectorProcesses) -> tuple[Connection, dict]:
    """A connection to ADDRESS, authenticated, and the process's info; TimeoutError when it
    does not answer in time (a stopped process still accepts connections)."""
    conn = Client(str(address), "AF_UNIX")
    try:
        socket_timeouts(conn, spec.timeout, spec.timeout)  # never block on a hung process
        handshake(conn, spec.authkey, first=False)
        conn.send(("hello",))
        if not conn.poll(spec.timeout):
            raise TimeoutError(f"no answer from {address} in {spec.timeout:g} s")
        _, info = conn.recv()
    except BlockingIOError as e:
        conn.close()
        raise TimeoutError(f"no answer from {address} in {spec.timeout:g} s") from e
    except BaseException:
        conn.close()
        raise
    return conn, info


def process_stats(spec: DetectorProcesses, device: str) -> dict:
    """What DEVICE's process of this host has done: forwards, frames, requests (and its info);
    {} when it is not running."""
    try:
        conn, info = _hello(spec.address(device), spec)
    except (OSError, EOFError):
        return {}
    with conn:
        conn.send(("stats",))
        if not conn.poll(spec.timeout):
            return {}
        return {**conn.recv()[1], **info}


def stop_processes(spec: DetectorProcesses) -> int:
    """End the run's detector processes on this host (SIGTERM, then SIGKILL after 5 s) and remove
    their files; returns how many were running. Never raises."""
    import psutil

    try:
        folder = _folder()
    except (OSError, DetectorError):
        return 0
    stopped = 0
    procs = []
    pids = {p.pid for p in _started if spec.run_id in " ".join(map(str, p.args))}
    for pid_file in folder.glob(f"{spec.run_id}-*.pid"):
        with contextlib.suppress(ValueError, OSError):
            pids.add(int(pid_file.read_text()))
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if SERVICE in " ".join(proc.cmdline()):  # never another process that took the pid
                proc.terminate()
                procs.append(proc)
    if procs:
        _, alive = psutil.wait_procs(procs, timeout=5)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        stopped = len(procs)
    for p in list(_started):
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=1)
            _started.remove(p)
    for path in folder.glob(f"{spec.run_id}-*"):
        with contextlib.suppress(OSError):
            path.unlink()
    return stopped


# --- the proxy a worker detects with ----------------------------------------------------------


class PendingFaces:
    """The faces of a chunk sent to the detector process, once they are back."""

    def __init__(self, client: DetectorClient, rid: int):
        self.client, self.rid = client, rid

    def result(self) -> list[list[Face]]:
        return self.client.result(self.rid)

    def cancel(self) -> None:
        self.client.cancel(self.rid)


class DetectorClient:
    """The detector of a worker in GPU mode (one per thread): `submit`, `detect`."""

    name = "retinaface-mnet-torch"

    def __init__(self, spec: DetectorProcesses, device: str):
        self.spec, self.device = spec, device
        self.conn: Connection | None = None
        self.info: dict = {}
        self.next_id = 0
        self.sent: dict[int, list] = {}  # chunks sent and not answered, by id
        self.done: dict[int, list[list[Face]]] = {}
        self.failures = 0  # in a row

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return self.submit(images).result()

    def submit(self, images: Sequence[np.ndarray]) -> PendingFaces:
        """Scale IMAGES to their detection size and send them; the faces come with `result`."""
        check_images(images)
        frames = [prepare(image, self.spec.detect.max_size) for image in images]
        rid, self.next_id = self.next_id, self.next_id + 1
        self.sent[rid] = frames
        try:
            if self.conn is None:
                self._open()
            else:
                self._send(rid, frames)
        except (OSError, EOFError) as e:
            self._failed(e)
        return PendingFaces(self, rid)

    def result(self, rid: int) -> list[list[Face]]:
        deadline = time.monotonic() + self.spec.timeout
        while rid not in self.done:
            if rid not in self.sent:
                raise KeyError(f"detector request {rid}: cancelled or never sent")
            try:
                if self.conn is None:
                    self._open()
                if not self.conn.poll(max(0.0, deadline - time.monotonic())):
                    self._kill()
                    self._lost(f"did not answer within {self.spec.timeout:g} s")
                    deadline = time.monotonic() + self.spec.timeout
                    continue
                got, faces, error = self.conn.recv()
            except (OSError, EOFError) as e:
                self._failed(e)
                deadline = time.monotonic() + self.spec.timeout
                continue
            if error:
                self.sent.pop(got, None)
                raise DetectorError(f"the detector process on {self.device}: {error}")
            if self.sent.pop(got, None) is not None:  # else: a cancelled chunk's late answer
                self.done[got] = faces
                self.failures = 0
        return self.done.pop(rid)

    def cancel(self, rid: int) -> None:
        """Forget a chunk (its video stopped): its late answer is dropped."""
        self.sent.pop(rid, None)
        self.done.pop(rid, None)

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
            self.conn = None

    # --- internals --------------------------------------------------------------------------

    def _send(self, rid: int, frames: list) -> None:
        self.conn.send(("detect", rid, [(*f.size, *f.source) for f in frames]))
        for f in frames:
            self.conn.send_bytes(np.ascontiguousarray(f.image).reshape(-1))  # bytes, not rows

    def _open(self) -> None:
        """Connect (starting the process if needed) and send every chunk still unanswered."""
        self.conn, self.info = _connect(self.spec, self.device)
        for rid, frames in self.sent.items():
            self._send(rid, frames)

    def _lost(self, why: str) -> None:
        """The process died or hung: start it again and send the unanswered chunks again, or
        raise after RESTARTS failures in a row."""
        self.close()
        self.failures += 1
        if self.failures > RESTARTS:
            self.failures = 0
            log = _log_tail(self.spec.address(self.device).with_suffix(".log"))
            raise DetectorError(
                f"the detector process on {self.device} {why}, {RESTARTS + 1} times in a row"
                + (f"; its last message: {log}" if log else "")
            )
        try:
            self._open()
        except (OSError, EOFError) as e:
            self._failed(e)

    def _failed(self, e: BaseException) -> None:
        """A send or receive failed: the process died, or (a send that timed out) is hung."""
        if isinstance(e, (BlockingIOError, TimeoutError)):
            self._kill()
            self._lost(f"did not read within {self.spec.timeout:g} s")
        else:
            self._lost(f"went away ({type(e).__name__})")

    def _kill(self) -> None:
        pid = self.info.get("pid")
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


_clients = threading.local()


def proxy_for(processes: DetectorProcesses) -> DetectorClient:
    """This thread's proxy of its host's detector process for PROCESSES (kept for the run's later
    tasks; an earlier run's is closed)."""
    client = getattr(_clients, "client", None)
    if client is None or client.spec != processes:
        if client is not None:
            client.close()
        host, slot = _slot()
        client = DetectorClient(processes, processes.device_for(host, slot))
        _clients.client = client
    return client
