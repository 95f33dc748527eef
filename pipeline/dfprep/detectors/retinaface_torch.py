"""RetinaFace MobileNet-0.25 in torch (`detect.backend: retinaface-mnet-torch`), on the CPU or a
CUDA device, over batches of frames of any sizes.

The network is `retinaface_net`'s port of the graph the ONNX backend runs; the post-processing
is the ONNX backend's: candidates are selected on the device (so only they cross back to the
host), then decoded by `retinaface_mnet.decode_at` and kept by `base.to_faces` (NMS), the very
functions the ONNX backend uses. On the CPU, ONNX Runtime is the faster engine (docs/gpu.md);
this backend exists for the GPU, and is tested on the CPU against the ONNX backend.

`BatchedDetector` is the object a detector process holds: `detect(images)` for source frames,
`detect_prepared(frames)` for frames already scaled by the decode workers (`letterbox.prepare`).
How frames of different sizes share a batch is its `canvas` policy:

- "exact": each frame at its own detection size, frames of one size batched together: results
  independent of what else is in the call (the ONNX backend does the same).
- "batch": each call's chunk of frames letterboxed to the largest of them, rounded up to the
  network's stride: one forward per chunk, but a face near a frame's right or bottom edge can
  come out slightly differently depending on its batch mates (measured in docs/gpu.md).
- (w, h): every frame letterboxed to this fixed canvas: one forward per chunk, and results that
  depend on the frame alone (deterministic whatever the batching), at the cost of the padding.

A frame's faces never depend on the batch it came in, to the bit, whatever the canvas policy: the
kernels a convolution library picks, and so the float rounding, change with the batch size and
the thread count (measured on the CPU: oneDNN gives other bits at batch 1, 8 and 16, and at 1 and
2 threads). So on the CPU every frame runs alone on one thread (batch 1 is also the fastest there,
docs/gpu.md), and on CUDA every forward has exactly `batch_size` frames (a short chunk is padded),
with cuDNN's deterministic algorithm choice (no autotuning, whose pick can differ between
processes). Extract's detector process relies on this: it batches frames of many videos as they
come, and the shards must not depend on which frames shared a forward.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from dfprep.config import DetectConfig
from dfprep.core.errors import ConfigError
from dfprep.detectors.base import (
    RETINAFACE_BACKENDS,
    Face,
    Unpicklable,
    check_images,
    to_faces,
)
from dfprep.detectors.letterbox import Prepared, canvas_for, letterbox, prepare
from dfprep.detectors.retinaface_mnet import decode_at
from dfprep.detectors.retinaface_net import STRIDE, load_network, to_network_input

DEVICES = ("auto", "cpu", "cuda")  # or "cuda:N"
CANVAS_POLICIES = ("exact", "batch")  # or a fixed (w, h)
# fp32: full precision, TF32 off (results closest to the CPU); tf32: TF32 convolutions on
# Ampere and later; fp16: half-precision network (scores and boxes move by ~1e-3)
PRECISIONS = ("fp32", "tf32", "fp16")


def resolve_device(device: str) -> torch.device:
    """auto: the first CUDA device when torch sees one, else the CPU. Asking for CUDA on a host
    without it is an error (the caller decides whether to fall back)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"detect device: {device!r} is not auto, cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"detect device: {device!r}, but torch sees no CUDA device here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"detect device: {device!r}, but torch sees {torch.cuda.device_count()} CUDA device(s)"
            )
    return dev


