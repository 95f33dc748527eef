"""A small sample dataset in the real FaceForensics++ layout, with real faces and our own fakes.

    original_sequences/youtube/c23/videos/NNN.mp4
    manipulated_sequences/{Deepfakes,FaceSwap,Face2Face,NeuralTextures}/c23/videos/AAA_BBB.mp4
    manipulated_sequences/<method>/masks/videos/AAA_BBB.mp4   (FF++'s masks: white where changed)
    splits/{train,val,test}.json        [["AAA", "BBB"], ...]
    synth_truth.json                    the manipulated face's box in every frame of every fake

As in FF++, originals come in pairs; each pair gives one fake per method and direction (AAA_BBB =
target AAA's video with source BBB's face or expression, same camera, size, rate and length as
AAA's), and a pair's originals and fakes share its split. Original i shows identity i
(`faces.identity`); original i is paired with original i + n/2, so partners are different people
whenever n is not a multiple of 16. Every random choice comes from `numpy.random.default_rng`
seeded with (seed, purpose, index), and x264 runs single-threaded: same config -> same bytes.

`synth.multi_person` two-person originals follow, ids after the single-person ones, paired among
themselves the same way (`dfprep.synth.group`): each of their fakes manipulates one of the two
faces, in some the smaller one throughout, in others the one that grows from smaller to larger.
Adding them leaves every single-person video byte for byte as it was. `synth_truth.json` is
ground truth for measuring (`dfprep.synth.truth`), never data: no adapter reads it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from dfprep.adapters.ffpp import METHOD_CATEGORY
from dfprep.config import MAX_ORIGINALS, SynthConfig
from dfprep.core.errors import ConfigError
from dfprep.core.lock import output_lock
from dfprep.core.outputs import output_dir
from dfprep.core.owned import replacing
from dfprep.core.progress import Count, track_futures
from dfprep.synth.camera import random_path
from dfprep.synth.faces import base_faces, identity
from dfprep.synth.group import SCENARIOS, build_group, film_group, with_face
from dfprep.synth.manipulate import (
    FS_METHODS,
    METHODS,
    RE_METHODS,
    random_drive,
    reenact,
    swap_face,
)
from dfprep.synth.render import FaceTrack, film, frame_times
from dfprep.synth.scene import Scene, build_scene
from dfprep.synth.truth import TRUTH_FILE, VERSION
from dfprep.videoio import as_rate

ORIGINALS_DIR = "original_sequences/youtube/c23/videos"
METHOD_DIR = "manipulated_sequences/{method}/c23/videos"
MASK_DIR = "manipulated_sequences/{method}/masks/videos"  # as in FF++: not under a compression
TRUTH = TRUTH_FILE  # every fake's manipulated face, frame by frame (dfprep.synth.truth)
MARKER = ".dfprep-synth.json"  # the config and every file written: lets a rerun replace the dataset
OWNER = "sample dataset"
DURATION_JITTER = 0.1
FACE_FRAC = (0.30, 0.40)  # face box height / frame height

# purposes of the seeded random streams
_SPLIT, _LENGTH, _SCENE, _DRIVE, _GROUP = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class OriginalSpec:
    vid: str
    index: int
    partner: int
    size: tuple[int, int]
    fps: Fraction
    seconds: float
    split: str


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720) (synth.sizes are checked when the config is made)."""
    w, h = (int(v) for v in str(text).lower().split("x"))
    return w, h


def split_pairs(pairs: list[tuple[str, str]], seed: int) -> dict[str, list[tuple[str, str]]]:
    """FF++-like proportions (72/14/14), at least one val and test pair once there are three pairs."""
    n = len(pairs)
    held = 0 if n < 2 else max(1, round(0.14 * n))
    n_test, n_val = held, (held if n >= 3 else 0)
    order = np.random.default_rng([seed, _SPLIT]).permutation(n)
    chosen = {
        "test": order[:n_test],
        "val": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
    }
    return {s: sorted(pairs[i] for i in chosen[s]) for s in ("train", "val", "test")}


def plan(cfg: SynthConfig) -> tuple[list[OriginalSpec], dict[str, list[tuple[str, str]]]]:
    """What to write: one spec per original, and the pairs of each split."""
    return _plan_ids(cfg, 0, cfg.originals)


def plan_multi(cfg: SynthConfig) -> tuple[list[OriginalSpec], dict[str, list[tuple[str, str]]]]:
    """The two-person originals: ids after the single-person ones, paired and split the same way."""
    n, m = cfg.originals, cfg.multi_person
    if n + m > MAX_ORIGINALS:
        raise ConfigError(
            f"synth.multi_person: {m} two-person originals after {n} others exceed the "
            f"{MAX_ORIGINALS} three-digit ids"
        )
    return _plan_ids(cfg, n, m)


