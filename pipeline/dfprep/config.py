"""Every tunable of the pipeline, with its default and its rule, in one place.

`params.yaml` at the repository root mirrors these defaults section by section (a test keeps the
two in step); DVC stages and the CLIs read their values from there with `load_params`. Each field
carries its rule (`dfprep.core.config`): an instance is validated whenever it is made, so a bad
value is refused, naming its dotted key, before any work starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfprep.core.config import (
    SEED_MAX,
    Bool,
    Caps,
    Checked,
    Choice,
    Float,
    Int,
    Seq,
    Text,
    load,
    override,
    param,
    reject,
)

DECODE_STRATEGIES = ("auto", "seek", "sequential")
# dfprep.detect.BACKENDS (a test checks)
DETECT_BACKENDS = ("insightface", "retinaface-mnet", "retinaface-mnet-torch")
# run.detect_device (dfprep.extract.gpu)
DETECT_DEVICES = ("cpu", "auto", "cuda", "cpu-process")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")  # fmt: skip
MAX_ORIGINALS = 1000  # synth: three-digit ids, as in FF++

# Caps on sizes: above them a value is a typo, not a setting, and would only get the job killed
# for memory or time (decode.fps 1e9 asks for 1e9 frames per second of video).
MAX_FPS = 240.0  # no camera footage in these datasets has more frames per second to sample
MAX_SIDE = 16384  # pixels of a frame side; 16K video is the largest any codec here decodes
MAX_THREADS = 1024
MAX_COUNT = 10**12  # crops, samples: far beyond any dataset (FF++ to DF40 total ~ 10**7)
DAY = 86_400.0


def _host_port(s: str, *, need_port: bool = True) -> bool:
    m = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]*)(?::(\d{1,5}))?", s)
    return bool(m) and (m.group(2) is not None or not need_port) and int(m.group(2) or 0) <= 65535


def check_scheduler(s: str) -> str | None:
    """'' (a LocalCluster), 'inline' (no Dask) or a Dask address: PROTOCOL://HOST[:PORT] or HOST:PORT."""
    if s in ("", "inline"):
        return None
    proto, sep, rest = s.partition("://")
    ok = (_host_port(rest, need_port=False) and rest and proto in ("tcp", "tls", "ws", "wss", "ucx")
          if sep else _host_port(s) and not s.startswith(":"))  # fmt: skip
    return None if ok else f"{s!r} is not '', 'inline' or a Dask address (tcp://HOST:PORT)"


def check_dashboard(s: str) -> str | None:
    """'' (no dashboard) or [HOST]:PORT (port 0: any free one)."""
    return (
        None
        if s == "" or (":" in s and _host_port(s))
        else f"{s!r} is not '' or HOST:PORT (e.g. 127.0.0.1:8787)"
    )


def check_memory_limit(s: str) -> str | None:
    """'auto' (a share of the machine's memory) or a size Dask parses: 4GB, 4 GiB, 4e9 ('0' = none)."""
    if s == "auto":
        return None
    from dask.utils import parse_bytes

    try:
        ok = parse_bytes(s) >= 0
    except (ValueError, TypeError):
        ok = False
    return None if ok else f"{s!r} is not 'auto' or a size such as 4GB"


def check_wxh(s: str) -> str | None:
    """synth frame sizes: 'WxH', even (yuv420p), from 64x64 to 8K."""
    m = re.fullmatch(r"(\d+)[xX](\d+)", s.strip())
    if not m:
        return f"{s!r} is not WxH (e.g. 1280x720)"
    w, h = int(m.group(1)), int(m.group(2))
    if w < 64 or h < 64 or w % 2 or h % 2 or w > 7680 or h > 7680:
        return f"{s!r} must be even and from 64x64 to 7680x7680"
    return None


@dataclass(frozen=True)
class DecodeConfig(Checked):
    SECTION = "decode"

    fps: float = param(1.0, Float(0, MAX_FPS, lo_open=True))  # frames sampled per second of video
    # auto | seek | sequential: auto picks per video from keyframe spacing
    strategy: str = param("auto", Choice(DECODE_STRATEGIES))
    threads: int = param(0, Int(0, MAX_THREADS))  # decoder threads per worker; 0 = cores / workers
    # larger frames are rejected with a reason (memory stays bounded)
    max_pixels: int = param(8192 * 4320, Int(1, MAX_SIDE * MAX_SIDE))
    # for image-folder inputs without their own stride in the manifest
    frame_stride: int = param(1, Int(1, 100_000))
    # auto: seek only when that skips at least this many frame decodes
    seek_min_frames: int = param(8, Int(0, 1_000_000))
    # auto: ...and only if the seeks save this share of all decoding
    seek_min_saving: float = param(0.2, Float(0, 1, hi_open=True))
    # turn frames to display orientation (phone videos' rotation matrix)
    autorotate: bool = param(True, Bool())
    # let the decoder drop unneeded non-reference frames (same output)
    skip_nonref: bool = param(True, Bool())


