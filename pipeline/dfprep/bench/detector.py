"""The `detector` case of `dfprep bench`: frames/s of RetinaFace MobileNet-0.25 alone, at batch 1,
32 and 128 (`--batches`), in torch on a device and in ONNX Runtime on the CPU, on real face frames
at the detection size.

    dfprep bench --case detector [--device auto|cpu|cuda] [--precision fp32,tf32,fp16]

The frames come from a generated clip (`--size`, 1920x1080 by default: the sample generator's
face, a moving camera), scaled as extract scales them (to 640x360 at `detect.max_size` 640); the
detector gets them scaled (`detect_prepared`), as extract's detector process gets them from the
decode workers. Figures: the whole detector call (letterbox, copy to the device, network,
candidate selection, decoding, NMS, faces in source pixels), the network's forward alone on the
device, and the CPU cost of scaling a source frame (a decode worker's share). It also checks the
faces against ONNX Runtime on the CPU (the tolerances of tests/prep/test_detect_torch.py), that a
frame's faces do not depend on its batch (extract's determinism in GPU mode), and on CUDA the
issue's target (>= 2,000 frames/s at 640 px). Figures are measured, never asserted.
"""

from __future__ import annotations

import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dfprep.bench.config import BenchConfig
from dfprep.config import DecodeConfig, Params, replace
from dfprep.core.atomic import write_json
from dfprep.core.system import available_cores

TARGET_FPS = 2000.0  # the target for the detector alone on the GPU host, at 640 px
# the tolerances of tests/test_detect_torch.py (source pixels; score)
BOX_TOL, LANDMARK_TOL, SCORE_TOL = 1e-3, 1e-3, 1e-5


FRAMES = 60  # distinct frames cycled through the batches


@dataclass
class Figure:
    engine: str  # onnxruntime-cpu | torch-cpu | torch-cuda
    precision: str
    batch: int
    fps: float
    what: str = "detector"  # detector (the whole call) | network (forward only, on the device)


@dataclass
class DetectorBench:
    device: str
    host: dict
    frame_size: tuple[int, int]
    source_size: tuple[int, int]
    figures: list[Figure] = field(default_factory=list)
    prepare_fps_one_core: float = 0.0
    agreement: dict = field(default_factory=dict)
    batch_invariant: dict = field(default_factory=dict)  # precision -> faces equal to the bit
    target: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)  # precision -> what failed


def rate(
    fn: Callable[[], object], frames_per_call: int, seconds: float, sync=lambda: None
) -> float:
    """frames/s of fn, after one warm-up call, over at least `seconds` and two calls."""
    fn()
    sync()
    calls, t0 = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - t0 < seconds:
        fn()
        calls += 1
    sync()
    return calls * frames_per_call / (time.perf_counter() - t0)


def bench_frames(size: tuple[int, int], work: Path) -> list[np.ndarray]:
    """FRAMES consecutive RGB frames of a generated 30 fps clip with a real face."""
    from dfprep.decode import open_sampled
    from dfprep.synth import make_face_video

    path = work / f"detector_bench_{size[0]}x{size[1]}.mp4"
    make_face_video(path, fps=30, size=size, seconds=FRAMES / 30 + 0.5, seed=0)
    with open_sampled(path, DecodeConfig(fps=30.0)) as (_info, sampled):
        frames = [f.image for f in sampled][:FRAMES]
    if len(frames) < FRAMES:
        raise RuntimeError(f"bench clip: {len(frames)} frames decoded, {FRAMES} wanted")
    return frames


def cycle(items: list, n: int) -> list:
    return [items[i % len(items)] for i in range(n)]


