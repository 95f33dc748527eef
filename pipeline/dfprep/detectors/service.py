"""The detector process of extract's GPU mode: one per GPU of a host, it detects the frames that
every decode worker of the host sends, in batches across videos, and returns each request's faces.

    python -m dfprep.detectors.service RUN_ID DEVICE    (its settings as one JSON line on stdin;
                                                       the arguments only name it for ps)

`dfprep.detectors.client` starts it and talks to it; nothing else does.

A request is a chunk of one video's frames, already scaled to their detection size by the worker
(`letterbox.prepare`). Frames wait in one queue per detection size (every 16:9 video is detected
at 640x360, so the queues are few and batches fill). A forward takes `batch` frames of one size,
or fewer once the oldest of them has waited `max_wait` seconds. `BatchedDetector` runs every CUDA
forward at exactly `batch` frames, so a frame's faces never depend on which frames shared its
forward: the shards do not depend on timing. A request is answered when its last frame is done.

Messages (`multiprocessing.connection`, on a Unix socket in a folder only the user can enter,
authenticated with the run's random key):

- worker -> process: `("hello",)`; `("detect", id, [(w, h, source_w, source_h), ...])` followed
  by each frame's RGB bytes; `("stats",)`; `("stop",)`.
- process -> worker: `("hello", info)`; `(id, faces per frame, "")` or `(id, None, error)`;
  `("stats", {"forwards": n, "frames": n, "requests": n})`.

Memory is bounded by the workers: each has at most a couple of chunks in flight
(`dfprep.extract.video`), so the queues hold at most workers x 2 x `detect.batch_size` frames.

It exits on `("stop",)`, on SIGTERM, after a CUDA error (the clients start a fresh one), and once
no worker has been connected for `idle` seconds (a run killed with kill -9 leaves nothing running
for long). It ignores SIGINT: Ctrl-C in a terminal reaches the whole process group, and the
driver stops the detector itself once the run is cancelled.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener

import numpy as np

from dfprep.config import DetectConfig
from dfprep.detectors.base import handshake, socket_timeouts
from dfprep.detectors.letterbox import Prepared

__all__ = ["Batcher", "main"]

REPLY_TIMEOUT = 10.0  # seconds a reply (a few KB) or the handshake may wait for a worker


@dataclass
class _Request:
    """One worker's chunk of frames: its faces fill in as its frames are detected."""

    conn: Connection
    send_lock: threading.Lock
    rid: int
    faces: list
    left: int
    failed: bool = False

    def reply(self, message: tuple) -> None:
        try:
            with self.send_lock:
                self.conn.send(message)
        except (OSError, ValueError):  # the worker went away: nobody to tell
            pass


@dataclass
class _Item:
    arrived: float
    request: _Request
    index: int
    frame: Prepared


@dataclass
class Batcher:
    """The queues and the batching rule, apart from sockets and torch (tests drive it directly):
    `put` a request's frames, `next_batch` takes the frames of the next forward."""

    batch: int
    max_wait: float
    queues: dict[tuple[int, int], deque[_Item]] = field(default_factory=dict)
    cv: threading.Condition = field(default_factory=threading.Condition)
    stopping: bool = False

    def put(self, request: _Request, frames: list[Prepared]) -> None:
        now = time.monotonic()
        with self.cv:
            for i, frame in enumerate(frames):
                self.queues.setdefault(frame.size, deque()).append(_Item(now, request, i, frame))
            self.cv.notify_all()

    def stop(self) -> None:
        with self.cv:
            self.stopping = True
            self.cv.notify_all()

    def next_batch(self, idle: callable = lambda: False) -> list[_Item] | None:
        """The frames of the next forward, all of one size: a full batch when one is waiting,
        else those of the size whose oldest frame has waited `max_wait`; None once stopping, or
        when `idle()` says so while nothing waits."""
        with self.cv:
            while not self.stopping:
                waiting = [q for q in self.queues.values() if q]
                if not waiting:
                    if idle():
                        return None
                    self.cv.wait(timeout=1.0)
                    continue
                full = [q for q in waiting if len(q) >= self.batch]
                oldest = min(full or waiting, key=lambda q: q[0].arrived)
                age = time.monotonic() - oldest[0].arrived
                if full or age >= self.max_wait:
                    return [oldest.popleft() for _ in range(min(self.batch, len(oldest)))]
                self.cv.wait(timeout=self.max_wait - age)
            return None


def answer(items: list[_Item], faces: list[list]) -> None:
    """Route each frame's faces to its request; answer every request whose last frame this was."""
    for item, found in zip(items, faces, strict=True):
        request = item.request
        request.faces[item.index] = found
        request.left -= 1
        if request.left == 0 and not request.failed:
            request.reply((request.rid, request.faces, ""))


