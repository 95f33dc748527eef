"""Every tunable of `dftrain run`, with the paper's defaults, as frozen dataclasses.

`params.yaml` holds them under `train:` (same nesting); `load_train_params` reads that section with
dfprep's strict loader, so an unknown or mistyped key is an error naming it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from dfprep.config import _build
from dfprep.errors import ConfigError
from dfprep.schema import LABEL_MODES

# FSFM was pre-trained on VGGFace2 faces normalised with these statistics (its DfD fine-tuning keeps them).
VGGFACE2_MEAN = (0.5482207536697388, 0.42340534925460815, 0.3654651641845703)
VGGFACE2_STD = (0.2789176106452942, 0.2438540756702423, 0.23493893444538116)

TRIPLET_STRATEGIES = ("none", "batch_all", "hard", "easy_positive")
TRIPLET_LABELS = ("train", "binary")
INIT_KINDS = ("fsfm", "timm", "none")


@dataclass(frozen=True)
class ModelConfig:
    name: str = (
        "vit_base_patch16_224"  # any timm ViT with abs. pos. embedding and `global_pool='avg'`
    )
    img_size: int = 224
    patch_size: int = 0  # 0 = the model's own (tests use tiny grids)
    depth: int = 0  # 0 = the model's own
    drop_path: float = 0.1
    init: str = "none"  # fsfm:PATH (checkpoint-400.pth) | timm:PATH (ImageNet weights file) | none
    head_init_std: float = 2e-5  # truncated normal std of the fresh head (FSFM/MAE)


@dataclass(frozen=True)
class LabelConfig:
    mode: str = "binary"  # binary | category (real/FS/RE) | dataset (real + one class per dataset)
    datasets: tuple[str, ...] = ()  # attribution class order; () = dfprep.schema.TRAIN_DATASETS
    # control run: each training/val video gets a pseudo-random class (a hash of its id) instead of
    # its own; a model trained so must stay at chance on the test sets (nothing leaks)
    shuffle: bool = False


@dataclass(frozen=True)
class LossConfig:
    triplet: str = (
        "batch_all"  # none | batch_all | hard | easy_positive (batch_all: the paper's best)
    )
    margin: float = 1.0  # on Euclidean distances of the pooled, un-normalised embedding
    weight: float = 1.0  # loss = CE + weight * triplet
    triplet_labels: str = "train"  # train (the classes of labels.mode) | binary (real vs fake)
    label_smoothing: float = 0.0
    mixup: float = 0.0  # mixup alpha; cross-entropy-only runs (0 = off)
    cutmix: float = 0.0  # cutmix alpha; cross-entropy-only runs (0 = off)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-4  # peak learning rate as given: NOT scaled by batch size or GPU count
    min_lr: float = 1e-6  # end of the cosine
    weight_decay: float = 0.05  # not on 1-D parameters, pos_embed, cls_token
    layer_decay: float = 0.75
    betas: tuple[float, ...] = (0.9, 0.999)
    warmup_epochs: float = 5.0
    epochs: int = 30
    batch_size: int = 64  # per process (per GPU); triplets are mined inside it
    clip_grad: float = 0.0  # max gradient norm; 0 = off


@dataclass(frozen=True)
class AugConfig:
    """timm's training transform as FSFM's DfD fine-tuning uses it; eval is resize (+ crop) only."""

    auto_augment: str = "rand-m9-mstd0.5-inc1"  # "" = off (then timm adds colour jitter 0.4)
    scale: tuple[float, ...] = (0.08, 1.0)  # random-resized-crop area range
    ratio: tuple[float, ...] = (0.75, 1.3333333333333333)
    hflip: float = 0.5
    re_prob: float = 0.25  # random erasing
    re_mode: str = "pixel"
    interpolation: str = "bicubic"
    crop_pct: float = (
        1.0  # eval: resize to img_size / crop_pct, centre crop (FSFM's test used 0.875)
    )
    mean: tuple[float, ...] = VGGFACE2_MEAN
    std: tuple[float, ...] = VGGFACE2_STD


@dataclass(frozen=True)
class DataConfig:
    workers: int = -1  # DataLoader workers per process; -1 = cores per process - 1 (at least 1)
    shuffle_buffer: int = 2000  # samples, before decoding
    shuffle_initial: int = 500
    prefetch: int = 4  # batches prefetched per worker
    val_batch_size: int = 0  # 0 = optim.batch_size


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0
    amp: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | bf16 | off
    device: str = "auto"  # auto | cpu | cuda (under torchrun: cuda:LOCAL_RANK)
    log_every: int = 10  # iterations between logged training points


# Settings that change how fast a run goes, never what it computes: resume may change them.
# (Not data.workers: each worker reads its own shards, so the count shapes the sample order.)
RUN_ONLY = frozenset({"data.prefetch", "device", "log_every"})


def check_config(cfg: TrainConfig, where: str = "options") -> TrainConfig:
    """Reject values no run can use, naming the parameter."""

    def bad(name: str, msg: str) -> ConfigError:
        return ConfigError(f"{where}: train.{name}: {msg}")

    if cfg.labels.mode not in LABEL_MODES:
        raise bad("labels.mode", f"{cfg.labels.mode!r} is not one of {', '.join(LABEL_MODES)}")
    if len(set(cfg.labels.datasets)) != len(cfg.labels.datasets):
        raise bad("labels.datasets", "a dataset is listed twice")
    if cfg.loss.triplet not in TRIPLET_STRATEGIES:
        raise bad(
            "loss.triplet", f"{cfg.loss.triplet!r} is not one of {', '.join(TRIPLET_STRATEGIES)}"
        )
    if cfg.loss.triplet_labels not in TRIPLET_LABELS:
        raise bad(
            "loss.triplet_labels",
            f"{cfg.loss.triplet_labels!r} is not one of {', '.join(TRIPLET_LABELS)}",
        )
    if cfg.loss.triplet != "none" and (cfg.loss.mixup > 0 or cfg.loss.cutmix > 0):
        raise bad(
            "loss.mixup",
            "mixup/cutmix mix labels, which a triplet loss cannot use: set loss.triplet to none or mixup/cutmix to 0",
        )
    if cfg.loss.margin < 0 or cfg.loss.weight < 0:
        raise bad("loss.margin", "margin and weight must be >= 0")
    kind = cfg.model.init.split(":", 1)[0]
    if kind not in INIT_KINDS or (kind != "none" and not cfg.model.init.partition(":")[2]):
        raise bad("model.init", f"{cfg.model.init!r}: use fsfm:PATH, timm:PATH or none")
    if cfg.model.img_size <= 0 or not 0 <= cfg.model.drop_path < 1:
        raise bad("model", "img_size must be > 0 and drop_path in [0, 1)")
    o = cfg.optim
    if o.epochs < 1 or o.batch_size < 2:
        raise bad("optim", "epochs must be >= 1 and batch_size >= 2")
    if o.lr <= 0 or o.min_lr < 0 or o.min_lr > o.lr:
        raise bad("optim.lr", "need 0 <= min_lr <= lr and lr > 0")
    if not 0 < o.layer_decay <= 1:
        raise bad("optim.layer_decay", "must be in (0, 1]")
    if o.warmup_epochs < 0 or len(o.betas) != 2:
        raise bad("optim", "warmup_epochs must be >= 0 and betas two numbers")
    a = cfg.aug
    if len(a.mean) != 3 or len(a.std) != 3 or len(a.scale) != 2 or len(a.ratio) != 2:
        raise bad("aug", "mean/std need 3 numbers, scale/ratio 2")
    if not 0 < a.crop_pct <= 1:
        raise bad("aug.crop_pct", "must be in (0, 1]")
    if (cfg.loss.mixup > 0 or cfg.loss.cutmix > 0) and o.batch_size % 2:
        raise bad("optim.batch_size", "mixup/cutmix need an even batch size")
    if cfg.amp not in ("auto", "bf16", "off"):
        raise bad("amp", f"{cfg.amp!r} is not one of auto, bf16, off")
    if cfg.data.shuffle_buffer < 1 or cfg.data.shuffle_initial < 1:
        raise bad("data", "shuffle_buffer and shuffle_initial must be >= 1")
    return cfg


def train_config_from_dict(data: dict[str, Any], where: str) -> TrainConfig:
    return check_config(_build(TrainConfig, data, f"{where}: train"), where)


def _read_section(path: str | Path, name: str) -> dict[str, Any]:
    """One top-level section of a params.yaml ({} when absent); a missing or broken file is an error."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"params file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    return data.get(name) or {}


