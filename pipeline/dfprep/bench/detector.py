"""The detector alone: frames/s of RetinaFace MobileNet-0.25 at batch 1, 32 and 128, in torch on
a device and in ONNX Runtime on the CPU, on real face frames at the detection size.

    python -m dfprep.bench.detector [--device auto|cpu|cuda] [--tiny] [--json OUT]

The frames come from a generated 1080p30 clip (the sample generator's face, a moving camera),
scaled to 640x360 as extract scales them; the detector gets them scaled (`detect_prepared`), as a
detector process fed by decode workers would. Figures: the whole detector call (letterbox, copy to
the device, network, candidate selection, decoding, NMS, faces in source pixels), the network's
forward alone on the device, and the CPU cost of scaling a 1080p frame (a decode worker's share).
On CUDA it also checks the faces against ONNX Runtime on the CPU (the tolerances of
tests/test_detect_torch.py) and the issue's target (>= 2,000 frames/s at 640 px). `--tiny`: small
frames and batches, for a smoke test on the CPU. Figures are measured, never asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dfprep.config import DecodeConfig, DetectConfig
from dfprep.core.system import available_cores

TARGET_FPS = 2000.0  # the target for the detector alone on the GPU host, at 640 px
# the tolerances of tests/test_detect_torch.py (source pixels; score)
BOX_TOL, LANDMARK_TOL, SCORE_TOL = 1e-3, 1e-3, 1e-5


@dataclass(frozen=True)
class Sizes:
    source: tuple[int, int]  # the generated clip's frame size
    max_size: int  # detect.max_size
    batches: tuple[int, ...]
    frames: int  # distinct frames cycled through the batches
    seconds: float  # minimum measuring time per figure


FULL = Sizes((1920, 1080), 640, (1, 32, 128), 60, 3.0)
TINY = Sizes((384, 216), 320, (1, 4, 8), 8, 0.3)


@dataclass
class Figure:
    engine: str  # onnxruntime-cpu | torch-cpu | torch-cuda
    precision: str
    batch: int
    fps: float
    what: str = "detector"  # detector (the whole call) | network (forward only, on the device)


@dataclass
class Result:
    device: str
    host: dict
    frame_size: tuple[int, int]
    source_size: tuple[int, int]
    figures: list[Figure] = field(default_factory=list)
    prepare_fps_one_core: float = 0.0
    agreement: dict = field(default_factory=dict)
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


def bench_frames(sizes: Sizes, work: Path) -> list[np.ndarray]:
    """`sizes.frames` consecutive RGB frames of a generated 30 fps clip with a real face."""
    from dfprep.decode import open_sampled
    from dfprep.synth import make_face_video

    path = work / f"detector_bench_{sizes.source[0]}x{sizes.source[1]}.mp4"
    seconds = sizes.frames / 30 + 0.5
    make_face_video(path, fps=30, size=sizes.source, seconds=seconds, seed=0)
    with open_sampled(path, DecodeConfig(fps=30.0)) as (_info, sampled):
        frames = [f.image for f in sampled][: sizes.frames]
    if len(frames) < sizes.frames:
        raise RuntimeError(f"bench clip: {len(frames)} frames decoded, {sizes.frames} wanted")
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


def run_bench(
    device: str = "auto",
    tiny: bool = False,
    precisions: tuple[str, ...] | None = None,
    onnx: bool = True,
    work_dir: Path | None = None,
    threads: int = 0,
    json_out: Path | None = None,
) -> Result:
    """The figures (see the module docstring); with json_out, written there after each one, so
    that a run cut short keeps what it measured."""
    from dfprep.detectors.letterbox import prepare
    from dfprep.detectors.retinaface_mnet import RetinaFaceMnet
    from dfprep.detectors.retinaface_torch import PRECISIONS, resolve_device
    from dfprep.core.errors import ConfigError

    sizes = TINY if tiny else FULL
    dev = resolve_device(device)
    precisions = precisions or (PRECISIONS if dev.type == "cuda" else ("fp32",))
    bad = [p for p in precisions if p not in PRECISIONS or (p != "fp32" and dev.type != "cuda")]
    if bad:
        raise ConfigError(
            f"--precision: {', '.join(bad)}: expected {', '.join(PRECISIONS)} on CUDA, fp32 on the CPU"
        )
    cores = threads or available_cores()
    cfg = DetectConfig(max_size=sizes.max_size, threads=cores)
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dfprep-detector-bench-", dir=work_dir) as tmp:
        frames = bench_frames(sizes, Path(tmp))
    prepared = [prepare(f, sizes.max_size) for f in frames]
    res = Result(dev.type, host_info(dev, cores), prepared[0].size, sizes.source)

    def save() -> None:
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(asdict(res), indent=1))

    import cv2

    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        res.prepare_fps_one_core = rate(
            lambda: [prepare(f, sizes.max_size) for f in frames], len(frames), sizes.seconds
        )
    finally:
        cv2.setNumThreads(cv_threads)

    reference = None
    if onnx:
        for batch in sizes.batches:
            ort = RetinaFaceMnet(
                DetectConfig(max_size=sizes.max_size, threads=cores, batch_size=batch)
            )
            images = [p.image for p in cycle(prepared, batch)]
            fps = rate(lambda ort=ort, images=images: ort.detect(images), batch, sizes.seconds)
            res.figures.append(Figure("onnxruntime-cpu", "fp32", batch, fps))
            _print(res.figures[-1])
            save()
        reference = RetinaFaceMnet(cfg).detect(frames)  # scaled as extract scales them

    for precision in precisions:
        try:
            _bench_precision(res, cfg, dev, precision, sizes, prepared, reference, save)
        except Exception as e:  # one precision failing (a kernel, a flag) keeps the others' figures
            res.errors[precision] = (
                f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
            )
            print(f"torch-{dev.type} {precision} failed: {res.errors[precision]}", flush=True)
            save()

    torch_figures = [
        f for f in res.figures if f.what == "detector" and f.engine != "onnxruntime-cpu"
    ]
    if dev.type == "cuda" and not tiny and torch_figures:
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


def _make_clip(path: Path, seconds: float, seed: int) -> Path:
    from dfprep.core.atomic import publish
    from dfprep.synth import make_face_video

    if not path.exists():
        tmp = path.with_name(f".{path.name}.tmp.mp4")
        make_face_video(tmp, fps=30, size=FULL.source, seconds=seconds, seed=seed)
        publish(tmp, path)  # a killed run never leaves a half clip that a rerun would reuse
    return path


def make_clips(folder: Path, n: int, seconds: float) -> list[Path]:
    """n 1080p30 H.264 clips with a moving real face (x264 superfast, as `dfprep bench` makes
    them), made in parallel on every core; existing ones are reused."""
    import multiprocessing

    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(folder / f"clip_{i:02d}_{seconds:g}s.mp4", seconds, i) for i in range(n)]
    with multiprocessing.get_context("spawn").Pool(min(n, available_cores())) as pool:
        return pool.starmap(_make_clip, jobs, chunksize=1)


def _decode_count(path: str) -> int:
    import cv2

    from dfprep.decode import open_sampled

    cv2.setNumThreads(1)
    with open_sampled(path, DecodeConfig(), threads=1) as (_info, sampled):
        return sum(1 for _ in sampled)


def decode_only(paths: list[Path]) -> dict:
    """Decode only, as extract decodes (1 fps sampled, RGB, one thread per process), one process
    per core over the clips: the frames/s a GPU detector must keep up with on this host."""
    import multiprocessing

    cores = available_cores()
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        pool.map(abs, range(cores))  # the workers are up (their start is not timed)
        t0 = time.perf_counter()
        frames = pool.map(_decode_count, [str(p) for p in paths], chunksize=1)
        seconds = time.perf_counter() - t0
    return {
        "clips": len(paths),
        "processes": cores,
        "frames": sum(frames),
        "seconds": seconds,
        "fps": sum(frames) / seconds,
    }


def _bench_precision(res, cfg, dev, precision, sizes, prepared, reference, save) -> None:
    """The agreement with ONNX Runtime, then the figures, of torch at one precision."""
    import torch

    from dfprep.detectors.retinaface_torch import BatchedDetector

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if reference is not None:
        det = BatchedDetector(
            cfg, str(dev), canvas="exact", batch_size=max(sizes.batches), precision=precision
        )
        diff = max_differences(reference, det.detect_prepared(prepared))
        diff["within_test_tolerances"] = (
            diff["count_mismatch_frames"] == 0
            and diff["box_px"] <= BOX_TOL
            and diff["landmark_px"] <= LANDMARK_TOL
            and diff["score"] <= SCORE_TOL
        )
        res.agreement[precision] = diff
        print(f"agreement with onnxruntime-cpu, torch-{dev.type} {precision}: {diff}", flush=True)
        save()
    for batch in sizes.batches:
        det = BatchedDetector(cfg, str(dev), canvas="exact", batch_size=batch, precision=precision)
        chunk = cycle(prepared, batch)
        fps = rate(lambda d=det, c=chunk: d.detect_prepared(c), batch, sizes.seconds, sync)
        res.figures.append(Figure(f"torch-{dev.type}", precision, batch, fps))
        _print(res.figures[-1])
        x = _network_input(det, chunk)
        with torch.inference_mode(), det._engine():
            fps = rate(lambda d=det, x=x: d.net(x), batch, sizes.seconds, sync)
        res.figures.append(Figure(f"torch-{dev.type}", precision, batch, fps, what="network"))
        _print(res.figures[-1])
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


def _print(f: Figure) -> None:
    print(
        f"{f.engine:16} {f.precision:5} batch {f.batch:4}  {f.what:8} {f.fps:10.1f} frames/s",
        flush=True,
    )


def table(res: Result) -> str:
    lines = [
        f"detector bench on {res.device}: frames {res.frame_size[0]}x{res.frame_size[1]} "
        f"(from {res.source_size[0]}x{res.source_size[1]}); host {json.dumps(res.host)}",
        "",
        "| engine | precision | batch | detector frames/s | network only frames/s |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    network = {(f.engine, f.precision, f.batch): f.fps for f in res.figures if f.what == "network"}
    for f in res.figures:
        if f.what == "detector":
            net = network.get((f.engine, f.precision, f.batch))
            lines.append(
                f"| {f.engine} | {f.precision} | {f.batch} | {f.fps:.1f} | "
                f"{'' if net is None else f'{net:.1f}'} |"
            )
    lines.append("")
    lines.append(
        f"scaling a {res.source_size[0]}x{res.source_size[1]} frame to the detection size (INTER_AREA), "
        f"one core: {res.prepare_fps_one_core:.1f} frames/s"
    )
    for precision, diff in res.agreement.items():
        lines.append(f"agreement with onnxruntime-cpu ({precision}): {json.dumps(diff)}")
    if res.target:
        lines.append(f"target: {json.dumps(res.target)}")
    for precision, error in res.errors.items():
        lines.append(f"FAILED ({precision}): {error}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dfprep.bench.detector", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="small frames and batches (a CPU smoke test)"
    )
    parser.add_argument(
        "--precision",
        default="",
        help="comma-separated: fp32,tf32,fp16 (default: all three on CUDA, fp32 on the CPU)",
    )
    parser.add_argument(
        "--no-onnx", action="store_true", help="skip ONNX Runtime (and the agreement check)"
    )
    parser.add_argument(
        "--decode-only",
        type=Path,
        metavar="FOLDER",
        help="instead: decode-only frames/s on every core over --n 1080p30 clips of --seconds in "
        "FOLDER (made there in parallel when missing)",
    )
    parser.add_argument("--n", type=int, default=16, help="--decode-only: clips (default 16)")
    parser.add_argument("--seconds", type=float, default=20.0, help="--decode-only: clip length")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads per engine (default: every core)"
    )
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--work-dir", type=Path, help="scratch folder for the generated clip")
    args = parser.parse_args(argv)

    from dfprep.core.errors import ConfigError

    if args.decode_only is not None:
        if args.n < 1 or not 0 < args.seconds <= 600:
            parser.error("--n must be >= 1 and --seconds in (0, 600]")
        clips = make_clips(args.decode_only, args.n, args.seconds)
        out = decode_only(clips)
        print(
            f"decode only, {out['processes']} processes x 1 thread: {out['frames']} sampled frames "
            f"of {out['clips']} clips in {out['seconds']:.2f} s = {out['fps']:.1f} frames/s"
        )
    else:
        precisions = tuple(p.strip() for p in args.precision.split(",") if p.strip()) or None
        if args.threads < 0:
            parser.error("--threads must be >= 0")
        try:
            res = run_bench(
                args.device,
                args.tiny,
                precisions,
                not args.no_onnx,
                args.work_dir,
                args.threads,
                args.json,
            )
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print()
        print(table(res))
        return 1 if res.errors else 0
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
