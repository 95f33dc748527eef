"""Fault injection for the reliability tests: hostile inputs, crashes, full disks, no network.

Everything is generated on the fly into the test's tmp_path; nothing binary is committed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BIN = Path(sys.executable).parent

# ------------------------------------------------------------------------- broken and odd files


def zero_byte(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def garbage(path: Path, size: int = 64 * 1024, seed: int = 0) -> Path:
    """Random bytes under a video extension."""
    path.write_bytes(np.random.default_rng(seed).bytes(size))
    return path


def mp4_header_then_garbage(path: Path, seed: int = 0) -> Path:
    """A valid `ftyp` box (what file sniffers look at) followed by random bytes."""
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    path.write_bytes(ftyp + np.random.default_rng(seed).bytes(32 * 1024))
    return path


def ts_like_garbage(path: Path, packets: int = 400, seed: int = 0) -> Path:
    """188-byte packets that start with the MPEG-TS sync byte and carry noise: the TS demuxer
    accepts the file and then finds no stream in it."""
    rng = np.random.default_rng(seed)
    path.write_bytes(b"".join(b"\x47" + rng.bytes(187) for _ in range(packets)))
    return path


def truncated(src: Path, dst: Path, cut: int | float) -> Path:
    """The first `cut` bytes (int) or fraction of the file (float)."""
    data = src.read_bytes()
    n = cut if isinstance(cut, int) else int(len(data) * cut)
    dst.write_bytes(data[:n])
    return dst


def faststart(src: Path, dst: Path) -> Path:
    """Remux with the index (moov) before the data, as web video usually is: a truncated copy
    then still has its first frames."""
    with av.open(str(src)) as i, av.open(str(dst), "w", options={"movflags": "faststart"}) as o:
        out = o.add_stream_from_template(i.streams.video[0])
        for packet in i.demux(video=0):
            if packet.dts is not None:
                packet.stream = out
                o.mux(packet)
    return dst


def with_repeat_packets(src: Path, dst: Path, every: int = 3) -> int:
    """SRC's video remuxed into DST (NUT) with an empty packet after every EVERY-th packet (0:
    none), half a frame later: how Theora in Ogg writes a frame that repeats the previous one.
    FFmpeg here has no Theora encoder and its other muxers drop empty packets; NUT keeps them,
    and the demuxer hands them on as Ogg's does. Returns how many were written."""
    n = 0
    with av.open(str(src)) as i, av.open(str(dst), "w", format="nut") as o:
        inp = i.streams.video[0]
        out = o.add_stream_from_template(inp)
        half = max(1, round(1 / (2 * float(inp.average_rate) * inp.time_base)))
        for j, packet in enumerate(p for p in i.demux(inp) if p.size):
            packet.stream = out
            o.mux(packet)
            if every and j % every == every - 1:
                empty = av.Packet(0)
                empty.stream, empty.time_base = out, packet.time_base
                empty.dts = packet.dts + half
                empty.pts = empty.dts if packet.pts is None else max(packet.pts, empty.dts) + half
                o.mux(empty)
                n += 1
    return n


def audio_only(path: Path, seconds: float = 1.0) -> Path:
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=16000)
        for i in range(int(seconds * 16000 / 1024) + 1):
            fr = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            fr.sample_rate, fr.pts = 16000, i * 1024
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def image_as_video(path: Path, fmt: str = "PNG") -> Path:
    """A still image renamed .mp4."""
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(path, format=fmt)
    return path


