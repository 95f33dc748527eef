"""The one schema for videos, crops and their labels, shared by dfprep and dftrain.

Every table the pipeline writes (manifest, crop index, per-video status) and every sample's JSON
is defined here, so the two packages cannot drift apart.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field

import pyarrow as pa

REAL, FAKE = 0, 1
LABEL_NAMES = {REAL: "real", FAKE: "fake"}
CATEGORIES = ("real", "FS", "RE", "unknown")  # FS = face swap, RE = reenactment
SPLITS = ("train", "val", "test")
TEST_SPLIT = "test"  # what is scored: label-blind, never paired (dfprep.pairing.label_blind)
STATUSES = ("ok", "no_face", "failed")
INPUT_KINDS = ("video", "frames")  # "frames": a directory of images read in name order
FACES = ("detect", "shipped")  # shipped: the frames are the publisher's face crops (no detection)

_KEY_SAFE = re.compile(r"[^A-Za-z0-9_-]")

SEGMENT_TYPE = pa.struct([("start", pa.float64()), ("end", pa.float64())])

MANIFEST_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),  # globally unique, [A-Za-z0-9_-] only, stable across runs
        ("path", pa.string()),  # absolute path of the video file or frame directory
        ("dataset", pa.string()),
        ("split", pa.string()),  # train | val | test
        (
            "split_derived",
            pa.bool_(),
        ),  # True when the dataset has no official split and we made one
        ("label", pa.int8()),  # 0 real, 1 fake (video level)
        ("method", pa.string()),  # manipulation method, "real" for real videos
        ("category", pa.string()),  # real | FS | RE | unknown
        ("source_id", pa.string()),  # identity / original the video derives from (split grouping)
        ("kind", pa.string()),  # video | frames
        ("frame_stride", pa.int32()),  # for kind=frames: keep every n-th image
        ("fake_segments", pa.list_(SEGMENT_TYPE)),  # fake time ranges (s); null = whole video
        ("faces", pa.string()),  # detect | shipped (kind=frames only: each image is a face crop)
        # the video_id of the real video a fake was made from ("" = none known); extract decodes
        # the two together and keeps the faces that differ (the manipulated ones)
        ("original_id", pa.string()),
        # absolute path of the publisher's manipulation-mask video of a fake ("" = none; FF++, DFD)
        ("mask_path", pa.string()),
    ]
)

CROP_INDEX_SCHEMA = pa.schema(
    [
        ("key", pa.string()),  # WebDataset __key__ (no dots)
        ("shard", pa.string()),  # shard file name, e.g. ffpp-000003.tar
        ("video_id", pa.string()),
        ("dataset", pa.string()),
        ("split", pa.string()),
        (
            "label",
            pa.int8(),
        ),  # crop label (differs from video_label only inside/outside fake segments)
        ("video_label", pa.int8()),
        ("category", pa.string()),
        ("method", pa.string()),
        ("sample_index", pa.int32()),  # k of the k-th sampling time (k / fps), or image number
        ("frame_index", pa.int32()),  # frame number in presentation order (nominal for seeks)
        ("time", pa.float64()),  # seconds from the stream start
        ("face_index", pa.int16()),  # 0 = largest face in the frame
        ("score", pa.float32()),
        ("bbox", pa.list_(pa.float32(), 4)),  # x1, y1, x2, y2 in source pixels
        ("landmarks", pa.list_(pa.float32(), 10)),  # 5 points (x, y) in source pixels
        ("jpeg_bytes", pa.int32()),
        # a paired fake's crop: how much its face differs from the original (or its mask share);
        # null for every other crop (and absent from indexes written before pairing)
        ("manip_score", pa.float32()),
        # faces in the crop's frame: detections above detect.score_threshold and min_face_size
        # (absent from older indexes, like pts_time)
        ("faces_in_frame", pa.int16()),
        # the presentation time in seconds (a player's clock): `time` plus the stream's first
        # timestamp, which is not 0 in every file
        ("pts_time", pa.float64()),
    ]
)

VIDEO_STATUS_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("path", pa.string()),
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("label", pa.int8()),
        ("category", pa.string()),
        ("method", pa.string()),
        ("status", pa.string()),  # ok | no_face | failed
        ("error", pa.string()),  # one line; empty when ok
        ("frames_sampled", pa.int32()),
        ("frames_with_face", pa.int32()),
        ("crops", pa.int32()),
        ("strategy", pa.string()),  # seek | sequential | frames
        ("duration", pa.float64()),
        ("width", pa.int32()),  # the frames' display size (rotation applied): the boxes' pixels
        ("height", pa.int32()),
        ("original_id", pa.string()),  # the manifest's original_id ("" = none)
        # how its fake crops were chosen: "" (the largest faces) | diff | mask | fallback: <reason>
        ("pairing", pa.string()),
        ("faces_dropped", pa.int32()),  # faces left out as unmanipulated
        # the most faces in one sampled frame, and the share of sampled frames with two or more
        # (faces as in the crop index's faces_in_frame; absent from older tables, like flags)
        ("max_faces_in_frame", pa.int32()),
        ("multi_face_share", pa.float32()),
        # comma-separated: multi_face_fake = an unpaired train/val fake with several faces in a
        # frame, whose crops may show a real face labelled fake (pair it or leave it out)
        ("flags", pa.string()),
        # a failure that can pass (file missing, time limit, I/O): a resume runs the video again
        ("transient", pa.bool_()),
    ]
)

MULTI_FACE_FAKE = "multi_face_fake"  # the one flag so far (VIDEO_STATUS_SCHEMA's flags)

# columns added after the first shards were written (with pairing; with the faces per frame and
# the presentation time): shards without them still read (as nulls) and verify
LATER_COLUMNS = frozenset(
    {"manip_score", "original_id", "pairing", "faces_dropped", "faces_in_frame", "pts_time",
     "max_faces_in_frame", "multi_face_share", "flags", "transient"}
)  # fmt: skip

# video_problems.parquet (beside extract.json, and in `dfprep report`'s folder): one row per video
# and problem, for filtering (dfprep.problems)
PROBLEM_KINDS = ("failed", "no_face", "warning", "multi_face_fake", "multi_face")
PROBLEM_SCHEMA = pa.schema(
    [VIDEO_STATUS_SCHEMA.field(c) for c in ("video_id", "path", "dataset", "split", "label")]
    + [VIDEO_STATUS_SCHEMA.field(c) for c in ("method", "status")]
    + [("problem", pa.string()), ("reason", pa.string())]  # one of PROBLEM_KINDS; one line
    + [VIDEO_STATUS_SCHEMA.field(c) for c in ("max_faces_in_frame", "multi_face_share")]
)

# NAME.dropped.parquet: a few faces per paired fake that were left out as unmanipulated (their
# thumbnails, for `dfprep report`'s contact sheet); written only when there is one
DROPPED_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("dataset", pa.string()),
        ("method", pa.string()),
        ("sample_index", pa.int32()),
        ("frame_index", pa.int32()),
        ("time", pa.float64()),
        ("bbox", pa.list_(pa.float32(), 4)),
        ("manip_score", pa.float32()),
        ("source", pa.string()),  # diff | mask
        ("jpg", pa.binary()),  # the face with the crop's margin, 112 px
    ]
)


def make_video_id(dataset: str, relpath: str) -> str:
    """`dataset-` + the relative path without extension, `/` -> `-`, other unsafe characters -> `_`.

    When a character had to be replaced (spaces, dots, brackets...), a short hash of the exact
    relative path is appended so that two paths that sanitise alike keep distinct ids.
    """
    rel = relpath.replace("\\", "/").strip("/")
    stem, dot, ext = rel.rpartition(".")
    if not dot or "/" in ext:
        stem = rel
    parts = [dataset, *stem.split("/")]
    raw = "-".join(parts)
    safe = _KEY_SAFE.sub("_", raw)
    if safe != raw:
        safe += "-h" + hashlib.sha1(rel.encode("utf-8")).hexdigest()[:8]
    return safe


def make_key(video_id: str, sample_index: int, face_index: int) -> str:
    """WebDataset key of one face crop: unique (one sample per time step), never contains a dot."""
    return f"{video_id}_s{sample_index:05d}_{face_index}"


@dataclass(frozen=True)
class SampleLabels:
    """Labels carried by every face crop (the `.json` member of a sample, and the crop index)."""

    video_id: str
    dataset: str
    split: str
    label: int  # crop label, 0 real / 1 fake
    video_label: int
    category: str
    method: str


@dataclass
class CropRecord:
    """One face crop: its labels plus where it came from. `to_json` is the sample's `.json`."""

    key: str
    labels: SampleLabels
    sample_index: int
    frame_index: int
    time: float
    face_index: int
    score: float
    bbox: list[float]
    landmarks: list[float] = field(default_factory=list)
    manip_score: float | None = None  # paired fakes only: unpaired crops keep their old .json
    faces_in_frame: int | None = None  # None: not known (a record made outside extract)
    pts_time: float | None = None

    def to_json(self) -> dict:
        d = asdict(self.labels)
        d.update(
            key=self.key,
            sample_index=self.sample_index,
            frame_index=self.frame_index,
            time=round(self.time, 6),
            face_index=self.face_index,
            score=round(float(self.score), 5),
            bbox=[round(float(v), 2) for v in self.bbox],
            landmarks=[round(float(v), 2) for v in self.landmarks],
        )
        if self.manip_score is not None:
            d["manip_score"] = round(float(self.manip_score), 4)
        if self.faces_in_frame is not None:
            d["faces_in_frame"] = int(self.faces_in_frame)
        if self.pts_time is not None:
            d["pts_time"] = round(self.pts_time, 6)
        return d


