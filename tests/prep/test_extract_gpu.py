"""Extract's GPU mode (`run.detect_device`), tested on the CPU: the detector process batches the
frames of several videos and routes each face back to its video and frame; without a GPU the run
falls back with a one-line notice; with the detector process on the CPU (`cpu-process`) the
shards are byte-identical to the plain path with the same backend, inline, on Dask, after a
resume and after kill -9; a detector process that dies, hangs or cannot start never hangs a run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

import faults as F
from dfprep.config import DetectConfig, Params, replace
from dfprep.core.errors import ConfigError, DetectorError
from dfprep.detectors import client as C
from dfprep.detectors.letterbox import Prepared
from dfprep.detectors.retinaface_torch import BatchedDetector
from dfprep.detectors.service import Batcher, _Request, answer
from dfprep.extract import gpu, run_extract
from dfprep.synth import make_face_video
from test_extract import _digests
from test_reliability_extract import _run_until_killed, cli, manifest

TORCH = replace(DetectConfig(), backend="retinaface-mnet-torch")
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this host has a CUDA device")


def params(device: str = "cpu", **run) -> Params:
    p = Params()
    return replace(
        p,
        detect=TORCH,
        shard=replace(p.shard, videos_per_shard=2),
        run=replace(p.run, **{"scheduler": "inline", "detect_device": device, **run}),
    )


def processes(**kw) -> C.DetectorProcesses:
    """A detector process on the CPU for the tests of the client, with its own run id."""
    kw = {"device": "cpu", "batch": 8, "run_id": os.urandom(6).hex(), **kw}
    return C.DetectorProcesses(TORCH, authkey=os.urandom(16), **kw)


@pytest.fixture
def stopped():
    """Specs to stop at the end of the test, whatever happened."""
    specs: list[C.DetectorProcesses] = []
    yield specs
    for spec in specs:
        C.stop_processes(spec)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """6 face videos of 6 s in 3 shard jobs: two frame sizes, so two detection sizes."""
    root = tmp_path_factory.mktemp("gpu")
    rels = [f"{i}.mp4" for i in range(6)]
    for i, rel in enumerate(rels):
        size = (320, 240) if i % 3 else (480, 270)
        make_face_video(root / "v" / rel, fps=10, size=size, seconds=6, seed=i)
    return manifest(root / "v", rels, root / "work.parquet", dataset="g")


@pytest.fixture(scope="module")
def reference(work, tmp_path_factory) -> dict[str, str]:
    """The plain path with the torch backend: each worker (here, the process) its own detector."""
    out = tmp_path_factory.mktemp("ref") / "out"
    s = run_extract([work], out, params("cpu"))
    assert (s.ok, s.jobs, s.detector) == (6, 3, "workers") and s.crops >= 30
    return _digests(out)


@pytest.fixture(scope="module")
def frames(work) -> list[np.ndarray]:
    from dfprep.decode import open_sampled

    out = []  # two frames of each of three videos of one size (320x240)
    for path in [work.parent / "v" / f"{i}.mp4" for i in (1, 2, 4)]:
        with open_sampled(path, Params().decode) as (_info, sampled):
            out += [f.image for f in sampled][:2]
    return out


# ------------------------------------------------------------------------------- batching


class _Conn:
    def __init__(self):
        self.sent: list = []

    def send(self, message) -> None:
        self.sent.append(message)


def test_frames_of_several_videos_share_a_batch_and_each_face_goes_back_to_its_frame():
    def frame(w: int, h: int) -> Prepared:
        return Prepared(np.zeros((h, w, 3), np.uint8), (w * 2, h * 2))

    batcher = Batcher(batch=4, max_wait=30.0)
    conns = [_Conn() for _ in range(3)]
    requests = [_Request(c, threading.Lock(), rid, [None] * n, n) for rid, c, n in
                ((10, conns[0], 3), (11, conns[1], 2), (12, conns[2], 2))]  # fmt: skip
    batcher.put(requests[0], [frame(320, 180)] * 3)  # video A: 3 frames at 320x180
    batcher.put(requests[1], [frame(320, 180)] * 2)  # video B: 2 frames at 320x180
    batcher.put(requests[2], [frame(160, 120)] * 2)  # video C: another detection size
    first = batcher.next_batch()  # a full batch of one size: A's three frames and one of B
    assert [(i.request.rid, i.index) for i in first] == [(10, 0), (10, 1), (10, 2), (11, 0)]
    assert {i.frame.size for i in first} == {(320, 180)}
    answer(first, [f"faces of {i.request.rid}/{i.index}" for i in first])
    assert conns[0].sent == [(10, ["faces of 10/0", "faces of 10/1", "faces of 10/2"], "")]
    assert conns[1].sent == []  # B waits for its second frame
    batcher.max_wait = 0.05  # nothing is full now: the oldest frames go after max_wait
    t0 = time.monotonic()
    second = batcher.next_batch()
    assert time.monotonic() - t0 >= 0.04
    assert [(i.request.rid, i.index) for i in second] == [(11, 1)]
    answer(second, ["faces of 11/1"])
    assert conns[1].sent == [(11, ["faces of 11/0", "faces of 11/1"], "")]
    third = batcher.next_batch()
    answer(third, [f"faces of {i.request.rid}/{i.index}" for i in third])
    assert conns[2].sent == [(12, ["faces of 12/0", "faces of 12/1"], "")]
    batcher.stop()
    assert batcher.next_batch() is None


def test_the_detector_process_batches_frames_of_several_workers(frames, stopped):
    """Three workers (threads, each its own connection) send two frames each at once: one
    forward detects them all, and each worker gets the faces of its own frames."""
    spec = processes(max_wait=2.0)
    stopped.append(spec)
    expected = BatchedDetector(TORCH, "cpu").detect(frames)
    got: dict[int, list] = {}
    ready, go = threading.Barrier(4), threading.Barrier(4)

    def worker(k: int) -> None:
        client = C.DetectorClient(spec, "cpu")
        client.detect(frames[:1])  # connected (the first one starts the process)
        ready.wait()
        go.wait()
        got[k] = client.detect(frames[2 * k : 2 * k + 2])
        client.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    ready.wait(timeout=300)
    before = C.process_stats(spec, "cpu")
    go.wait(timeout=60)
    for t in threads:
        t.join(timeout=120)
    assert [got[k] for k in range(3)] == [expected[0:2], expected[2:4], expected[4:6]]
    assert sum(map(len, expected)) >= 6  # faces in every frame
    after = C.process_stats(spec, "cpu")
    assert (after["requests"] - before["requests"], after["frames"] - before["frames"]) == (3, 6)
    assert after["forwards"] - before["forwards"] == 1  # three videos' chunks, one forward


def test_a_worker_decodes_its_next_batch_while_the_last_one_is_detected(work, reference, tmp_path):
    """VideoRun sends a batch ahead and asks for a batch's faces only once the next one is sent
    (or the video ends); the bytes are those of the plain path."""
    from dfprep.detect import get_detector
    from dfprep.extract import video as V

    log: list[str] = []

    class Ahead:
        name = "ahead"

        def __init__(self):
            self.inner, self.n = get_detector(TORCH), 0

        def submit(self, images):
            k, self.n = self.n, self.n + 1
            log.append(f"sent {k}")
            faces = self.inner.detect(images)

            class Pending:
                def result(self):
                    log.append(f"asked {k}")
                    return faces

            return Pending()

    cfg = replace(Params().extract, detect=replace(TORCH, batch_size=2))
    row = {"video_id": "v", "path": str(work.parent / "v" / "1.mp4"), "dataset": "g",
           "split": "train", "label": 0, "method": "real", "category": "real", "kind": "video",
           "frame_stride": 0}  # fmt: skip
    ahead = V.process_video(row, cfg, Ahead())
    plain = V.process_video(row, cfg, get_detector(TORCH))
    assert log == ["sent 0", "sent 1", "asked 0", "sent 2", "asked 1", "asked 2"]
    assert ahead.samples == plain.samples and ahead.status_row == plain.status_row


# ------------------------------------------------------------------------------- the mode


def test_without_a_gpu_auto_falls_back_and_cuda_is_refused(monkeypatch):
    monkeypatch.setattr(gpu, "cuda_devices", lambda: 0)
    spec, notice = gpu.plan_detection(params("auto"))
    assert spec is None
    assert notice == (
        "no CUDA device on this host (run.detect_device: auto): each worker detects on its CPU "
        "cores with retinaface-mnet-torch"
    )
    with pytest.raises(ConfigError, match=r"run.detect_device: cuda, but torch sees no CUDA"):
        gpu.plan_detection(params("cuda"))
    assert gpu.plan_detection(params("cpu")) == (None, "")
    notices: list[str] = []
    detector = gpu.local_detector(params("auto"), notices.append)  # dftrain predict's
    assert detector.name == "retinaface-mnet-torch" and notices == [notice]


def test_with_gpus_each_worker_gets_a_device_and_insightface_is_refused(monkeypatch):
    monkeypatch.setattr(gpu, "cuda_devices", lambda: 2)
    spec, notice = gpu.plan_detection(params("auto", detect_batch=64))
    assert (spec.device, spec.batch, spec.local_gpus, spec.detect) == ("cuda", 64, 2, TORCH)
    assert notice.startswith("2 detector process(es), one per GPU")
    assert [spec.device_for("", slot) for slot in range(4)] == ["cuda:0", "cuda:1"] * 2
    remote = replace(spec, gpus=(("10.0.0.2", 4),))
    assert (
        remote.device_for("10.0.0.2", 7) == "cuda:3" and remote.device_for("other", 3) == "cuda:1"
    )
    insight = replace(params("cuda"), detect=DetectConfig(backend="insightface"))
    with pytest.raises(ConfigError, match=r"detect.backend insightface has no torch port"):
        gpu.plan_detection(insight)
    spec, notice = gpu.plan_detection(
        replace(insight, run=replace(insight.run, detect_device="auto"))
    )
    assert spec is None and "insightface has no torch port" in notice
    # the ONNX backend's network is the torch port's: the GPU mode detects for it
    assert gpu.plan_detection(replace(params("cuda"), detect=DetectConfig()))[0].device == "cuda"


@no_gpu
def test_the_cli_says_so_in_one_line_and_writes_the_cpu_paths_shards(work, tmp_path):
    ref = tmp_path / "ref"
    assert subprocess.run(cli(work, ref, "--scheduler", "inline"), env=F.clean_env(),
                          capture_output=True, timeout=300).returncode == 0  # fmt: skip
    out = tmp_path / "out"
    r = subprocess.run(cli(work, out, "--scheduler", "inline", "--detect-device", "auto"),
                       env=F.clean_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("detect:")]
    assert lines == [
        "detect: no CUDA device on this host (run.detect_device: auto): each worker detects on "
        "its CPU cores with retinaface-mnet"
    ]
    assert _digests(out) == _digests(ref)
    bad = subprocess.run(cli(work, tmp_path / "bad", "--detect-device", "cuda"),
                         env=F.clean_env(), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "run.detect_device: cuda, but torch sees no CUDA device on this host" in bad.stderr
    assert not (tmp_path / "bad" / "shards").exists()


# ------------------------------------------------------------------------ the same bytes


def test_the_detector_process_gives_the_plain_paths_bytes_and_resumes_them(
    work, reference, tmp_path
):
    out = tmp_path / "inline"
    events: list[dict] = []
    s = run_extract([work], out, params("cpu-process"), on_event=events.append)
    assert (s.ok, s.detector) == (6, "cpu") and _digests(out) == reference
    assert [e["detector"] for e in events if "detector" in e] == [
        "one detector process per host, on the CPU (run.detect_device: cpu-process)"
    ]
    # an execution setting: switching the device keeps finished shards (no rehash, no redo)
    s = run_extract([work], out, params("cpu"))
    assert (s.skipped, s.done) == (3, 0)
    # a LocalCluster: the workers start one detector process and share it
    out = tmp_path / "dask"
    s = run_extract([work], out, params("cpu-process", scheduler="", workers=2))
    assert s.ok == 6 and _digests(out) == reference


@pytest.mark.slow
def test_kill_9_of_a_gpu_mode_run_then_rerun_gives_identical_shards(work, reference, tmp_path):
    out = tmp_path / "out"
    args = ("--scheduler", "inline", "--detector", "retinaface-mnet-torch",
            "--detect-device", "cpu-process")  # fmt: skip
    proc = subprocess.Popen(cli(work, out, *args), start_new_session=True, env=F.clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:  # once the first shard is complete: the detector process is up and busy
        F.wait_for(lambda: list((out / "meta").glob("*.stats.json")) or proc.poll() is not None,
                   timeout=300, what="a complete shard")  # fmt: skip
    finally:
        F.kill_group(proc)
    proc.communicate(timeout=60)
    done = len(list((out / "meta").glob("*.stats.json")))
    assert proc.returncode != 0 and done < 3, "the run finished before it was killed"
    F.wait_for(lambda: not _group(proc.pid), timeout=30, what="the killed group to be gone")
    rerun = subprocess.run(cli(work, out, *args), env=F.clean_env(), capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert _digests(out) == reference
    print(f"\n[gpu mode kill -9] {done} of 3 shards complete when killed; rerun identical")


@pytest.mark.slow
def test_killing_a_worker_of_a_gpu_mode_run_retries_its_video(work, reference, tmp_path):
    """kill -9 of a Dask worker (maybe the one that started the detector process) running a video:
    its video runs again on the other worker, the detector process serves on, the shards are the
    plain path's. The cluster is an existing one (`run.scheduler`), as a cluster of GPU hosts."""
    from distributed import Client

    out = tmp_path / "out"
    with F.dask_cluster(tmp_path) as address, Client(address) as client:
        result: dict = {}
        run = params("cpu-process", scheduler=address)
        t = threading.Thread(target=lambda: result.update(s=run_extract([work], out, run)))
        t.start()
        try:

            def busy() -> list[str]:
                return [w for w, keys in client.processing().items()
                        if any(str(k).startswith("dfprep-video") for k in keys)]  # fmt: skip

            F.wait_for(lambda: list((out / "meta").glob("*.stats.json")), timeout=300,
                       what="a complete shard: the detector process is up")  # fmt: skip
            worker = F.wait_for(busy, timeout=60, what="a worker running a video")[0]
            victim = client.run(os.getpid, workers=[worker])[worker]
            psutil.Process(victim).kill()
        finally:
            t.join(timeout=300)
    s = result["s"]
    assert (s.done + s.skipped, s.jobs, s.failed_jobs, s.detector) == (3, 3, [], "cpu")
    assert _digests(out) == reference