def refuse(items: list[_Item], error: str) -> None:
    for request in {id(i.request): i.request for i in items}.values():
        if not request.failed:
            request.failed = True
            request.reply((request.rid, None, error))


class Server:
    """The listener, a reader thread per worker, and the batching loop (the main thread)."""

    def __init__(
        self,
        detector,
        listener: Listener,
        authkey: bytes,
        batcher: Batcher,
        idle: float,
        info: dict,
    ):
        self.detector, self.listener, self.batcher = detector, listener, batcher
        self.authkey, self.idle, self.info = authkey, idle, info
        self.clients = 0
        self.last_seen = time.monotonic()
        self.stats = {"forwards": 0, "frames": 0, "requests": 0}

    def serve(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()
        while (items := self.batcher.next_batch(self._idle)) is not None:
            try:
                faces = self.detector.detect_prepared([i.frame for i in items])
            except Exception as e:
                error = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
                print(f"detector process: {error}", file=sys.stderr, flush=True)
                refuse(items, error)
                if "CUDA" in str(e) or "cuda" in type(e).__module__:
                    return  # the context may be broken: the workers start a fresh process
                continue
            self.stats["forwards"] += 1
            self.stats["frames"] += len(items)
            answer(items, faces)

    def _idle(self) -> bool:
        with self.batcher.cv:
            return self.clients == 0 and time.monotonic() - self.last_seen > self.idle

    def _accept(self) -> None:
        while not self.batcher.stopping:
            try:
                conn = self.listener.accept()
            except Exception:  # the listener closed, or out of file handles: no busy loop
                if self.batcher.stopping:
                    return
                time.sleep(0.1)
                continue
            with self.batcher.cv:
                self.clients += 1
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: Connection) -> None:
        lock = threading.Lock()
        try:
            # the handshake here, not in accept(): a worker stuck in it holds up only itself
            socket_timeouts(conn, REPLY_TIMEOUT, REPLY_TIMEOUT)
            handshake(conn, self.authkey, first=True)
            socket_timeouts(conn, REPLY_TIMEOUT, 0)  # a worker may send nothing for long
            while True:
                message = conn.recv()
                if message[0] == "detect":
                    _, rid, shapes = message
                    frames = [_frame(conn.recv_bytes(), *shape) for shape in shapes]
                    request = _Request(conn, lock, rid, [None] * len(frames), len(frames))
                    self.stats["requests"] += 1
                    if frames:
                        self.batcher.put(request, frames)
                    else:
                        request.reply((rid, [], ""))
                elif message[0] in ("hello", "stats"):
                    with lock:
                        conn.send((message[0], self.info if message[0] == "hello" else self.stats))
                elif message[0] == "stop":
                    self.batcher.stop()
                    return
        except (EOFError, OSError, AuthenticationError):
            pass  # the worker went away (or is not one of this run's): forget it
        except (ValueError, TypeError) as e:  # a message of another program: drop it
            print(f"detector process: dropped a worker: {e}", file=sys.stderr, flush=True)
        finally:
            conn.close()
            with self.batcher.cv:
                self.clients -= 1
                self.last_seen = time.monotonic()
                self.batcher.cv.notify_all()


def _frame(data: bytes, width: int, height: int, source_w: int, source_h: int) -> Prepared:
    image = np.frombuffer(data, np.uint8)
    if image.size != width * height * 3:
        raise ValueError(f"frame of {image.size} bytes, not {width}x{height}x3")
    return Prepared(image.reshape(height, width, 3), (source_w, source_h))


def describe(device) -> dict:
    import torch

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return {"pid": os.getpid(), "device": str(device), "name": name, "torch": torch.__version__}


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver stops us (see the docstring)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    settings = json.loads(sys.stdin.readline())
    from dfprep.detectors.retinaface_torch import BatchedDetector

    detector = BatchedDetector(
        DetectConfig(**settings["detect"]),
        device=settings["device"],
        canvas="exact",
        batch_size=settings["batch"],
    )
    detector.detect_prepared([Prepared(np.zeros((64, 64, 3), np.uint8), (64, 64))])  # warm up
    address = settings["address"]
    listener = Listener(address, "AF_UNIX")  # authenticated per connection (Server._read)
    os.chmod(address, 0o600)
    batcher = Batcher(settings["batch"], settings["max_wait"])
    info = describe(detector.device)
    key = bytes.fromhex(settings["authkey"])
    try:
        Server(detector, listener, key, batcher, settings["idle"], info).serve()
    finally:
        listener.close()  # removes the socket file
    return 0


if __name__ == "__main__":
    sys.exit(main())
