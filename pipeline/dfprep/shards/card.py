"""What other clients need to read an extract output as it is: a dataset card and a wids index.

- DIR/README.md: a HuggingFace dataset card whose YAML names the tars (`configs`) and their
  features (`dataset_info`): `cls` a class label with its names (real, fake), `jpg` an image, `json`
  the crop record (`dfprep.schema.CropRecord`). `datasets.load_dataset(DIR)` reads it so;
  `load_dataset("webdataset", data_dir=DIR/shards)` reads the tars alone.
- DIR/wids.json: the shard index `wids.ShardListDataset(DIR/wids.json)` opens (tars relative to
  it, with their sample counts).

Both are rewritten after every extract run from the stats of the complete shards on disk.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import yaml

from dfprep.core.atomic import write_text, writing
from dfprep.schema import LABEL_NAMES, CropRecord, SampleLabels
from dfprep.shards.names import find_shards

__all__ = ["CARD", "HF_SPLIT", "WIDS_INDEX", "card_yaml", "json_features", "write_card"]

CARD, WIDS_INDEX = "README.md", "wids.json"
HF_SPLIT = "crops"  # every crop of the folder; the dataset's own split is json.split
_TYPES = {"str": "string", "int": "int64", "float": "float64", "float | None": "float64",
          "int | None": "int64"}  # fmt: skip


def json_features() -> list[dict]:
    """The `.json` member (CropRecord.to_json) as HuggingFace features, keys sorted like the file."""
    types = {f.name: str(f.type) for f in dataclasses.fields(SampleLabels)}
    types.update(
        {f.name: str(f.type) for f in dataclasses.fields(CropRecord) if f.name != "labels"}
    )
    out = []
    for name in sorted(types):
        t = types[name]
        out.append({"name": name, "list": "float64"} if t == "list[float]" else
                   {"name": name, "dtype": _TYPES[t]})  # fmt: skip
    return out


def card_yaml() -> dict:
    names = {str(k): v for k, v in sorted(LABEL_NAMES.items())}
    return {
        "configs": [{"config_name": "default",
                     "data_files": [{"split": HF_SPLIT, "path": "shards/*.tar"}]}],
        "dataset_info": {"features": [
            {"name": "cls", "dtype": {"class_label": {"names": names}}},
            {"name": "jpg", "dtype": "image"},
            {"name": "json", "struct": json_features()},
            {"name": "__key__", "dtype": "string"},
            {"name": "__url__", "dtype": "string"},
        ]},
        "tags": ["deepfake-detection", "face-crops", "webdataset"],
    }  # fmt: skip


def _body(shards: int, crops: int, videos: int, manifests: list[str]) -> str:
    return f"""# Face crops written by `dfprep extract`

{crops:,} face crops of {videos:,} videos in {shards:,} WebDataset shards (`shards/*.tar`), from
{", ".join(f"`{m}`" for m in manifests) or "no manifest yet"}. Each sample is a 224 x 224 face
crop (`jpg`), its label (`cls`: 0 real, 1 fake) and its record (`json`: dataset, split, method,
category, video, time, box, landmarks). The dataset's own split of each crop is `json.split`; the
folder holds every split. The crop index and the video status table of each shard are in `meta/`.

```python
from datasets import load_dataset                      # this card: cls is a ClassLabel
ds = load_dataset("PATH/TO/THIS/FOLDER", split="{HF_SPLIT}")
test = ds.filter(lambda s: s["json"]["split"] == "test")

import webdataset as wds, glob                          # a stream of samples
stream = wds.WebDataset(sorted(glob.glob("PATH/TO/THIS/FOLDER/shards/*.tar")), shardshuffle=False)

import wids                                             # indexed access
crops = wids.ShardListDataset("PATH/TO/THIS/FOLDER/{WIDS_INDEX}")
```
"""


def write_card(extract_dir: str | Path) -> None:
    """Write DIR/README.md and DIR/wids.json for the complete shards of DIR (see above)."""
    d = Path(extract_dir)
    complete, _ = find_shards(d)
    rows, crops, videos, manifests = [], 0, 0, set()
    for files in complete:
        stats = files.read_stats() or {}
        n = int(stats.get("crops", 0))
        crops, videos = crops + n, videos + int(stats.get("videos", 0))
        if stats.get("manifest"):
            manifests.add(Path(str(stats["manifest"])).name)
        if n:  # an empty tar has no sample to index
            rows.append({"url": f"shards/{files.tar.name}", "nsamples": n,
                         "filesize": files.tar.stat().st_size})  # fmt: skip
    front = yaml.safe_dump(card_yaml(), sort_keys=False)
    text = f"---\n{front}---\n\n{_body(len(complete), crops, videos, sorted(manifests))}"
    index = {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": d.name,
             "shardlist": rows}  # fmt: skip
    with writing(d / CARD):
        write_text(d / CARD, text)
    with writing(d / WIDS_INDEX):
        write_text(d / WIDS_INDEX, json.dumps(index, indent=1) + "\n")