def video_packets(path: Path) -> tuple[list[tuple[int, int, float, bool]], Fraction]:
    """(byte offset, size, pts in seconds, keyframe) of every video packet, and the time base."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        tb = s.time_base
        return [
            (p.pos, p.size, float(p.pts * tb), p.is_keyframe)
            for p in c.demux(s)
            if p.size and p.pts is not None
        ], tb


def corrupt_packets(src: Path, dst: Path, start: float, end: float) -> tuple[Path, int]:
    """Overwrite the non-key packets between `start` and `end` seconds with 0xFF (an impossible
    NAL length: they fail to decode) and return how many were hit. Keyframes are spared, so the
    frames after the damage can be decoded again."""
    data = bytearray(src.read_bytes())
    hit = 0
    for pos, size, t, key in video_packets(src)[0]:
        if not key and start <= t <= end:
            data[pos : pos + size] = b"\xff" * size
            hit += 1
    dst.write_bytes(bytes(data))
    return dst, hit


def huge_frame_video(path: Path, width: int, height: int, frames: int = 1, fps: float = 1) -> Path:
    """Flat frames of the given size: a ~100 KB file that decodes to width*height*3 bytes a frame."""
    from dfprep.videoio import encode_video

    frame = np.full((height, width, 3), 100, np.uint8)
    return encode_video(path, [frame] * frames, fps, preset="ultrafast")


VANISH_WAYS = (
    "deleted",
    "directory",
    "dangling-symlink",
    "symlink-loop",
    "fifo",
    "device",
    "not-a-dir",
)


def vanish(path: Path, how: str) -> str:
    """Make a video that was listed in a manifest disappear or become unreadable. Tests run as
    root, so chmod 000 would not stop a read: the file is replaced by something else instead.
    Returns the manifest path to use (for "not-a-dir", a path *inside* the file)."""
    path.unlink(missing_ok=True)
    if how == "deleted":
        pass
    elif how == "directory":
        path.mkdir()
    elif how == "dangling-symlink":
        path.symlink_to(path.with_name("nowhere.mp4"))
    elif how == "symlink-loop":
        path.symlink_to(path)
    elif how == "fifo":  # opening it for reading would block forever
        os.mkfifo(path)
    elif how == "device":  # reads never end
        path.symlink_to("/dev/zero")
    elif how == "not-a-dir":  # ENOTDIR: a path component is a file
        path.write_bytes(b"x")
        return str(path / "inner.mp4")
    else:
        raise ValueError(how)
    return str(path)


# File names a scraper may produce: spaces, quotes, shell and glob characters, non-ASCII, a line
# break, a leading dash, a very long name, and two names that sanitise to the same video id.
HOSTILE_NAMES = (
    "with space.mp4",
    'it\'s "quoted".mp4',
    "semi;colon $(echo x) `tick` *glob?[].mp4",
    "vidéo_日本語_Ελληνικά_🙂.mp4",
    "new\nline.mp4",
    "-leading-dash.mp4",
    "x" * 200 + ".mp4",
    "a b.mp4",
    "a_b.mp4",
)


# ------------------------------------------------------------------------------------ tars


def tar_with_members(
    path: Path, members: dict[str, bytes], links: dict[str, str] | None = None
) -> Path:
    """A tar holding exactly these member names (unsafe ones included) and symlinks."""
    import io

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


# ------------------------------------------------------------------------------- messages


def one_error_line(res) -> str:
    """The refusal of a CliRunner or subprocess run: exit 2 and exactly one line, `error: ...`,
    no traceback; returns the line."""
    code = getattr(res, "exit_code", getattr(res, "returncode", None))
    text = getattr(res, "output", None) or (res.stdout or "") + (res.stderr or "")
    assert code == 2, text
    assert "Traceback" not in text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    return lines[0]


# ------------------------------------------------------------------------------- processes


def wait_for(
    pred: Callable[[], object], timeout: float = 60.0, what: str = "condition", step: float = 0.02
):
    t0 = time.monotonic()
    while not (got := pred()):
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(what)
        time.sleep(step)
    return got


TMP_PID = re.compile(r"\.tmp-(\d+)-[0-9a-f]{8}$")


def tmp_files(folder: Path) -> list[Path]:
    """Temporary files of writers (extract shards and balance outputs both use .NAME.tmp-PID-UUID)."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name.startswith(".") and TMP_PID.search(p.name)]


def writer_pid(tmp: Path) -> int:
    """The process writing a temporary file (its pid is part of the name)."""
    return int(TMP_PID.search(tmp.name).group(1))


def writing_now(folder: Path, pids: set[int] | None = None, min_size: int = 0) -> list[Path]:
    """Temporary files being written in folder (by one of `pids`), at least min_size bytes long."""
    found = []
    for p in tmp_files(folder):
        try:
            if (pids is None or writer_pid(p) in pids) and p.stat().st_size >= min_size:
                found.append(p)
        except FileNotFoundError:  # published or removed meanwhile
            pass
    return found