def _plan_ids(
    cfg: SynthConfig, start: int, count: int
) -> tuple[list[OriginalSpec], dict[str, list[tuple[str, str]]]]:
    """Originals start .. start + count - 1: the first half paired with the second, split by pair."""
    ids = [f"{start + k:03d}" for k in range(count)]
    half = count // 2
    pairs = [(ids[k], ids[k + half]) for k in range(half)]
    splits = split_pairs(pairs, cfg.seed)
    split_of = {v: s for s, ps in splits.items() for p in ps for v in p}
    specs = []
    for k in range(count):
        i = start + k
        jitter = np.random.default_rng([cfg.seed, _LENGTH, i]).uniform(
            -DURATION_JITTER, DURATION_JITTER
        )
        specs.append(
            OriginalSpec(
                vid=ids[k],
                index=i,
                partner=start + (k + half) % count,
                size=parse_size(cfg.sizes[i % len(cfg.sizes)]),
                fps=as_rate(cfg.rates[i % len(cfg.rates)]),
                seconds=cfg.seconds * (1 + jitter),
                split=split_of[ids[k]],
            )
        )
    return specs, splits


def _record(root: Path, track: FaceTrack, spec: OriginalSpec, method: str, source: str) -> dict:
    rel = track.path.relative_to(root).as_posix()
    return {
        "relpath": rel,
        "split": spec.split,
        "label": 0 if method == "real" else 1,
        "method": method,
        "category": "real" if method == "real" else METHOD_CATEGORY[method],
        "target": spec.vid,
        "source": source,
        "fps": float(track.fps),
        "rate": str(track.fps),
        "width": track.size[0],
        "height": track.size[1],
        "frames": len(track),
        "seconds": len(track) / float(track.fps),
        "bytes": track.path.stat().st_size,
        "boxes": np.round(track.boxes, 2).tolist(),
        "landmarks": np.round(track.landmarks.reshape(-1, 10), 2).tolist(),
        "faces": 1 if track.others is None else 2,
        # the other, pristine face of a two-person scene ([] per frame when there is none)
        "others": [[] for _ in range(len(track))]
        if track.others is None
        else [[b] for b in np.round(track.others, 2).tolist()],
    }


def _film_target(
    root: Path, spec: OriginalSpec, source: OriginalSpec, cfg: SynthConfig
) -> list[dict]:
    """The original `spec` and the four fakes that use it as target (source: its partner)."""
    rng = np.random.default_rng([cfg.seed, _SCENE, spec.index])
    scene = build_scene(identity(spec.index), spec.size, float(rng.uniform(*FACE_FRAC)), rng)
    camera = random_path(rng, spec.size)
    times = frame_times(spec.fps, spec.seconds)
    enc = {"crf": cfg.crf, "preset": cfg.preset}
    track = film(root / ORIGINALS_DIR / f"{spec.vid}.mp4", scene, camera, spec.fps, times, **enc)
    out = [_record(root, track, spec, "real", spec.vid)]
    donor = identity(source.index)
    drive = random_drive(np.random.default_rng([cfg.seed, _DRIVE, source.index]))
    for method in METHODS:
        name = f"{spec.vid}_{source.vid}.mp4"
        path = root / METHOD_DIR.format(method=method) / name
        mask = root / MASK_DIR.format(method=method) / name
        if method in FS_METHODS:
            canvas = swap_face(scene.canvas, scene.landmarks, donor.rgb, donor.landmarks, method)
            swapped = Scene(canvas, scene.box, scene.landmarks, scene.anchor, scene.size)
            track = film(
                path,
                swapped,
                camera,
                spec.fps,
                times,
                mask_path=mask,
                reference=scene.canvas,
                **enc,
            )
        else:
            assert method in RE_METHODS

            def effect(frame, lms, t, method=method):
                return reenact(frame, lms, t, drive, method)

            track = film(path, scene, camera, spec.fps, times, effect=effect, mask_path=mask, **enc)
        out.append(_record(root, track, spec, method, source.vid))
    return out