@dataclass(frozen=True)
class DetectConfig(Checked):
    SECTION = "detect"

    # retinaface-mnet (ONNX Runtime) | retinaface-mnet-torch (the same network in torch: CUDA when
    # there is one, else the CPU; docs/gpu.md) | insightface
    backend: str = param("retinaface-mnet", Choice(DETECT_BACKENDS, noun="backend"))
    # insightface: a local .onnx file or model-pack directory
    model_path: str = param("", Text(what="a path (or '')"))
    # detect on the frame scaled so its longer side is at most this (below 32 px nothing is found)
    max_size: int = param(640, Int(32, MAX_SIDE))
    score_threshold: float = param(0.9, Float(0, 1))
    nms_threshold: float = param(0.4, Float(0, 1))
    # in source pixels, of max(w, h) of the detected box
    min_face_size: int = param(32, Int(0, MAX_SIDE))
    # per frame, largest first (labels are per video: extra faces may be real); 0 = all
    max_faces: int = param(1, Int(0, 1000))
    # "largest": faces whose areas are within this share of the largest one are a tie, which
    # the detector's score breaks (0: the area alone)
    size_tie: float = param(0.1, Float(0, 1, hi_open=True))
    # the same for real videos (more faces of a real video are all real); -1 = max_faces. Train
    # and val only: the test split never depends on the label (test_max_faces)
    real_max_faces: int = param(-1, Int(-1, 1000))
    # the test split, reals and fakes alike (label-blind, never paired): 0 = every face, the
    # paper's "all faces in a video" (a video's score is the mean over them) | 1 = the largest
    test_max_faces: int = param(0, Int(0, 1000))
    batch_size: int = param(8, Int(1, 4096))  # frames per detector call
    # onnxruntime intra-op threads per worker process; 0 = cores / workers
    threads: int = param(0, Int(0, MAX_THREADS))


@dataclass(frozen=True)
class CropConfig(Checked):
    SECTION = "crop"

    # square side = (1 + margin) * max(w, h) of the box; beyond 4 the face is a speck in the crop
    margin: float = param(0.3, Float(0, 4))
    size: int = param(224, Int(16, 4096))  # output side in pixels (4096: 48 MB per raw crop)
    jpeg_quality: int = param(95, Int(1, 100))


PAIR_SOURCES = ("auto", "diff", "mask", "off")


@dataclass(frozen=True)
class PairConfig(Checked):
    """Which faces of a fake are cropped: those that differ from its original (or its mask).

    See dfprep.pairing (the plan, the scores, the choice); docs/deviations.md."""

    SECTION = "pair"

    # auto: the diff against the original when it is usable, else the mask when the row has one;
    # diff | mask: that source only; off: the largest faces everywhere
    select: str = param("auto", Choice(PAIR_SOURCES))
    # diff: a face is manipulated when its box differs this many times more than the rest of the
    # frame (measured on the sample: untouched faces <= 0.71, each fake's face >= 1.64 somewhere)
    threshold: float = param(1.5, Float(0, 1000, lo_open=True))
    # diff measure: absdiff (mean absolute grey difference) | ssim ((1 - SSIM) / 2); same ratio
    measure: str = param("absdiff", Choice(("absdiff", "ssim")))
    # mask: ...when at least this share of its box is white in the mask video (sample: untouched
    # faces 0, reenacted mouths from 0.19 per video)
    mask_threshold: float = param(0.05, Float(0, 1, lo_open=True))
    # frames are compared in grey at this longer side (pixels)
    compare_size: int = param(320, Int(32, 4096))
    # grey levels: the rest-of-frame difference below this counts as this (a still frame)
    noise_floor: float = param(1.0, Float(0, 255, lo_open=True))
    # a paired fake in which no sampled frame shows two faces, and whose face differs in one at
    # least, keeps the largest face in every frame (its one person is the one manipulated)
    keep_single_person: bool = param(True, Bool())
    # the fake's crops use the boxes found on the original at the same time (no detection on it)
    reuse_original_boxes: bool = param(False, Bool())
    # alignment: frame rates and durations may differ by this much, sample times by time_tolerance
    fps_tolerance: float = param(0.01, Float(0, 1000))
    duration_tolerance: float = param(0.5, Float(0, DAY))
    time_tolerance: float = param(0.02, Float(0, 60))
    # faces dropped as unmanipulated kept per video as thumbnails for the report (0 = none)
    max_dropped: int = param(4, Int(0, 1000))
    # the original's frames kept for its fakes, per video; beyond it they fall back (a reason)
    max_reference_mb: int = param(256, Int(1, 1 << 20))