# ---- label schemes used by the trainer -------------------------------------------------------
# The catalogue (manifests/catalogue.yaml) is the source of the training-dataset order; this is the
# paper's order and the default when no catalogue is given.
TRAIN_DATASETS = ("ffpp", "celebdf", "dfdc", "fakeavceleb", "forgerynet")
LABEL_MODES = ("binary", "category", "dataset")


def class_names(
    mode: str, train_datasets: tuple[str, ...] | list[str] = TRAIN_DATASETS
) -> list[str]:
    """Class index -> name for a label mode; class 0 is always `real`."""
    if mode == "binary":
        return ["real", "fake"]
    if mode == "category":
        return ["real", "FS", "RE"]
    if mode == "dataset":
        return ["real", *train_datasets]
    raise ValueError(f"unknown label mode {mode!r} (use {', '.join(LABEL_MODES)})")


def class_index(
    sample: dict, mode: str, train_datasets: tuple[str, ...] | list[str] = TRAIN_DATASETS
) -> int:
    """The training class of one sample's labels (a `.json` dict) under a label mode."""
    if int(sample["label"]) == REAL:
        return 0
    if mode == "binary":
        return 1
    if mode == "category":
        cat = sample["category"]
        if cat not in ("FS", "RE"):
            raise ValueError(
                f"{sample.get('key', '?')}: category {cat!r} has no class in the category scheme"
            )
        return 1 if cat == "FS" else 2
    if mode == "dataset":
        ds = sample["dataset"]
        if ds not in train_datasets:
            raise ValueError(f"{sample.get('key', '?')}: dataset {ds!r} is not a training dataset")
        return 1 + list(train_datasets).index(ds)
    raise ValueError(f"unknown label mode {mode!r} (use {', '.join(LABEL_MODES)})")
