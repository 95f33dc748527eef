"""Every tunable of the pipeline and the trainer, with its default, in one place.

`params.yaml` at the repository root mirrors these defaults section by section (a test keeps the
two in step); DVC stages and the CLIs read their values from there with `load_params`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from dfprep.errors import ConfigError


@dataclass(frozen=True)
class DecodeConfig:
    fps: float = 1.0  # frames sampled per second of video
    strategy: str = "auto"  # auto | seek | sequential: auto picks per video from keyframe spacing
    threads: int = 0  # decoder threads per worker; 0 = cores / workers
    max_pixels: int = 8192 * 4320  # larger frames are rejected with a reason (memory stays bounded)
    frame_stride: int = 1  # for image-folder inputs without their own stride in the manifest
    seek_min_frames: int = 8  # auto: seek only when that skips at least this many frame decodes
    seek_min_saving: float = 0.2  # auto: ...and only if the seeks save this share of all decoding
    autorotate: bool = True  # turn frames to display orientation (phone videos' rotation matrix)
    skip_nonref: bool = True  # let the decoder drop unneeded non-reference frames (same output)


@dataclass(frozen=True)
class DetectConfig:
    backend: str = "retinaface-mnet"  # retinaface-mnet | insightface
    model_path: str = ""  # insightface: a local .onnx file or model-pack directory
    max_size: int = 640  # detect on the frame scaled so its longer side is at most this
    score_threshold: float = 0.9
    nms_threshold: float = 0.4
    min_face_size: int = 32  # in source pixels, of max(w, h) of the detected box
    max_faces: int = 1  # per frame, largest first (labels are per video: extra faces may be real); 0 = all
    batch_size: int = 8  # frames per detector call
    threads: int = 0  # onnxruntime intra-op threads per worker process; 0 = cores / workers


@dataclass(frozen=True)
class CropConfig:
    margin: float = 0.3  # square side = (1 + margin) * max(w, h) of the box
    size: int = 224
    jpeg_quality: int = 95


@dataclass(frozen=True)
class ShardConfig:
    videos_per_shard: int = 64  # one Dask task per shard job of this many videos


@dataclass(frozen=True)
class RunConfig:
    """How a job runs, not what it computes: never part of a params hash."""

    scheduler: str = ""  # tcp://HOST:PORT of an existing Dask cluster; "" = LocalCluster
    workers: int = 0  # LocalCluster worker processes; 0 = one per core
    retries: int = 2  # re-runs of a shard job whose worker died or raised
    dashboard: str = "127.0.0.1:0"  # LocalCluster dashboard address (localhost only by default)
    video_timeout: float = 600.0  # seconds per video before it is recorded as failed; 0 = none
    memory_limit: str = "auto"  # per LocalCluster worker


@dataclass(frozen=True)
class ExtractConfig:
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)

    # how the work is done, not what it produces: changing these never redoes a shard
    EXECUTION_ONLY = (("decode", "threads"), ("decode", "strategy"), ("decode", "seek_min_frames"),
                      ("decode", "seek_min_saving"), ("decode", "skip_nonref"),
                      ("detect", "threads"), ("detect", "batch_size"))

    def params_hash(self) -> str:
        """Hash of everything that changes the output bytes (resume refuses shards made otherwise)."""
        d = dataclasses.asdict(self)
        for section, name in self.EXECUTION_ONLY:
            d[section].pop(name, None)
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class SynthConfig:
    """The sample FaceForensics++-layout dataset (`dfprep synth`)."""

    seed: int = 0
    originals: int = 10  # real videos (even); pairs of two, fakes made both ways per method
    seconds: float = 4.0  # nominal duration (each video varies by up to ±10%)
    # WxH frame sizes, cycled over the originals (a fake has its target's size): one 1080p in ten
    sizes: tuple[str, ...] = (
        "1920x1080", "640x360", "1280x720", "854x480", "960x540",
        "640x360", "854x480", "640x360", "960x540", "640x360",
    )  # fmt: skip
    rates: tuple[float, ...] = (25.0, 30.0, 29.97)  # frame rates, cycled over the originals
    crf: int = 23  # x264 constant rate factor (FF++'s c23)
    preset: str = "superfast"  # x264 preset
    workers: int = 2  # videos encoded at once (threads); the output does not depend on it
    layout: str = "ffpp"  # ffpp: the FF++ sample | all: miniatures of the nine datasets (dfprep.synth.suite)


@dataclass(frozen=True)
class Params:
    """The whole params.yaml."""

    decode: DecodeConfig = field(default_factory=DecodeConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)
    run: RunConfig = field(default_factory=RunConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    balance: BalanceConfig = field(default_factory=lambda: BalanceConfig())
    report: ReportConfig = field(default_factory=lambda: ReportConfig())

    @property
    def extract(self) -> ExtractConfig:
        return ExtractConfig(decode=self.decode, detect=self.detect, crop=self.crop, shard=self.shard)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """`where` is the dotted section name (e.g. `decode`), used to name the culprit."""
    label = where or "params"
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{label}: unknown parameter(s) {', '.join(unknown)}")
    kwargs = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        sub = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value or {}, sub)
        else:
            kwargs[name] = _coerce(value, default, sub)
    return cls(**kwargs)


def _coerce(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return type(default)(value)
    return value


def load_params(path: str | Path | None = None, sections: tuple[str, ...] | None = None) -> Params:
    """Read params.yaml (or return the defaults when path is None). Unknown keys are an error."""
    if path is None:
        return Params()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"params file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    known = {f.name for f in fields(Params)}
    # params.yaml may hold sections of other tools (e.g. the trainer's): keep only ours.
    ours = {k: v for k, v in data.items() if k in known and (sections is None or k in sections)}
    try:
        return _build(Params, ours, "")
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None


def replace(cfg: Any, **changes: Any) -> Any:
    """dataclasses.replace that ignores None values (unset CLI options)."""
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})


# ---- balance / report (issue 4) ------------------------------------------------------------------


def _check_caps(caps: Any, where: str) -> dict[str, int]:
    if caps is None:
        return {}
    if not isinstance(caps, dict):
        raise ConfigError(f"{where}: expected a mapping name -> max crops, got {caps!r}")
    for name, cap in caps.items():
        if not isinstance(name, str) or isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ConfigError(f"{where}: {name!r}: expected a positive integer, got {cap!r}")
    return dict(sorted(caps.items()))


@dataclass(frozen=True)
class BalanceConfig:
    """The training set drawn from the extracted crops; train and val are balanced separately."""

    seed: int = 0
    total: int = 0  # train crops, both classes; 0 = as many as the ratio allows
    val_total: int = 0  # the same for val (test is never balanced)
    ratio: float = 1.0  # real : fake crops
    dataset_caps: dict[str, int] = field(default_factory=dict)  # max crops per dataset (and split)
    method_caps: dict[str, int] = field(default_factory=dict)  # max crops per method ("real" too)
    samples_per_shard: int = 5000  # output shard size (about 100 MB of 224 px JPEGs)
    min_shards: int = 16  # per split, so that every loader worker and rank gets shards
    # dataset: the ratio holds inside each dataset (Table 1's samples); global: across all of them
    scope: str = "dataset"
    # scope dataset: the class kept whole in each dataset, the other sampled to match it:
    # real (Table 1's figures and the paper's 304K real total) | minority (the smaller class)
    keep: str = "real"

    SCOPES = ("dataset", "global")
    KEEPS = ("real", "minority")

    def __post_init__(self) -> None:
        if self.scope not in self.SCOPES:
            raise ConfigError(f"balance.scope: must be one of {', '.join(self.SCOPES)}, got {self.scope!r}")
        if self.keep not in self.KEEPS:
            raise ConfigError(f"balance.keep: must be one of {', '.join(self.KEEPS)}, got {self.keep!r}")
        for name in ("total", "val_total"):
            if getattr(self, name) < 0:
                raise ConfigError(f"balance.{name}: must be >= 0, got {getattr(self, name)}")
        if not self.ratio > 0:
            raise ConfigError(f"balance.ratio: must be > 0 (real : fake), got {self.ratio}")
        for name in ("samples_per_shard", "min_shards"):
            if getattr(self, name) < 1:
                raise ConfigError(f"balance.{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("dataset_caps", "method_caps"):
            object.__setattr__(self, name, _check_caps(getattr(self, name), f"balance.{name}"))


@dataclass(frozen=True)
class ReportConfig:
    seed: int = 0
    rows: int = 6  # contact sheet grid
    cols: int = 8
    thumb: int = 128  # thumbnail side in pixels
    max_shards: int = 8  # shards opened per dataset x label: the report samples, never reads all
    top_errors: int = 10

    def __post_init__(self) -> None:
        for name in ("rows", "cols", "thumb", "max_shards"):
            if getattr(self, name) < 1:
                raise ConfigError(f"report.{name}: must be >= 1, got {getattr(self, name)}")
        if self.top_errors < 0:
            raise ConfigError(f"report.top_errors: must be >= 0, got {self.top_errors}")