@dataclass(frozen=True)
class ShardConfig(Checked):
    SECTION = "shard"

    # one Dask task per shard job of this many videos
    videos_per_shard: int = param(64, Int(1, 1_000_000))


@dataclass(frozen=True)
class RunConfig(Checked):
    """How a job runs, not what it computes: never part of a params hash."""

    SECTION = "run"

    # tcp://HOST:PORT of an existing Dask cluster; "" = LocalCluster; inline = no Dask
    scheduler: str = param("", Text(check_scheduler, "'', 'inline' or tcp://HOST:PORT"))
    workers: int = param(0, Int(0, MAX_THREADS))  # LocalCluster worker processes; 0 = one per core
    retries: int = param(2, Int(0, 100))  # re-runs of a shard job whose worker died or raised
    # LocalCluster dashboard address (localhost only by default); "" = no dashboard
    dashboard: str = param("127.0.0.1:0", Text(check_dashboard, "'' or HOST:PORT"))
    # seconds per video before it is recorded as failed; 0 = none (a week at most)
    video_timeout: float = param(600.0, Float(0, 7 * DAY))
    # per LocalCluster worker: auto | a size (4GB) | 0 = no limit
    memory_limit: str = param("auto", Text(check_memory_limit, "'auto' or a size such as 4GB"))
    # seconds to wait for an existing scheduler (--scheduler) before giving up with an error
    connect_timeout: float = param(10.0, Float(0, 3600, lo_open=True))
    # where faces are detected: cpu (each worker runs detect.backend on its cores) | cuda (one
    # detector process per GPU batches the frames of all the workers of its host; docs/gpu.md) |
    # auto (cuda when every host has a GPU, else cpu with a notice) | cpu-process (cuda's
    # detector process, on the CPU: for tests)
    detect_device: str = param("cpu", Choice(DETECT_DEVICES))
    # frames per forward of a detector process on a GPU (short batches are padded to it)
    detect_batch: int = param(32, Int(1, 4096))


@dataclass(frozen=True)
class ExtractConfig(Checked):
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)
    pair: PairConfig = field(default_factory=PairConfig)

    # Thread counts: resolved per machine (cores / workers) and bit-exact either way, so changing
    # them never redoes a shard. EVERY other field (new ones included) is part of the hash: a
    # shard is only reused when nothing that could change its bytes differs.
    EXECUTION_ONLY = (("decode", "threads"), ("detect", "threads"))

    def params_hash(self) -> str:
        """Hash of everything that changes the output bytes (resume refuses shards made otherwise)."""
        d = dataclasses.asdict(self)
        for section, name in self.EXECUTION_ONLY:
            d[section].pop(name, None)
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class SynthConfig(Checked):
    """The sample FaceForensics++-layout dataset (`dfprep synth`)."""

    SECTION = "synth"

    seed: int = param(0, Int(0, SEED_MAX))
    # real videos (even); pairs of two, fakes made both ways per method
    originals: int = param(10, Int(2, MAX_ORIGINALS, even=True))
    # two-person originals (even; ids after the single-person ones), paired like them; each pair
    # gives one fake per method and direction that manipulates one of the two faces (0: none)
    multi_person: int = param(4, Int(0, MAX_ORIGINALS - 2, even=True))
    # nominal duration (each video varies by up to ±10%)
    seconds: float = param(4.0, Float(0.2, 600))
    # WxH frame sizes, cycled over the originals (a fake has its target's size): one 1080p in ten
    sizes: tuple[str, ...] = param(
        (
            "1920x1080", "640x360", "1280x720", "854x480", "960x540",
            "640x360", "854x480", "640x360", "960x540", "640x360",
        ),
        Seq(Text(check_wxh, "WxH"), min_n=1, max_n=MAX_ORIGINALS),
    )  # fmt: skip
    # frame rates, cycled over the originals
    rates: tuple[float, ...] = param(
        (25.0, 30.0, 29.97), Seq(Float(1, 240), min_n=1, max_n=MAX_ORIGINALS)
    )
    crf: int = param(23, Int(0, 51))  # x264 constant rate factor (FF++'s c23)
    preset: str = param("superfast", Choice(X264_PRESETS))  # x264 preset
    # videos encoded at once (threads); the output does not depend on it
    workers: int = param(2, Int(1, 256))
    # ffpp: the FF++ sample | all: miniatures of the nine datasets (dfprep.synth.suite)
    layout: str = param("ffpp", Choice(("ffpp", "all")))


