"""The GPU's utilisation while something runs (`dftrain gpu-bench` samples it during a run)."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import threading
import time

import torch


def _utilisation_reader(device: torch.device):
    """A function returning the GPU's utilisation in % now, or None where nothing can tell."""
    if device.type != "cuda":
        return None
    try:
        torch.cuda.utilization(device)  # needs pynvml (nvidia-ml-py)
        return lambda: float(torch.cuda.utilization(device))
    except Exception:  # no NVML (pynvml): try nvidia-smi
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()

    def read() -> float | None:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i",
                 str(index)], capture_output=True, text=True, timeout=5, check=True,
            )  # fmt: skip
            return float(out.stdout.strip().splitlines()[0])
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return None

    return read if read() is not None else None


class UtilisationSampler:
    """Samples GPU utilisation in a thread every `interval` s: `samples` = [(perf_counter, %)]."""

    def __init__(self, device: torch.device, interval: float = 0.1):
        self.read = _utilisation_reader(device)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return self.read is not None

    def __enter__(self) -> UtilisationSampler:
        if self.read is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            v = self.read()
            if v is not None:
                self.samples.append((time.perf_counter(), v))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def mean(self, t0: float = float("-inf"), t1: float = float("inf")) -> float | None:
        vals = [v for t, v in self.samples if t0 <= t <= t1]
        return statistics.fmean(vals) if vals else None