def load_train_params(path: str | Path | None = None) -> TrainConfig:
    """The `train:` section of a params.yaml (the defaults when path is None or it has none)."""
    if path is None:
        return TrainConfig()
    return train_config_from_dict(_read_section(path, "train"), str(path))


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain JSON/YAML-able form (tuples as lists); `train_config_from_dict` reads it back."""
    return _lists(dataclasses.asdict(cfg))


def train_defaults() -> dict[str, Any]:
    """The `train:` section params.yaml must hold (the defaults above, as plain YAML values)."""
    return to_dict(TrainConfig())


def _lists(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _lists(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_lists(v) for v in x]
    return x


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def with_overrides(cfg: TrainConfig, **dotted: Any) -> TrainConfig:
    """Replace values by dotted name (`optim.lr=...`), ignoring None (unset CLI options)."""
    for name, value in dotted.items():
        if value is None:
            continue
        section, _, key = name.rpartition(".")
        if not section:
            cfg = dataclasses.replace(cfg, **{key: value})
            continue
        sub = getattr(cfg, section)
        if key not in {f.name for f in fields(sub)}:
            raise ConfigError(f"unknown parameter train.{name}")
        cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(sub, **{key: value})})
    return check_config(cfg)


# ---- evaluation: `dftrain eval` and `dftrain predict` (params.yaml `eval:`) -------------------


@dataclass(frozen=True)
class EvalConfig:
    split: str = "test"  # the test list: videos of this split in the extract's *.videos.parquet
    threshold: float = 0.5  # P(fake) >= threshold is called fake (bACC, predict's verdict)
    no_face_score: float = 0.5  # score of a test video without any face crop (no face, or failed)
    batch_size: int = 128  # crops per forward pass
    workers: int = -1  # JPEG-decoding loader processes; -1 = cores - 1 (at most one per shard)
    device: str = "auto"  # auto (cuda when there is one) | cpu | cuda
    amp: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | bf16 | off


def check_eval_config(cfg: EvalConfig, where: str = "options") -> EvalConfig:
    """Reject values no evaluation can use, naming the parameter."""
    from dfprep.schema import SPLITS

    def bad(name: str, msg: str) -> ConfigError:
        return ConfigError(f"{where}: eval.{name}: {msg}")

    if cfg.split not in SPLITS:
        raise bad("split", f"{cfg.split!r} is not one of {', '.join(SPLITS)}")
    if not 0.0 <= cfg.threshold <= 1.0:
        raise bad("threshold", f"{cfg.threshold} is not in [0, 1]")
    if not 0.0 <= cfg.no_face_score <= 1.0:
        raise bad("no_face_score", f"{cfg.no_face_score} is not in [0, 1]")
    if cfg.batch_size < 1:
        raise bad("batch_size", f"must be >= 1, got {cfg.batch_size}")
    if cfg.workers < -1:
        raise bad("workers", f"must be >= -1, got {cfg.workers}")
    if cfg.device not in ("auto", "cpu", "cuda") and not cfg.device.startswith("cuda:"):
        raise bad("device", f"{cfg.device!r} is not one of auto, cpu, cuda, cuda:N")
    if cfg.amp not in ("auto", "bf16", "off"):
        raise bad("amp", f"{cfg.amp!r} is not one of auto, bf16, off")
    return cfg


def load_eval_params(path: str | Path | None = None, **overrides: Any) -> EvalConfig:
    """The `eval:` section of a params.yaml (defaults when path is None), then the non-None overrides."""
    cfg = (
        EvalConfig()
        if path is None
        else _build(EvalConfig, _read_section(path, "eval"), f"{path}: eval")
    )
    unknown = sorted(set(overrides) - {f.name for f in fields(EvalConfig)})
    if unknown:
        raise ConfigError(f"unknown parameter eval.{unknown[0]}")
    cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    return check_eval_config(cfg, str(path) if path is not None else "options")


def eval_defaults() -> dict[str, Any]:
    """The `eval:` section params.yaml must hold."""
    return _lists(dataclasses.asdict(EvalConfig()))
