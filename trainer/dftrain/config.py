"""Every tunable of `dftrain run` and `dftrain eval`, with the paper's defaults and each value's
rule, as frozen dataclasses.

`params.yaml` holds them under `train:` (same nesting) and `eval:`; `load_train_params` and
`load_eval_params` read those sections with the loader dfprep uses (`dfprep.core.config`), so an
unknown key or a bad value is an error naming it before anything runs.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfprep.core.config import (
    SEED_MAX,
    Bool,
    Checked,
    Choice,
    Float,
    Int,
    OrAuto,
    Seq,
    Text,
    build,
    load,
    override,
    param,
    read_value,
    reject,
    validate,
)
from dfprep.core.errors import ConfigError, first_line
from dfprep.schema import LABEL_MODES, SPLITS
from dftrain.sbi.config import SBIConfig

# FSFM was pre-trained on VGGFace2 faces normalised with these statistics (its DfD fine-tuning keeps them).
VGGFACE2_MEAN = (0.5482207536697388, 0.42340534925460815, 0.3654651641845703)
VGGFACE2_STD = (0.2789176106452942, 0.2438540756702423, 0.23493893444538116)

TRIPLET_STRATEGIES = ("none", "batch_all", "hard", "easy_positive")
TRIPLET_LABELS = ("train", "binary")
INIT_KINDS = ("fsfm", "timm", "none")
AMP_MODES = ("auto", "bf16", "off")
TRAIN_DEVICES = ("auto", "cpu", "cuda")  # under torchrun, cuda is cuda:LOCAL_RANK
INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "box", "hamming", "lanczos")  # timm's (PIL)
RE_MODES = ("pixel", "rand", "const")  # timm's random erasing
MAX_BATCH = 65_536
MAX_WORKERS = 1024
EMBEDDINGS = ("post_norm", "pre_norm")
REDUCTIONS = ("batch", "valid")
VAL_LOSSES = ("objective", "ce")
NO_FACE_POLICIES = ("drop", "score")
COMPILE_BACKENDS = ("inductor", "aot_eager", "eager")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "linear_decay")
# a video's score from its crops: mean over all its faces (the paper) | the max over the faces of
# each frame, then the mean over frames (SBI's) | auto: SBI's for a checkpoint trained with --sbi
AGGREGATES = ("auto", "mean", "frame_max")
FSFM_CHECKPOINT = "fsfm:PATH/checkpoint-400.pth"  # FSFM's VF2_ViT-B pre-training weights


def check_init(s: str) -> str | None:
    if s == "":  # unset: see resolve_init
        return None
    kind, _, path = s.partition(":")
    if kind not in INIT_KINDS or (kind != "none" and not path) or (kind == "none" and path):
        return f"{s!r}: use fsfm:PATH, timm:PATH or none"
    return None


def check_model_name(s: str) -> str | None:
    ok = re.fullmatch(r"[A-Za-z0-9_.\-]+", s)
    return None if ok else f"{s!r} is not a timm model name (e.g. vit_base_patch16_224)"


def check_dataset_name(s: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z0-9_\-]+", s) else f"{s!r} is not a dataset name"


@functools.lru_cache(maxsize=64)
def check_auto_augment(s: str) -> str | None:
    """'' (off) or a policy timm parses, tried the way timm's create_transform uses it."""
    if s == "":
        return None
    from timm.data.auto_augment import (
        augment_and_mix_transform,
        auto_augment_transform,
        rand_augment_transform,
    )

    hparams = {"translate_const": 100, "img_mean": (124, 116, 104)}
    try:
        if s.startswith("rand"):
            rand_augment_transform(s, hparams)
        elif s.startswith("augmix"):
            augment_and_mix_transform(s, {**hparams, "translate_pct": 0.3})
        else:
            auto_augment_transform(s, hparams)
    except Exception as e:  # timm raises KeyError/AssertionError/ValueError for a bad policy
        why = first_line(e) or type(e).__name__
        return f"{s!r} is not a timm augmentation policy such as rand-m9-mstd0.5-inc1, augmix-m5-w4-d2, original or '' ({why})"
    return None