@dataclass(frozen=True)
class BalanceConfig(Checked):
    """The training set drawn from the extracted crops; train and val are balanced separately."""

    SECTION = "balance"

    seed: int = param(0, Int(0, SEED_MAX))
    # train crops, both classes; 0 = as many as the ratio allows
    total: int = param(0, Int(0, MAX_COUNT))
    val_total: int = param(0, Int(0, MAX_COUNT))  # the same for val (test is never balanced)
    # real : fake crops (beyond 1000 : 1 either way a class has next to nothing left)
    ratio: float = param(1.0, Float(0.001, 1000))
    # max crops per dataset (and split)
    dataset_caps: dict[str, int] = param(factory=dict, rule=Caps(Int(1, MAX_COUNT)))
    # max crops per method ("real" too)
    method_caps: dict[str, int] = param(factory=dict, rule=Caps(Int(1, MAX_COUNT)))
    # output shard size (about 100 MB of 224 px JPEGs)
    samples_per_shard: int = param(5000, Int(1, 10_000_000))
    # per split, so that every loader worker and rank gets shards
    min_shards: int = param(16, Int(1, 1_000_000))
    # dataset: the ratio holds inside each dataset (Table 1's samples); global: across all of them
    scope: str = param("dataset", Choice(("dataset", "global")))
    # scope dataset: the class kept whole in each dataset, the other sampled to match it:
    # real (Table 1's figures and the paper's 304K real total) | minority (the smaller class)
    keep: str = param("real", Choice(("real", "minority")))


# A contact sheet is rows x cols thumbnails of thumb x thumb pixels, drawn in memory: at most this
# many pixels (64 Mpx: 192 MB of RGB; the default 6 x 8 x 128 px is 0.8 Mpx).
MAX_SHEET_PIXELS = 64 * 2**20


@dataclass(frozen=True)
class ReportConfig(Checked):
    SECTION = "report"

    seed: int = param(0, Int(0, SEED_MAX))
    rows: int = param(6, Int(1, 256))  # contact sheet grid
    cols: int = param(8, Int(1, 256))
    thumb: int = param(128, Int(8, 4096))  # thumbnail side in pixels
    # shards opened per dataset x label: the report samples, never reads all
    max_shards: int = param(8, Int(1, 1_000_000))
    # crops of one video on a sheet at most (each video gets one before any gets a second)
    per_video: int = param(3, Int(1, 65_536))
    top_errors: int = param(10, Int(0, 10_000))

    def cross_check(self) -> None:
        px = self.rows * self.cols * self.thumb**2
        if px > MAX_SHEET_PIXELS:
            raise reject(
                "report.thumb",
                f"a {self.rows} x {self.cols} sheet of {self.thumb} px "
                f"thumbnails is {px} pixels, more than {MAX_SHEET_PIXELS}",
            )


def _rule(cls: type, name: str) -> Any:
    return cls.__dataclass_fields__[name].metadata["rule"]


@dataclass(frozen=True)
class SampleConfig(Checked):
    """Sizes of the DVC demo on the sample dataset (dvc.yaml passes them as command-line options,
    which check them again; the train_* rules repeat those of dftrain.config)."""

    SECTION = "sample"

    videos_per_shard: int = param(8, _rule(ShardConfig, "videos_per_shard"))
    train_model: str = param("vit_tiny_patch16_224", Text(
        lambda s: None if re.fullmatch(r"[A-Za-z0-9_.-]+", s) else f"{s!r} is not a timm model name",
        "a timm model name"))  # fmt: skip
    train_img_size: int = param(112, Int(8, 4096))
    train_epochs: int = param(3, Int(1, 100_000))
    train_batch_size: int = param(16, Int(2, 65_536))
    train_lr: float = param(0.0005, Float(0, 1, lo_open=True))
    train_warmup_epochs: float = param(1.0, Float(0, 100_000))


@dataclass(frozen=True)
class Params(Checked):
    """The whole params.yaml (the dfprep sections; dftrain's `train` and `eval` are in dftrain.config)."""

    decode: DecodeConfig = field(default_factory=DecodeConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)
    pair: PairConfig = field(default_factory=PairConfig)
    run: RunConfig = field(default_factory=RunConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    @property
    def extract(self) -> ExtractConfig:
        return ExtractConfig(
            decode=self.decode,
            detect=self.detect,
            crop=self.crop,
            shard=self.shard,
            pair=self.pair,
        )


def load_params(path: str | Path | None = None) -> Params:
    """Read params.yaml (or return the defaults when path is None). Unknown keys are an error;
    sections of other tools (the trainer's `train`, `eval`) are left to them."""
    return load(path, Params)


def replace(cfg: Any, **changes: Any) -> Any:
    """dataclasses.replace that ignores None values (unset CLI options); validated."""
    return override(cfg, changes)