def survivors(
    loc: torch.Tensor, conf: torch.Tensor, pts: torch.Tensor, threshold: float
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per image of a batch: (anchor index, loc, score, landmarks) of the anchors scoring
    >= threshold, as numpy. Selected where the outputs are; one transfer for the whole batch."""
    scores = conf[..., 1]
    image, anchor = torch.nonzero(scores >= threshold, as_tuple=True)
    rows = torch.cat([loc[image, anchor], scores[image, anchor, None], pts[image, anchor]], 1)
    index = torch.stack([image, anchor], 1).cpu().numpy()
    rows = rows.float().cpu().numpy()
    bounds = np.searchsorted(index[:, 0], np.arange(len(loc) + 1))  # nonzero is row-major
    return [
        (index[a:b, 1], rows[a:b, :4], rows[a:b, 4], rows[a:b, 5:])
        for a, b in itertools.pairwise(bounds)
    ]


def _check_canvas(canvas) -> str | tuple[int, int]:
    if isinstance(canvas, str) and canvas in CANVAS_POLICIES:
        return canvas
    if (
        isinstance(canvas, (tuple, list))
        and len(canvas) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= STRIDE for v in canvas)
    ):
        return (int(canvas[0]), int(canvas[1]))
    raise ConfigError(
        f"detect canvas: {canvas!r} is not exact, batch or a (w, h) of at least {STRIDE} px each"
    )


class BatchedDetector(Unpicklable):
    """RetinaFace MobileNet-0.25 in torch over batches of frames; see the module docstring."""

    name = "retinaface-mnet-torch"

    def __init__(
        self,
        cfg: DetectConfig,
        device: str = "auto",
        canvas: str | tuple[int, int] = "exact",
        batch_size: int | None = None,
        precision: str = "fp32",
    ):
        if cfg.backend not in RETINAFACE_BACKENDS:
            raise ConfigError(
                f"detect.backend: {cfg.backend!r} has no torch port "
                f"(only {', '.join(RETINAFACE_BACKENDS)})"
            )
        if precision not in PRECISIONS:
            raise ConfigError(f"detect precision: {precision!r} is not {', '.join(PRECISIONS)}")
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"detect batch size: must be >= 1, got {batch_size}")
        self.cfg = cfg
        self.device = resolve_device(device)
        self.canvas = _check_canvas(canvas)
        self.batch_size = batch_size or cfg.batch_size
        self.precision = precision
        if precision != "fp32" and self.device.type != "cuda":
            raise ConfigError(
                f"detect precision: {precision} is for CUDA devices; the CPU runs fp32"
            )
        net = load_network().to(self.device)
        if self.device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)
        self.net = net.half() if precision == "fp16" else net
        self._staging: torch.Tensor | None = None

    # --- public API ---------------------------------------------------------------------------

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Per RGB uint8 HxWx3 image, its faces in source pixels (score >= cfg.score_threshold,
        after NMS, best first), as the ONNX backend reports them."""
        check_images(images)
        return self.detect_prepared([prepare(image, self.cfg.max_size) for image in images])

    def detect_prepared(self, frames: Sequence[Prepared]) -> list[list[Face]]:
        """`detect` of frames already scaled to their detection size (`letterbox.prepare`)."""
        results: list[list[Face]] = [[] for _ in frames]
        for canvas, indices in self._groups(frames):
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                size = canvas or canvas_for([frames[i].size for i in chunk], STRIDE)
                for i, faces in zip(
                    chunk, self._run([frames[i] for i in chunk], size), strict=True
                ):
                    results[i] = faces
        return results

    # --- internals ----------------------------------------------------------------------------

    def _groups(
        self, frames: Sequence[Prepared]
    ) -> Iterator[tuple[tuple[int, int] | None, list[int]]]:
        """(canvas, frame indices) per forward group; canvas None: each chunk's own."""
        if self.canvas == "exact":
            by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
            for i, frame in enumerate(frames):
                by_size[frame.size].append(i)
            yield from by_size.items()
        elif frames:
            yield (None if self.canvas == "batch" else self.canvas), list(range(len(frames)))

    def _buffer(self, shape: tuple[int, ...]) -> tuple[np.ndarray | None, torch.Tensor | None]:
        """A page-locked staging buffer for host -> GPU copies, as (numpy view, tensor); (None,
        None) on the CPU. One allocation, grown to the largest batch seen and viewed at each
        batch's shape (pinning memory is slow; a smaller last chunk must not re-pin)."""
        if self.device.type != "cuda":
            return None, None
        size = int(np.prod(shape))
        if self._staging is None or self._staging.numel() < size:
            self._staging = torch.empty(size, dtype=torch.uint8).pin_memory()
        view = self._staging[:size].view(shape)
        return view.numpy(), view

    @contextlib.contextmanager
    def _engine(self) -> Iterator[None]:
        """The same kernels for every call (see the module docstring): on CUDA, cuDNN's
        deterministic choice and TF32 off unless asked; on the CPU, one thread."""
        if self.device.type == "cuda":
            with torch.backends.cudnn.flags(
                enabled=True,
                benchmark=False,
                deterministic=True,
                allow_tf32=self.precision == "tf32",
            ):
                yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def _run(self, frames: list[Prepared], canvas: tuple[int, int]) -> list[list[Face]]:
        width, height = canvas
        n = len(frames)
        # CUDA: always batch_size frames per forward (the padding rows' outputs are dropped)
        rows = self.batch_size if self.device.type == "cuda" else n
        out, staging = self._buffer((rows, height, width, 3))
        if out is None:
            batch = letterbox([f.image for f in frames], canvas)
        else:
            letterbox([f.image for f in frames], canvas, out=out[:n])
            out[n:] = 0
            batch = out
        with torch.inference_mode(), self._engine():
            if staging is None:  # the CPU: one frame per forward
                picked = [self._forward(torch.from_numpy(batch[i : i + 1]))[0] for i in range(n)]
            else:
                picked = self._forward(staging.to(self.device, non_blocking=True))[:n]
        return [
            to_faces(*decode_at(*candidates, canvas), frame.scale, self.cfg.nms_threshold)
            for frame, candidates in zip(frames, picked, strict=True)
        ]

    def _forward(self, host: torch.Tensor) -> list:
        """`survivors` of a (B, H, W, 3) uint8 batch already on the device."""
        x = to_network_input(host)
        if self.device.type == "cpu":
            x = x.contiguous()  # NCHW: faster than channels-last for this network on the CPU
        loc, conf, pts = self.net(x.half() if self.precision == "fp16" else x)
        return survivors(loc, conf, pts, self.cfg.score_threshold)


class RetinaFaceMnetTorch(BatchedDetector):
    """The registry's `retinaface-mnet-torch`: CUDA when torch sees a device, else the CPU;
    each frame at its exact detection size; on CUDA `detect.batch_size` frames per forward."""

    def __init__(self, cfg: DetectConfig):
        super().__init__(cfg, device="auto", canvas="exact")
