"""Extract's GPU mode for a run: which detector it uses (`run.detect_device`), the one-line notice
that says so, and its detector processes stopped when it ends, whatever happened.

- `cpu` (the default): each worker runs `detect.backend` on its own cores, as always.
- `cuda`: the workers only decode; one detector process per GPU of each host
  (`dfprep.detectors.service`) batches the frames of all of the host's workers, across videos, at
  their exact detection size. A host without a CUDA device is an error, before any work.
- `auto`: `cuda` when every host of the run has a CUDA device, else `cpu` with a notice.
- `cpu-process`: `cuda`'s machinery with its detector process on the CPU (tests; no faster).

The detector process runs RetinaFace MobileNet-0.25 in torch (`retinaface-mnet-torch`), the
network of the default `retinaface-mnet`: its faces agree with ONNX Runtime's within the stated
tolerance (docs/gpu.md), and to the bit with `retinaface-mnet-torch` on the same device. So the
mode is an execution setting, like the thread counts, and not in the shards' parameters hash:
switching between CPU and GPU keeps the finished shards (resume mixes both within the tolerance;
`--overwrite` redoes them). `insightface` has no torch port: `cuda` refuses it, `auto` falls back.

`dftrain predict` is one process: it gets the same detector in-process (`local_detector`), so its
crops are those of a GPU-mode extract on the same GPU.
"""

from __future__ import annotations

import contextlib
import os
import uuid

from dfprep.config import DetectConfig, Params
from dfprep.core.errors import ConfigError
from dfprep.detectors.base import RETINAFACE_BACKENDS as TORCH_PORTS
from dfprep.detectors.client import DetectorProcesses, process_stats, proxy_for, stop_processes

__all__ = [
    "detector_for",
    "detector_stats",
    "local_detector",
    "plan_detection",
    "stop_detection",
]


def plan_detection(params: Params, client=None) -> tuple[DetectorProcesses | None, str]:
    """(the run's detector processes, or None for each worker's own detector; the notice, or "").

    CLIENT: the Dask client of a cluster given to the run (its hosts are asked for their GPUs,
    by one worker each); None: this host (inline or a LocalCluster about to start). Raises
    ConfigError, before any work, for what cannot be: `cuda` without a GPU or a torch port."""
    run, detect = params.run, params.detect
    if run.detect_device == "cpu":
        return None, ""
    gpus = {} if run.detect_device == "cpu-process" else gpu_counts(client)
    kind, notice = _choose(run.detect_device, detect, gpus)
    if kind == "workers":
        return None, notice
    local = gpus.get("", min(gpus.values(), default=1))
    processes = DetectorProcesses(
        detect=detect,
        device=kind,
        batch=run.detect_batch,
        run_id=uuid.uuid4().hex[:12],
        authkey=os.urandom(16),
        gpus=tuple(sorted((h, n) for h, n in gpus.items() if h)),
        local_gpus=max(1, local),
    )
    return processes, notice


def _choose(mode: str, detect: DetectConfig, gpus: dict[str, int]) -> tuple[str, str]:
    """("cuda" | "cpu" (a detector process) | "workers" (each its own), the notice)."""
    if detect.backend not in TORCH_PORTS:
        why = f"detect.backend {detect.backend} has no torch port (only {', '.join(TORCH_PORTS)})"
        if mode == "auto":
            return "workers", f"{why}: each worker detects on its CPU cores"
        raise ConfigError(f"run.detect_device: {mode}: {why}")
    if mode == "cpu-process":
        return "cpu", "one detector process per host, on the CPU (run.detect_device: cpu-process)"
    without = sorted(h or "this host" for h, n in gpus.items() if n == 0)
    if without:
        if mode == "auto":
            return "workers", (
                f"no CUDA device on {', '.join(without)} (run.detect_device: auto): "
                f"each worker detects on its CPU cores with {detect.backend}"
            )
        raise ConfigError(
            f"run.detect_device: cuda, but torch sees no CUDA device on {', '.join(without)}"
        )
    total = sum(gpus.values())
    hosts = f" on {len(gpus)} hosts" if len(gpus) > 1 else ""
    return "cuda", (
        f"{total} detector process(es), one per GPU{hosts}, batching the frames of "
        "every worker; the workers decode"
    )


def gpu_counts(client=None) -> dict[str, int]:
    """CUDA devices per host: {"": n} for this host; {host: n} for a cluster's hosts (asked by
    one worker of each, the only ones that import torch for it)."""
    if client is None:
        return {"": cuda_devices()}
    from distributed.comm import get_address_host

    one_per_host: dict[str, str] = {}
    for address in client.nthreads():
        one_per_host.setdefault(get_address_host(address), address)
    if not one_per_host:
        raise ConfigError("run.detect_device: the Dask cluster has no worker to ask for its GPUs")
    counts = client.run(cuda_devices, workers=list(one_per_host.values()))
    return {host: int(counts[address]) for host, address in one_per_host.items()}


def cuda_devices() -> int:
    """CUDA devices torch sees here (0 without torch's CUDA); creates no CUDA context."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def stop_detection(processes: DetectorProcesses | None, client=None) -> None:
    """End the run's detector processes: on this host, and on every host of CLIENT's cluster.
    Never raises (it runs while a run ends, however it ends)."""
    if processes is None:
        return
    if client is not None and client != "inline":
        with contextlib.suppress(Exception):
            client.run(stop_processes, processes)
    stop_processes(processes)


def detector_stats(processes: DetectorProcesses | None) -> dict[str, int]:
    """Forwards, frames and requests of this host's detector processes of a run, all together
    ({} without any)."""
    if processes is None:
        return {}
    devices = (
        ["cpu"] if processes.device == "cpu" else [f"cuda:{i}" for i in range(processes.local_gpus)]
    )
    total: dict[str, int] = {}
    for device in devices:
        for k, v in process_stats(processes, device).items():
            if isinstance(v, int) and k != "pid":
                total[k] = total.get(k, 0) + v
    return total


def detector_for(cfg: DetectConfig, processes: DetectorProcesses | None = None):
    """The detector of a task: this process's own for CFG (`get_detector`), or in GPU mode this
    thread's proxy of its host's detector process, which detects with `processes.detect`."""
    if processes is None:
        from dfprep.detect import get_detector  # looked up here: tests wrap it

        return get_detector(cfg)
    return proxy_for(processes)


def local_detector(params: Params, on_notice=None):
    """The detector of a process that does everything itself (`dftrain predict`), as
    `run.detect_device` says: on `cuda` the detector process's own detector, in-process, so the
    faces are those of a GPU-mode extract on the same device. `params.detect.threads` must be
    resolved (see `dfprep.extract.resolve_threads`)."""
    from dfprep.detect import get_detector

    run, detect = params.run, params.detect
    if run.detect_device == "cpu":
        return get_detector(detect)
    gpus = {} if run.detect_device == "cpu-process" else {"": cuda_devices()}
    kind, notice = _choose(run.detect_device, detect, gpus)
    if notice and on_notice is not None and kind == "workers":
        on_notice(notice)
    if kind == "workers":
        return get_detector(detect)
    from dfprep.detectors.retinaface_torch import BatchedDetector

    return BatchedDetector(detect, device=kind, canvas="exact", batch_size=run.detect_batch)