def check_eval_device(s: str) -> str | None:
    ok = s in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d{1,3}", s)
    return None if ok else f"{s!r} is not one of auto, cpu, cuda, cuda:N"


@dataclass(frozen=True)
class ModelConfig(Checked):
    SECTION = "train.model"

    # any timm ViT with abs. pos. embedding and `global_pool='avg'`
    name: str = param("vit_base_patch16_224", Text(check_model_name, "a timm model name"))
    img_size: int = param(224, Int(8, 4096))
    patch_size: int = param(0, Int(0, 1024))  # 0 = the model's own (tests use tiny grids)
    depth: int = param(0, Int(0, 1024))  # 0 = the model's own
    drop_path: float = param(0.1, Float(0, 1, hi_open=True))
    # fsfm:PATH (checkpoint-400.pth) | timm:PATH (ImageNet weights file) | none (random) | "" = unset:
    # refused for the paper's model (ViT-B/16 is FSFM-initialised), random init for any other
    init: str = param("", Text(check_init, "fsfm:PATH, timm:PATH, none or '' (unset)"))
    # truncated normal std of the fresh head (FSFM/MAE)
    head_init_std: float = param(2e-5, Float(0, 1, lo_open=True))
    # timm's drop_rate: dropout before the head (a ViT also drops after its embeddings and
    # projections); SBI's EfficientNet-B4 used 0.4
    drop_rate: float = param(0.0, Float(0, 1, hi_open=True))


@dataclass(frozen=True)
class LabelConfig(Checked):
    SECTION = "train.labels"

    # binary | category (real/FS/RE) | dataset (real + one class per dataset)
    mode: str = param("binary", Choice(LABEL_MODES))
    # attribution class order; () = dfprep.schema.TRAIN_DATASETS
    datasets: tuple[str, ...] = param(
        (), Seq(Text(check_dataset_name, "a dataset name"), max_n=1000, unique=True)
    )
    # control run: each training/val video gets a pseudo-random class instead of its own, spread
    # evenly over each split's true classes (labels.stratified_shuffle); a model trained so must
    # stay at chance on the test sets (nothing leaks)
    shuffle: bool = param(False, Bool())


@dataclass(frozen=True)
class LossConfig(Checked):
    SECTION = "train.loss"

    # none | batch_all | hard | easy_positive (batch_all: the paper's best)
    triplet: str = param("batch_all", Choice(TRIPLET_STRATEGIES))
    # on Euclidean distances of the pooled, un-normalised embedding (ViT-B embeddings' distances
    # are of order 1-100: a margin above 1000 only adds a constant to the loss)
    margin: float = param(1.0, Float(0, 1000))
    # the triplet embedding, "the pooled features (D = 768)": post_norm = after fc_norm, what FSFM's
    # forward_features returns and the FC head reads | pre_norm = the raw mean of the patch tokens
    embedding: str = param("post_norm", Choice(EMBEDDINGS))
    # hard / easy_positive: batch = (1/B) sum over the B anchors, the paper's | valid = mean over the
    # anchors that have a positive and a negative (batch_all: always the mean over active triplets)
    reduction: str = param("batch", Choice(REDUCTIONS))
    # loss = CE + weight * triplet. auto: w = mean CE / mean triplet over the first
    # `weight_batches` training batches, once, before the first step (the model as training
    # starts), so that both terms start in the same range, the paper's reading ("w was chosen
    # such that the BCE and triplet loss components contributed comparably"); recorded in
    # config.json and the metrics (loss/weight), reused on resume
    weight: float | str = param("auto", OrAuto(Float(0, 1000)))
    weight_batches: int = param(20, Int(1, 100_000))
    # the checkpoint criterion ("the lowest validation loss"): objective = CE + w x triplet, the
    # loss the run trains, on the same val batches every epoch | ce = cross-entropy alone
    val_loss: str = param("objective", Choice(VAL_LOSSES))
    # train (the classes of labels.mode) | binary (real vs fake)
    triplet_labels: str = param("train", Choice(TRIPLET_LABELS))
    label_smoothing: float = param(0.0, Float(0, 1, hi_open=True))
    mixup: float = param(0.0, Float(0, 100))  # mixup alpha; cross-entropy-only runs (0 = off)
    cutmix: float = param(0.0, Float(0, 100))  # cutmix alpha; cross-entropy-only runs (0 = off)


