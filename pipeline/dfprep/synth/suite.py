"""Miniatures of the nine datasets of the paper, each in its publisher's layout (`dfprep synth --layout all`).

ROOT/ffpp          FF++ c23 (5 pairs per 10 originals) with the DeepFakeDetection part
ROOT/celebdf       Celeb-DF v2: Celeb-real, YouTube-real, Celeb-synthesis, List_of_testing_videos.txt
ROOT/dfdc          DFDC: dfdc_train_part_0/metadata.json, validation/labels.csv, test/labels.csv
ROOT/fakeavceleb   FakeAVCeleb v1.2: meta_data.csv (header one name short) and the four type folders
ROOT/forgerynet    ForgeryNet: Training/ and Validation/ video_list.txt, partly manipulated videos too
ROOT/df40          DF40 (Celeb-DF domain): DF40/<method>/cdf/frames/<vid>/*.png, the Celeb-DF test reals
ROOT/wilddeepfake  WildDeepfake: {real,fake}_{train,test}/<N>.tar.gz extracted in place
ROOT/dfeval2024    Deepfake-Eval-2024: video-metadata-publish.csv, video-data/
ROOT/itw           an in-house folder: real/, fake/

Every dataset is read by its real adapter. Identities come from one global pool per split (train,
val, test; `faces.identity`: the eight photographed people and variants of them), so the people of
a test split are never seen in any training or validation split. Where an adapter derives the
split itself (FakeAVCeleb, ForgeryNet's val), the miniature asks the adapter's own `derive_splits`
first. Each dataset has its own mix of manipulation kinds (`kinds.py`); DF40, WildDeepfake,
Deepfake-Eval-2024 and the in-house set hold kinds no training set has, and the three in-the-wild
sets are downscaled and recompressed. Same config, same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tarfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dfprep.config import SynthConfig
from dfprep.core.lock import output_lock
from dfprep.core.outputs import output_dir
from dfprep.core.owned import replacing
from dfprep.core.progress import Count, track_futures
from dfprep.synth.clip import render
from dfprep.synth.faces import base_faces
from dfprep.synth.layouts import (
    plan_celebdf,
    plan_df40,
    plan_dfdc,
    plan_dfeval2024,
    plan_fakeavceleb,
    plan_ffpp,
    plan_forgerynet,
    plan_itw,
    plan_wilddeepfake,
)
from dfprep.synth.suite_plan import Plan

DATASETS = (
    "ffpp",
    "celebdf",
    "dfdc",
    "fakeavceleb",
    "forgerynet",
    "df40",
    "wilddeepfake",
    "dfeval2024",
    "itw",
)
MARKER = ".dfprep-synth-suite.json"  # the config and every file written (dfprep.core.owned)
OWNER = "dataset miniatures"


def plan_suite(cfg: SynthConfig) -> Plan:  # cfg: validated when it was made
    p = Plan(cfg)
    plan_ffpp(p)
    test_reals = plan_celebdf(p)
    plan_dfdc(p)
    plan_fakeavceleb(p)
    plan_forgerynet(p)
    plan_df40(p, test_reals)
    plan_wilddeepfake(p)
    plan_dfeval2024(p)
    plan_itw(p)
    return p


def _archive(root: Path, src: str, dst: str) -> None:
    d = root / src
    with tarfile.open(root / dst, "w:gz", compresslevel=1) as tar:
        for q in sorted(d.rglob("*")):
            info = tar.gettarinfo(str(q), arcname=q.relative_to(d.parent).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if q.is_file():
                with q.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def synth_suite(
    root: str | Path, cfg: SynthConfig | None = None, progress: Count | None = None
) -> dict:
    """Write the nine miniatures under `root`; returns a summary (records: one per labelled video).
    `progress(done, total)` counts the videos rendered."""
    cfg = cfg or SynthConfig()
    started = time.perf_counter()
    plan = plan_suite(cfg)
    root = output_dir(root, "synth: output root")
    made_with = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "workers"}
    info = json.loads(json.dumps({"generator": "dfprep.synth.suite", **made_with}, default=list))
    with output_lock(root, "dfprep synth"), replacing(root, MARKER, info, "synth", OWNER):
        _write(root, cfg, plan, progress)
    nbytes = sum(q.stat().st_size for q in root.rglob("*") if q.is_file())
    counts = Counter(r["dataset"] for r in plan.records)
    return {
        "root": str(root.resolve()),
        "datasets": {d: str(root / d) for d in DATASETS},
        "videos": len(plan.clips),
        "per_dataset": dict(counts),
        "records": plan.records,
        "bytes": nbytes,
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def _write(root: Path, cfg: SynthConfig, plan: Plan, progress: Count | None = None) -> None:
    """Render every clip into ROOT and write the datasets' own files, copies and archives."""
    base_faces()  # detect once, before the threads start
    jobs = sorted(
        plan.clips, key=lambda dc: -dc[1].size[0] * dc[1].size[1] * dc[1].seconds * dc[1].fps
    )
    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        futures = [pool.submit(render, root / ds, clip) for ds, clip in jobs]
        track_futures(futures, progress)
        for f in futures:
            f.result()
    for rel, text in plan.files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for src, dst in plan.copies:
        (root / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / src, root / dst)
    for src, dst in plan.archives:
        _archive(root, src, dst)
