"""dfprep extract: manifests -> fixed shard jobs -> (decode -> detect -> select -> crop) per video
-> shards.

The manifest is cut into shard jobs before any work starts, so a shard's content never depends on
scheduling. On Dask every video is its own task, so every core is busy whatever the number of
jobs, to the last video of the run; the driver writes each shard from its videos' results in
manifest order, so its bytes never depend on which worker ran what, or when.

- `plan`: the shard jobs, the output folder made ready, the threads of a video.
- `video`: one video (`process_video` on any detector, `run_video` on this process's).
- `crops`: the crop and encode steps, and the samples they make.
- `job`: one shard job written in manifest order (`JobWriter`, `OrderedJob`, `run_shard_job`).
- `driver`: one run (`run_extract`), inline or on Dask (`dask_run`); `summary`: extract.json.
- `gpu`: where a run detects (`run.detect_device`: each worker, or a detector process per GPU),
  and the detector of a process that does everything itself (`local_detector`: predict).

Callers outside the package import these names from `dfprep.extract`.
"""

from dfprep.extract.crops import crop_label
from dfprep.extract.dask_run import task_config
from dfprep.extract.driver import run_extract
from dfprep.extract.gpu import (
    cuda_devices,
    detector_stats,
    local_detector,
    plan_detection,
    stop_detection,
)
from dfprep.extract.job import run_shard_job
from dfprep.extract.plan import ShardJob, plan_jobs, prepare_out, resolve_threads
from dfprep.extract.summary import ExtractSummary
from dfprep.extract.video import VideoResult, process_video, run_video

__all__ = [
    "ExtractSummary",
    "ShardJob",
    "VideoResult",
    "crop_label",
    "cuda_devices",
    "detector_stats",
    "local_detector",
    "plan_detection",
    "plan_jobs",
    "prepare_out",
    "process_video",
    "resolve_threads",
    "run_extract",
    "run_shard_job",
    "run_video",
    "stop_detection",
    "task_config",
]