def test_ctrl_c_stops_the_detector_process(work, tmp_path):
    out = tmp_path / "out"
    args = ("--scheduler", "inline", "--detector", "retinaface-mnet-torch",
            "--detect-device", "cpu-process")  # fmt: skip
    proc = _run_until_killed(cli(work, out, *args), out, 0.2, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    # the detector process ignores SIGINT (the whole group gets it); the driver stopped it
    assert not [p for p in _group(proc.pid) if C.SERVICE in " ".join(p.cmdline())]


def _group(pgid: int) -> list[psutil.Process]:
    """The live processes of process group PGID."""
    out = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
    return out


# ------------------------------------------------------------------- never hang, never lie


def test_a_detector_process_that_dies_is_started_again_and_the_chunk_sent_again(frames, stopped):
    spec = processes()
    stopped.append(spec)
    client = C.DetectorClient(spec, "cpu")
    frames = [f[::2, ::2].copy() for f in frames]  # small: a chunk fits in the socket's buffer
    expected = BatchedDetector(TORCH, "cpu").detect(frames)
    assert client.detect(frames[:2]) == expected[:2]
    first = client.info["pid"]
    os.kill(first, signal.SIGSTOP)  # so that it dies with the chunk below unanswered
    pending = client.submit(frames[2:4])
    os.kill(first, signal.SIGKILL)
    assert pending.result() == expected[2:4]
    assert client.info["pid"] != first
    assert client.detect(frames[4:]) == expected[4:]


def test_a_hung_detector_process_is_killed_and_a_second_hang_is_an_error(frames, stopped):
    spec = processes(timeout=3.0)
    stopped.append(spec)
    client = C.DetectorClient(spec, "cpu")
    expected = BatchedDetector(TORCH, "cpu").detect(frames[:2])
    assert client.detect(frames[:1]) == expected[:1]
    os.kill(client.info["pid"], signal.SIGSTOP)  # hung: alive, silent
    t0 = time.monotonic()
    assert client.detect(frames[:2]) == expected  # killed after 3 s, started again
    assert 3.0 <= time.monotonic() - t0 < 60
    stop = threading.Event()
    pid_file = spec.address("cpu").with_suffix(".pid")

    def hang_every_new_process() -> None:
        seen = {client.info["pid"]}
        while not stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                pid = int(pid_file.read_text())
                if pid not in seen and spec.address("cpu").exists():
                    os.kill(pid, signal.SIGSTOP)
                    seen.add(pid)
            time.sleep(0.05)

    os.kill(client.info["pid"], signal.SIGSTOP)
    watcher = threading.Thread(target=hang_every_new_process, daemon=True)
    watcher.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(
            DetectorError, match=r"the detector process on cpu (did|does) not answer"
        ):
            client.detect(frames[:2])
    finally:
        stop.set()
        watcher.join()
    assert time.monotonic() - t0 < 120  # two timeouts and one start, not a hang


def test_a_run_whose_detector_process_fails_stops_with_one_error(work, tmp_path, stopped):
    """Not failed videos: the run stops with a DetectorError (exit status 1 in the CLI), its
    finished shards kept; here the process cannot even start (CUDA asked on a CPU host)."""
    if torch.cuda.is_available():
        pytest.skip("this host has a CUDA device")
    spec = processes(device="cuda", local_gpus=1)
    stopped.append(spec)
    t0 = time.monotonic()
    with pytest.raises(DetectorError, match=r"on cuda:0 did not start \(exit status 1\):.*CUDA"):
        run_extract([work], tmp_path / "out", params("cpu-process"), detectors=spec)
    assert time.monotonic() - t0 < 120
    assert not list((tmp_path / "out" / "shards").glob("*.tar"))  # no shard, no failed video


def test_an_idle_detector_process_exits_by_itself(frames, stopped):
    spec = processes(idle=1.0)
    stopped.append(spec)
    client = C.DetectorClient(spec, "cpu")
    client.detect(frames[:1])
    proc = psutil.Process(client.info["pid"])
    client.close()  # the run's last worker is gone (killed, say): nobody stops the process
    proc.wait(timeout=30)
    assert not spec.address("cpu").exists()


def test_the_detector_process_drops_a_worker_that_speaks_nonsense(frames, stopped):
    spec = processes()
    stopped.append(spec)
    client = C.DetectorClient(spec, "cpu")
    client.detect(frames[:1])
    with client.conn as conn:  # a frame of the wrong size
        conn.send(("detect", 99, [(64, 64, 64, 64)]))
        conn.send_bytes(b"\0" * 10)
        with pytest.raises(EOFError):
            conn.recv()
    client.conn = None
    assert client.detect(frames[:1]) == BatchedDetector(TORCH, "cpu").detect(frames[:1])
    log = spec.address("cpu").with_suffix(".log").read_text()
    assert "dropped a worker: frame of 10 bytes, not 64x64x3" in log