def _group_scene(spec: OriginalSpec, cfg: SynthConfig):
    """The two-person scene of a two-person original: scenarios alternate, so does the target side."""
    k = spec.index - cfg.originals
    rng = np.random.default_rng([cfg.seed, _GROUP, k])
    people = (identity(cfg.originals + 2 * k), identity(cfg.originals + 2 * k + 1))
    scenario = SCENARIOS[k % len(SCENARIOS)]
    return build_group(people, spec.size, scenario, (k // 2) % 2, spec.seconds, rng)


def _film_group_target(
    root: Path, spec: OriginalSpec, source: OriginalSpec, cfg: SynthConfig
) -> list[dict]:
    """A two-person original and its four fakes, each manipulating the scene's target face only
    (the donor, for swaps, is the source scene's target person)."""
    scene = _group_scene(spec, cfg)
    donor_scene = _group_scene(source, cfg)
    donor = donor_scene.people[donor_scene.target].portrait
    victim = scene.people[scene.target].portrait
    times = frame_times(spec.fps, spec.seconds)
    enc = {"crf": cfg.crf, "preset": cfg.preset}
    track = film_group(root / ORIGINALS_DIR / f"{spec.vid}.mp4", scene, spec.fps, times, **enc)
    out = [_record(root, track, spec, "real", spec.vid) | {"scenario": scene.scenario}]
    drive = random_drive(np.random.default_rng([cfg.seed, _DRIVE, source.index]))
    for method in METHODS:
        name = f"{spec.vid}_{source.vid}.mp4"
        path = root / METHOD_DIR.format(method=method) / name
        mask = root / MASK_DIR.format(method=method) / name
        if method in FS_METHODS:
            rgb = swap_face(victim.rgb, victim.landmarks, donor.rgb, donor.landmarks, method)
            track = film_group(
                path, scene, spec.fps, times, swapped=with_face(victim, rgb), mask_path=mask, **enc
            )
        else:

            def effect(frame, lms, t, method=method):
                return reenact(frame, lms, t, drive, method)

            track = film_group(path, scene, spec.fps, times, effect=effect, mask_path=mask, **enc)
        out.append(_record(root, track, spec, method, source.vid) | {"scenario": scene.scenario})
    return out


def truth_of(records: list[dict]) -> dict:
    """synth_truth.json: for every fake, its manipulated face's box in every frame, and the others."""
    return {
        "version": VERSION,
        "videos": {
            r["relpath"]: {
                "fps": r["fps"],
                "size": [r["width"], r["height"]],
                "manipulated": r["boxes"],
                "others": r["others"],
            }
            for r in records
            if r["label"] == 1
        },
    }


def synth_ffpp(
    root: str | Path, cfg: SynthConfig | None = None, progress: Count | None = None
) -> dict:
    """Write the sample dataset under `root` and return a summary of what was written.

    The summary holds `root`, `pairs`, `splits`, `videos` (how many), `records` (one dict per
    video: relpath, split, label, method, category, target, source, fps, rate, width, height,
    frames, seconds, bytes, and the ground-truth face `boxes` [x1, y1, x2, y2] and `landmarks`
    [10] of every frame: of the manipulated face in a two-person fake, of the face its fakes
    manipulate in a two-person original; `faces` (1 or 2), `others` (per frame, the boxes of the
    other, pristine faces) and, for two-person videos, `scenario`), `masks` (how many mask
    videos), `files`, `bytes` and `elapsed_s`. `root` must be empty, new, or a
    previous sample dataset (recognised by its `.dfprep-synth.json`), which is replaced.
    """
    cfg = cfg or SynthConfig()
    started = time.perf_counter()
    specs, splits = plan(cfg)
    multi, multi_splits = plan_multi(cfg)
    splits = {s: splits[s] + multi_splits[s] for s in splits}
    by_index = {s.index: s for s in (*specs, *multi)}
    root = output_dir(root, "synth: output root")
    made_with = {
        k: v for k, v in dataclasses.asdict(cfg).items() if k != "workers"
    }  # not in the bytes
    with (
        output_lock(root, "dfprep synth"),
        replacing(root, MARKER, {"generator": "dfprep.synth", **made_with}, "synth", OWNER),
    ):
        records = _write(root, cfg, specs, multi, splits, by_index, progress)
    extra = [root / "splits" / f"{s}.json" for s in splits]
    extra += [root / TRUTH, root / MARKER]
    extra += sorted(root.glob(MASK_DIR.format(method="*") + "/*.mp4"))
    return {
        "root": str(root.resolve()),
        "pairs": [list(p) for ps in splits.values() for p in ps],
        "splits": {s: [list(p) for p in ps] for s, ps in splits.items()},
        "videos": len(records),
        "records": records,
        "masks": sum(1 for p in extra if p.suffix == ".mp4"),
        "files": len(records) + len(extra),
        "bytes": sum(v["bytes"] for v in records) + sum(p.stat().st_size for p in extra),
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def _write(
    root: Path, cfg: SynthConfig, specs, multi, splits, by_index, progress: Count | None = None
) -> list[dict]:
    """Film every video into ROOT and write the splits and the ground truth; the records."""
    base_faces()  # detect once, before the worker threads start
    jobs = sorted((*specs, *multi), key=lambda s: -s.size[0] * s.size[1] * s.seconds * float(s.fps))
    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        futures = [
            pool.submit(
                _film_target if s.index < cfg.originals else _film_group_target,
                root,
                s,
                by_index[s.partner],
                cfg,
            )
            for s in jobs
        ]
        track_futures(futures, progress)
        records = sorted((v for f in futures for v in f.result()), key=lambda v: v["relpath"])
    (root / TRUTH).write_text(json.dumps(truth_of(records)))
    (root / "splits").mkdir(parents=True, exist_ok=True)
    for split, pairs in splits.items():
        (root / "splits" / f"{split}.json").write_text(json.dumps([list(p) for p in pairs]))
    return records
