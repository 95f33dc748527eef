"""The sample codec: the bytes of one WebDataset sample, written and read in one place.

A sample is three tar members under one key (the label schema is `dfprep.schema.SampleLabels` /
`CropRecord`):
- `.jpg`: the face crop, a JPEG;
- `.cls`: the crop label as ASCII digits (0 real, 1 fake);
- `.json`: the crop record (labels, key, time, box, ...), keys sorted.

`encode_sample` is what every writer calls (extract, the synthetic shards); `check_sample` lists
what is wrong with a sample (for `dfprep verify`, which reports everything), `parse_sample` raises
on the first problem (for readers: balance, the trainer's loader); `decode_jpeg` is the one JPEG
decoder of both packages.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

from dfprep.core.errors import InputError

__all__ = [
    "SAMPLE_MEMBERS",
    "Sample",
    "check_sample",
    "decode_jpeg",
    "encode_sample",
    "is_complete_jpeg",
    "parse_sample",
]

SAMPLE_MEMBERS = ("cls", "jpg", "json")


def encode_sample(meta: dict[str, Any], jpg: bytes) -> dict[str, bytes]:
    """Members of one sample: META is its crop record (with `label` and `key`), JPG its crop."""
    return {
        "cls": str(int(meta["label"])).encode(),
        "jpg": jpg,
        "json": json.dumps(meta, sort_keys=True).encode(),
    }


@dataclass
class Sample:
    """What `check_sample` could read of a sample (None where it could not), and its problems."""

    meta: dict[str, Any] | None = None
    label: int | None = None  # the .json label
    cls: int | None = None  # the .cls label
    jpg: bytes | None = None
    problems: list[str] = field(default_factory=list)


def is_complete_jpeg(jpg: bytes) -> bool:
    """Start and end markers present (a cheap test that catches a cut-off file)."""
    return jpg[:2] == b"\xff\xd8" and b"\xff\xd9" in jpg[-16:]


def check_sample(
    members: dict[str, bytes], key: str | None = None, *, jpeg: bool = False
) -> Sample:
    """Every problem of one sample's members (KEY: the tar key its .json must name; JPEG: also
    check the .jpg's markers)."""
    s = Sample(jpg=members.get("jpg"))
    missing = [m for m in SAMPLE_MEMBERS if m not in members]
    if missing:
        s.problems.append(f"missing member(s) {', '.join('.' + m for m in missing)}")
    if "json" in members:
        try:
            meta = json.loads(members["json"])
        except ValueError as e:  # UnicodeDecodeError included
            s.problems.append(f".json does not parse as a sample record ({e})")
        else:
            if not isinstance(meta, dict):
                s.problems.append(".json does not parse as a sample record (not an object)")
            else:
                s.meta = meta
                if "label" not in meta:
                    s.problems.append("missing field 'label'")
                else:
                    try:
                        s.label = int(meta["label"])
                    except (TypeError, ValueError):
                        s.problems.append(f".json label {meta['label']!r} is not an integer")
                if key is not None and meta.get("key") != key:
                    s.problems.append(f".json names key {meta.get('key')!r}")
    if "cls" in members:
        try:
            s.cls = int(members["cls"])
        except ValueError:
            s.problems.append(f".cls {members['cls'][:20]!r} is not an integer")
        else:
            if s.label is not None and s.cls != s.label:
                s.problems.append(f".cls {s.cls} disagrees with the .json label {s.label}")
    if jpeg and s.jpg is not None and not is_complete_jpeg(s.jpg):
        s.problems.append(".jpg is not a complete JPEG (start or end marker missing)")
    return s


def parse_sample(
    members: dict[str, bytes], where: str, *, key: str | None = None, label: int | None = None
) -> Sample:
    """The sample's record and labels, or an InputError "WHERE: problem" for the first problem;
    LABEL: the label the sample must carry (that of the index it was selected from)."""
    s = check_sample(members, key)
    if s.problems:
        raise InputError(f"{where}: {s.problems[0]}")
    if label is not None and s.label != label:
        raise InputError(
            f"{where}: .json label {s.label} / .cls {s.cls} disagree with the index label {label}"
        )
    return s


def decode_jpeg(jpg: bytes, where: str):
    """A crop's JPEG bytes -> an RGB PIL image; an InputError "WHERE: undecodable .jpg" otherwise."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(jpg)) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"{where}: undecodable .jpg ({e})") from None