def family(proc: subprocess.Popen) -> set[int]:
    """The pids of a process and of everything it started."""
    import psutil

    try:
        return {proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    env.update(extra)
    return env


def _scheduler_address(sf: Path) -> str | None:
    """The address in a scheduler file, once the scheduler has written all of it."""
    try:
        return json.loads(sf.read_text())["address"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None


@contextlib.contextmanager
def dask_cluster(
    tmp: Path, workers: int = 2, env: dict[str, str] | None = None, nthreads: int = 1
) -> Iterator[str]:
    """A real `dask scheduler` and `dask worker` processes (with nannies) on localhost, each with
    `nthreads` threads; `env` for the workers (e.g. a fault injected with with_sitecustomize)."""
    sf = tmp / "scheduler.json"
    procs = [
        subprocess.Popen(
            [
                BIN / "dask",
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                "127.0.0.1:0",
                "--scheduler-file",
                sf,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=clean_env(),
        )
    ]
    try:
        address = wait_for(lambda: _scheduler_address(sf), what="scheduler file")
        for _ in range(workers):
            procs.append(
                subprocess.Popen(
                    [
                        BIN / "dask",
                        "worker",
                        address,
                        "--nthreads",
                        str(nthreads),
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=env or clean_env(),
                )
            )
        from distributed import Client

        with Client(address) as c:
            c.wait_for_workers(workers, timeout=60)
        yield address
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal a process started with start_new_session=True and everything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


# ---------------------------------------------------------------------------------- storage


@contextlib.contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[Path | None]:
    """A tmpfs mounted on path with OPTIONS, or None where mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def small_tmpfs(path: Path, size: str) -> contextlib.AbstractContextManager[Path | None]:
    """A tmpfs of `size` (e.g. "1m") mounted on path, or None where mounting is not permitted."""
    return _tmpfs(path, f"size={size}")


def read_only(path: Path) -> contextlib.AbstractContextManager[Path | None]:
    """An empty read-only tmpfs mounted on path (the tests run as root, so `chmod` would not
    stop a write), or None where mounting is not permitted."""
    return _tmpfs(path, "size=64k,ro")


def fill(folder: Path, leave: int) -> Path:
    """Fill the filesystem of `folder` up to `leave` free bytes with one filler file."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    filler = folder / "filler"
    with open(filler, "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave))
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    return filler


def file_size_limit(nbytes: int) -> Callable[[], None]:
    """preexec_fn: no file of the child may grow past nbytes (writes fail with EFBIG; Python
    ignores SIGXFSZ, so the process is not killed)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return limit


# ---------------------------------------------------------------------------------- network

NETWORK_GUARD = textwrap.dedent(
    '''
    """Test guard (sitecustomize): connections and name lookups beyond this machine fail and are logged."""
    import ipaddress, os, socket, traceback

    _LOG = os.environ["DFPREP_NETWORK_LOG"]
    _LOCAL_NAMES = {None, "", "localhost", "localhost.localdomain", socket.gethostname()}


    def _local(host):
        if isinstance(host, bytes):
            host = host.decode()
        if host in _LOCAL_NAMES:
            return True
        try:
            ip = ipaddress.ip_address(str(host).split("%")[0])
        except ValueError:
            return False
        return ip.is_loopback or ip.is_unspecified


    def _refuse(what, where):
        with open(_LOG, "a") as f:
            stack = "".join(traceback.format_stack(limit=6)[:-2]).replace("\\n", " | ")
            f.write(f"{os.getpid()} {what} {where!r} via {stack}\\n")
        raise OSError(101, f"network blocked by test guard: {what} {where!r}")


    def _guard(name):
        real = getattr(socket.socket, name)

        def guarded(self, address, *args):
            if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
                _refuse(name, address)
            return real(self, address, *args)

        setattr(socket.socket, name, guarded)


    for _name in ("connect", "connect_ex"):
        _guard(_name)
    _real_sendto = socket.socket.sendto


    def _sendto(self, data, *args):
        address = args[-1]
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
            _refuse("sendto", address)
        return _real_sendto(self, data, *args)


    socket.socket.sendto = _sendto
    _real_getaddrinfo = socket.getaddrinfo


    def _getaddrinfo(host, *args, **kwargs):
        if not _local(host):
            _refuse("getaddrinfo", host)
        return _real_getaddrinfo(host, *args, **kwargs)


    socket.getaddrinfo = _getaddrinfo
    '''
)


def with_sitecustomize(folder: Path, source: str, **env: str) -> dict[str, str]:
    """Environment whose Python processes (Dask workers spawned from them included) all run
    `source` at startup: a sitecustomize.py on PYTHONPATH."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(source)
    path = os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return clean_env(PYTHONPATH=path, **env)


def network_guard(folder: Path, log: Path) -> dict[str, str]:
    """Environment in which NETWORK_GUARD watches every Python process."""
    log.touch()
    return with_sitecustomize(folder, NETWORK_GUARD, DFPREP_NETWORK_LOG=str(log))


SLOW_WRITES = textwrap.dedent(
    """
    # Test fault (sitecustomize): every sample written to a tar takes DFPREP_TEST_SLOW_WRITE s longer,
    # so that a process can be killed or interrupted while it writes, at a point of our choosing.
    import os, time
    import dfprep.shards as _shards

    _delay = float(os.environ["DFPREP_TEST_SLOW_WRITE"])
    _write = _shards.TarSink.write


    def _slow_write(self, key, members):
        time.sleep(_delay)
        return _write(self, key, members)


    _shards.TarSink.write = _slow_write
    """
)


def slow_writes(folder: Path, seconds: float) -> dict[str, str]:
    """Environment in which every tar sample written takes `seconds` longer (a slow disk)."""
    return with_sitecustomize(folder, SLOW_WRITES, DFPREP_TEST_SLOW_WRITE=str(seconds))