@dataclass(frozen=True)
class OptimConfig(Checked):
    SECTION = "train.optim"

    # "basic learning rate": peak lr = blr x global batch / 256 (FSFM/MAE rule)
    blr: float = param(1e-4, Float(0, 1, lo_open=True))
    # absolute peak lr, used as given when > 0 (blr ignored); 0 = unset
    lr: float = param(0.0, Float(0, 1))
    min_lr: float = param(1e-6, Float(0, 1))  # end of the cosine (at most the peak lr)
    # not on 1-D parameters, pos_embed, cls_token
    weight_decay: float = param(0.05, Float(0, 10))
    layer_decay: float = param(0.75, Float(0, 1, lo_open=True))
    betas: tuple[float, ...] = param((0.9, 0.999), Seq(Float(0, 1, hi_open=True), n=2))
    warmup_epochs: float = param(5.0, Float(0, 100_000))
    epochs: int = param(30, Int(1, 100_000))
    # per process (per GPU); triplets are mined inside it
    batch_size: int = param(64, Int(2, MAX_BATCH))
    clip_grad: float = param(0.0, Float(0, 1e6))  # max gradient norm; 0 = off
    # adamw (FSFM's, with betas) | sgd (SBI's, with momentum)
    optimizer: str = param("adamw", Choice(OPTIMIZERS))
    momentum: float = param(0.9, Float(0, 1, hi_open=True))  # sgd only
    # SAM's radius (Foret et al. 2021; SBI: 0.05): > 0 makes each step SAM's two forward/backward
    # passes around the optimizer above; 0 = off
    sam_rho: float = param(0.0, Float(0, 10))
    # cosine: warm-up, then half-cosine to min_lr (FSFM's) | linear_decay: warm-up, the peak lr,
    # then from epoch ⌊epochs x decay_start⌋ down linearly per epoch towards min_lr (SBI's LinearDecayLR)
    schedule: str = param("cosine", Choice(SCHEDULES))
    decay_start: float = param(0.75, Float(0, 1, hi_open=True))  # linear_decay only

    def cross_check(self) -> None:
        if self.lr > 0 and self.min_lr > self.lr:
            raise reject("train.optim.min_lr", f"{self.min_lr} is above train.optim.lr ({self.lr})")


@dataclass(frozen=True)
class AugConfig(Checked):
    """timm's training transform as FSFM's DfD fine-tuning uses it; eval is resize (+ crop) only."""

    SECTION = "train.aug"

    # "" = off (then timm adds colour jitter: color_jitter below)
    auto_augment: str = param(
        "rand-m9-mstd0.5-inc1", Text(check_auto_augment, "a timm policy or ''")
    )
    # random-resized-crop area range
    scale: tuple[float, ...] = param((0.08, 1.0), Seq(Float(0, 1, lo_open=True), n=2, ordered=True))
    ratio: tuple[float, ...] = param(
        (0.75, 1.3333333333333333), Seq(Float(0.01, 100), n=2, ordered=True)
    )
    hflip: float = param(0.5, Float(0, 1))
    # colour jitter strength (brightness, contrast, saturation), applied only when auto_augment is
    # '' (timm's rule; 0.4 is timm's and FSFM's default, unused under RandAugment); 0 = none
    color_jitter: float = param(0.4, Float(0, 10))
    re_prob: float = param(0.25, Float(0, 1))  # random erasing
    re_mode: str = param("pixel", Choice(RE_MODES))
    interpolation: str = param("bicubic", Choice(INTERPOLATIONS))
    # eval: resize to img_size / crop_pct, centre crop (FSFM's test used 0.875)
    crop_pct: float = param(1.0, Float(0, 1, lo_open=True))
    mean: tuple[float, ...] = param(VGGFACE2_MEAN, Seq(Float(0, 1), n=3))
    std: tuple[float, ...] = param(VGGFACE2_STD, Seq(Float(0, 1, lo_open=True), n=3))