def host_info(device, threads: int) -> dict:
    import onnxruntime
    import torch

    info = {
        "python": platform.python_version(),
        "cpu cores": available_cores(),
        "cpu threads per engine": threads,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def max_differences(a, b) -> dict:
    """The largest box / landmark (source px) and score differences, and frames whose face counts
    differ (their faces are not compared)."""
    box = lms = score = 0.0
    count_mismatch = 0
    for fa, fb in zip(a, b, strict=True):
        if len(fa) != len(fb):
            count_mismatch += 1
            continue
        for x, y in zip(fa, fb, strict=True):
            box = max(box, float(np.abs(np.subtract(x.box, y.box)).max()))
            lms = max(lms, float(np.abs(np.subtract(x.landmarks, y.landmarks)).max()))
            score = max(score, abs(x.score - y.score))
    return {
        "frames": len(a),
        "faces": sum(map(len, a)),
        "count_mismatch_frames": count_mismatch,
        "box_px": box,
        "landmark_px": lms,
        "score": score,
    }


def run_detector(
    params: Params,
    cfg: BenchConfig,
    work_dir: Path | None = None,
    json_out: Path | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> DetectorBench:
    """The figures (see the module docstring); with json_out, written there after each one, so
    that a run cut short keeps what it measured; LOG gets a line per figure as it comes."""
    from dfprep.core.errors import ConfigError
    from dfprep.detectors.letterbox import prepare
    from dfprep.detectors.retinaface_mnet import RetinaFaceMnet
    from dfprep.detectors.retinaface_torch import PRECISIONS, resolve_device

    dev = resolve_device(cfg.device)
    precisions = cfg.precision or (PRECISIONS if dev.type == "cuda" else ("fp32",))
    if dev.type != "cuda" and set(precisions) - {"fp32"}:
        raise ConfigError("bench.precision: tf32 and fp16 are for CUDA; this host runs fp32")
    cores = cfg.threads or available_cores()
    detect = replace(params.detect, threads=cores, batch_size=max(cfg.batches))
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dfprep-detector-bench-", dir=work_dir) as tmp:
        frames = bench_frames(tuple(cfg.size), Path(tmp))
    prepared = [prepare(f, detect.max_size) for f in frames]
    res = DetectorBench(dev.type, host_info(dev, cores), prepared[0].size, tuple(cfg.size))

    def save() -> None:
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            write_json(json_out, asdict(res), newline=False)  # atomic: a kill keeps the last

    import cv2

    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        res.prepare_fps_one_core = rate(
            lambda: [prepare(f, detect.max_size) for f in frames], len(frames), cfg.measure
        )
    finally:
        cv2.setNumThreads(cv_threads)

    reference = None
    if cfg.onnx:
        for batch in cfg.batches:
            ort = RetinaFaceMnet(replace(detect, batch_size=batch))
            images = [p.image for p in cycle(prepared, batch)]
            fps = rate(lambda ort=ort, images=images: ort.detect(images), batch, cfg.measure)
            res.figures.append(Figure("onnxruntime-cpu", "fp32", batch, fps))
            log(_line(res.figures[-1]))
            save()
        reference = RetinaFaceMnet(detect).detect(frames)  # scaled as extract scales them

    for precision in precisions:
        try:
            _bench_precision(res, detect, dev, precision, cfg, prepared, reference, save, log)
        except Exception as e:  # one precision failing (a kernel, a flag) keeps the others' figures
            res.errors[precision] = (
                f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
            )
            log(f"torch-{dev.type} {precision} failed: {res.errors[precision]}")
            save()

    torch_figures = [
        f for f in res.figures if f.what == "detector" and f.engine != "onnxruntime-cpu"
    ]
    if dev.type == "cuda" and torch_figures:
        best = max(torch_figures, key=lambda f: f.fps)
        fp32 = max((f.fps for f in torch_figures if f.precision == "fp32"), default=0.0)
        res.target = {
            "target": f">= {TARGET_FPS:g} frames/s at {res.frame_size[0]}x{res.frame_size[1]}",
            "fp32_best_fps": fp32,
            "fp32_met": fp32 >= TARGET_FPS,
            "best": asdict(best),
            "best_met": best.fps >= TARGET_FPS,
        }
        save()
    return res


def _bench_precision(res, detect, dev, precision, cfg, prepared, reference, save, log) -> None:
    """The agreement with ONNX Runtime, whether a frame's faces depend on its batch, then the
    figures, of torch at one precision."""
    import torch

    from dfprep.detectors.retinaface_torch import BatchedDetector

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    det = BatchedDetector(
        detect, str(dev), canvas="exact", batch_size=max(cfg.batches), precision=precision
    )
    together = det.detect_prepared(prepared)
    # the same frames in other batches: reversed (other mates and places), and three at a time
    # (padded batches, as a detector process runs when few frames wait)
    reverse = det.detect_prepared(prepared[::-1])[::-1]
    threes = [
        f for i in range(0, len(prepared), 3) for f in det.detect_prepared(prepared[i : i + 3])
    ]
    res.batch_invariant[precision] = together == reverse == threes
    log(
        f"torch-{dev.type} {precision}: faces independent of the batch: {res.batch_invariant[precision]}"
    )
    if reference is not None:
        diff = max_differences(reference, together)
        diff["within_test_tolerances"] = (
            diff["count_mismatch_frames"] == 0
            and diff["box_px"] <= BOX_TOL
            and diff["landmark_px"] <= LANDMARK_TOL
            and diff["score"] <= SCORE_TOL
        )
        res.agreement[precision] = diff
        log(f"agreement with onnxruntime-cpu, torch-{dev.type} {precision}: {diff}")
        save()
    for batch in cfg.batches:
        det = BatchedDetector(
            detect, str(dev), canvas="exact", batch_size=batch, precision=precision
        )
        chunk = cycle(prepared, batch)
        fps = rate(lambda d=det, c=chunk: d.detect_prepared(c), batch, cfg.measure, sync)
        res.figures.append(Figure(f"torch-{dev.type}", precision, batch, fps))
        log(_line(res.figures[-1]))
        x = _network_input(det, chunk)
        with torch.inference_mode(), det._engine():
            fps = rate(lambda d=det, x=x: d.net(x), batch, cfg.measure, sync)
        res.figures.append(Figure(f"torch-{dev.type}", precision, batch, fps, what="network"))
        log(_line(res.figures[-1]))
        save()


def _network_input(det, chunk):
    """The chunk as the network gets it, already on the device (for the forward-only figure)."""
    import torch

    from dfprep.detectors.letterbox import letterbox
    from dfprep.detectors.retinaface_net import to_network_input

    canvas = chunk[0].size
    x = to_network_input(
        torch.from_numpy(letterbox([c.image for c in chunk], canvas)).to(det.device)
    )
    x = x.contiguous() if det.device.type == "cpu" else x
    return x.half() if det.precision == "fp16" else x


def _line(f: Figure) -> str:
    return f"{f.engine:16} {f.precision:5} batch {f.batch:4}  {f.what:8} {f.fps:10.1f} frames/s"