@dataclass(frozen=True)
class DataConfig(Checked):
    SECTION = "train.data"

    # DataLoader workers per process; -1 = cores per process - 1 (at least 1)
    workers: int = param(-1, Int(-1, MAX_WORKERS))
    shuffle_buffer: int = param(2000, Int(1, 10_000_000))  # samples, before decoding
    shuffle_initial: int = param(500, Int(1, 10_000_000))
    prefetch: int = param(4, Int(1, 1024))  # batches prefetched per worker
    val_batch_size: int = param(0, Int(0, MAX_BATCH))  # 0 = optim.batch_size


@dataclass(frozen=True)
class TrainConfig(Checked):
    SECTION = "train"

    model: ModelConfig = field(default_factory=ModelConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    data: DataConfig = field(default_factory=DataConfig)
    # SBI's self-blended pseudo-fakes (`dftrain run --sbi`): dftrain.sbi, docs/train.md
    sbi: SBIConfig = field(default_factory=SBIConfig)
    seed: int = param(0, Int(0, SEED_MAX))
    amp: str = param("auto", Choice(AMP_MODES))  # auto (bf16 on CUDA, fp32 on CPU) | bf16 | off
    # auto | cpu | cuda (under torchrun: cuda:LOCAL_RANK)
    device: str = param("auto", Choice(TRAIN_DEVICES))
    log_every: int = param(10, Int(1, 1_000_000))  # iterations between logged training points
    # torch.compile the model for training (the first steps pay the compilation)
    compile: bool = param(False, Bool())
    # inductor | aot_eager | eager (the last two: debugging, CPU tests)
    compile_backend: str = param("inductor", Choice(COMPILE_BACKENDS))

    def cross_check(self) -> None:
        mixes = self.loss.mixup > 0 or self.loss.cutmix > 0
        if mixes and self.loss.triplet != "none":
            raise reject(
                "train.loss.mixup",
                "mixup/cutmix mix labels, which a triplet loss cannot use: set loss.triplet to none or mixup/cutmix to 0",
            )
        if mixes and self.optim.batch_size % 2:
            raise reject("train.optim.batch_size", "mixup/cutmix need an even batch size")
        if self.sbi.enabled and self.labels.mode != "binary":
            raise reject(
                "train.labels.mode",
                f"{self.labels.mode}: SBI's pseudo-fakes are one class; use binary with train.sbi.enabled",
            )
        if self.sbi.enabled and self.optim.batch_size % 2:
            raise reject(
                "train.optim.batch_size",
                f"{self.optim.batch_size}: SBI's batch is half reals, half their pseudo-fakes: use an even size",
            )


# Settings that change how fast a run goes, never what it computes: resume may change them.
# (Not data.workers: each worker reads its own shards, so the count shapes the sample order.)
RUN_ONLY = frozenset({"data.prefetch", "device", "log_every", "compile", "compile_backend"})


def check_config(cfg: TrainConfig) -> TrainConfig:
    """cfg, validated (it already was when it was made; kept for callers that re-check)."""
    return validate(cfg)


def resolve_init(cfg: TrainConfig) -> TrainConfig:
    """An unset `model.init`: an error for the paper's model (FSFM-initialised ViT-B/16), `none`
    (random weights) for any other architecture."""
    if cfg.model.init:
        return cfg
    if cfg.model.name == ModelConfig.name:
        raise ConfigError(
            f"train.model.init: the paper's {cfg.model.name} is FSFM-initialised: pass --init "
            f"{FSFM_CHECKPOINT} (FSFM's VF2_ViT-B weights), or --init none to train from random weights"
        )
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init="none"))


def with_weight(cfg: TrainConfig, weight: float) -> TrainConfig:
    """cfg with the triplet weight set (`loss.weight: auto` resolved)."""
    return dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, weight=float(weight)))


def effective_lr(optim: OptimConfig, world: int) -> tuple[float, int, str]:
    """(peak lr, global batch, how): `optim.lr` as given when set, else blr x global batch / 256,
    the global batch being batch_size per process x processes. A min_lr above it is an error."""
    global_batch = optim.batch_size * world
    if optim.lr > 0:
        lr, how = optim.lr, f"optim.lr {optim.lr:g}, as given"
    else:
        lr = optim.blr * global_batch / 256
        how = f"blr {optim.blr:g} x global batch {global_batch} / 256"
    if optim.min_lr > lr:
        raise ConfigError(
            f"train.optim.min_lr: {optim.min_lr:g} is above the peak lr {lr:g} ({how}); lower min_lr"
        )
    return lr, global_batch, how


def train_config_from_dict(data: dict[str, Any], where: str) -> TrainConfig:
    """A TrainConfig from its plain form (`to_dict`); errors are prefixed with `where`."""
    try:
        return build(TrainConfig, data)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def load_train_params(path: str | Path | None = None) -> TrainConfig:
    """The `train:` section of a params.yaml (the defaults when path is None or it has none)."""
    return load(path, TrainConfig, "train")


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


def parse_settings(items: list[str] | None, section: str = "train") -> dict[str, Any]:
    """`--set KEY=VALUE` options -> {dotted key: value}: KEY relative to `section` (a leading
    `section.` is accepted), VALUE read as params.yaml would hold it (`read_value`). The values
    are checked by the config they go into."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, eq, text = item.partition("=")
        key = key.strip().removeprefix(f"{section}.")
        if not eq or not re.fullmatch(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*", key):
            raise ConfigError(
                f"--set {item!r}: expected KEY=VALUE with a {section} parameter, e.g. optim.sam_rho=0.05"
            )
        out[key] = read_value(text, f"--set {item!r}")
    return out


def with_overrides(cfg: TrainConfig, **dotted: Any) -> TrainConfig:
    """Replace values by dotted name (`optim.lr=...`), ignoring None (unset CLI options); validated,
    errors prefixed with `options:`."""
    return override(cfg, dotted)


# ---- evaluation: `dftrain eval` and `dftrain predict` (params.yaml `eval:`) -------------------


@dataclass(frozen=True)
class EvalConfig(Checked):
    SECTION = "eval"

    # the test list: videos of this split in the extract's *.videos.parquet
    split: str = param("test", Choice(SPLITS))
    # P(fake) >= threshold is called fake (bACC, predict's verdict)
    threshold: float = param(0.5, Float(0, 1))
    # a test video without any face crop (no face found, or unreadable): drop = left out of the
    # video metrics (the paper averages "the predictions of all faces in a video": none, no score) |
    # score = kept, scored no_face_score. metrics.json and table.md report both, with the count.
    no_face: str = param("drop", Choice(NO_FACE_POLICIES))
    # the score of such a video under no_face: score
    no_face_score: float = param(0.5, Float(0, 1))
    batch_size: int = param(128, Int(1, MAX_BATCH))  # crops per forward pass
    # JPEG-decoding loader processes; -1 = cores - 1 (at most one per shard)
    workers: int = param(-1, Int(-1, MAX_WORKERS))
    # auto (cuda when there is one) | cpu | cuda | cuda:N
    device: str = param("auto", Text(check_eval_device, "auto, cpu, cuda or cuda:N"))
    amp: str = param("auto", Choice(AMP_MODES))  # auto (bf16 on CUDA, fp32 on CPU) | bf16 | off
    # a video's score (AGGREGATES above): the paper averages "the predictions of all faces in a
    # video" (mean); SBI takes the max over each frame's faces, then the mean over frames (frame_max)
    aggregate: str = param("auto", Choice(AGGREGATES))


def check_eval_config(cfg: EvalConfig) -> EvalConfig:
    """cfg, validated (it already was when it was made)."""
    return validate(cfg)


def load_eval_params(path: str | Path | None = None, **overrides: Any) -> EvalConfig:
    """The `eval:` section of a params.yaml (defaults when path is None), then the non-None overrides."""
    return override(load(path, EvalConfig, "eval"), overrides)


def eval_defaults() -> dict[str, Any]:
    """The `eval:` section params.yaml must hold."""
    return _lists(dataclasses.asdict(EvalConfig()))
