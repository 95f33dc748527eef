"""Full-size copies of three publishers' trees, with empty files, built from their naming rules.

Not the real file lists (those are not redistributable), but the same shapes, names and counts:

- FaceForensics++ with its DeepFakeDetection part: 1,000 originals `000..999` split into 360 / 70 /
  70 pairs by `splits/{train,val,test}.json`, `a_b` and `b_a` fakes of every pair for each of the
  five methods, masks for the methods that have them; DFD's 363 actor videos
  `<actor>__<scene>.mp4` of 28 actors and its 3,068 fakes `<target>_<source>__<scene>__<id>.mp4`
  with their masks (a fake whose target actor has no video of its scene has no original).
- Celeb-DF v2: `Celeb-real/id<k>_<nnnn>.mp4` (590 videos of 59 celebrities), `YouTube-real/<nnnnn>.mp4`
  (300), `Celeb-synthesis/id<a>_id<b>_<nnnn>.mp4` (5,639) and a 518-line test list (178 real,
  340 fake, `1` = real).
- DFDC: 50 `dfdc_train_part_<i>/` with `metadata.json` (19,154 REAL, 100,000 FAKE with their
  `original`), the 4,000-video validation set and the 5,000-video test set, each a folder of
  videos and a `labels.csv` (`filename,label`, 1 = fake; 2,000 / 2,000 and 2,500 / 2,500).

Everything is seeded, so a tree is the same on every run.
"""

from __future__ import annotations

import csv
import json
import os
import random
import string
from pathlib import Path


def _touch_all(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        for name in names:
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


# ---- FaceForensics++ and DFD ---------------------------------------------------------------------
FF_METHODS = ("Deepfakes", "FaceSwap", "FaceShifter", "Face2Face", "NeuralTextures")
FF_PAIRS = {"train": 360, "val": 70, "test": 70}
DFD_SCENES = (
    "exit_phone_room",
    "hugging_happy",
    "kitchen_pan",
    "kitchen_still",
    "meeting_serious",
    "outside_talking_pan_laughing",
    "outside_talking_still_laughing",
    "podium_speech_happy",
    "talking_against_wall",
    "talking_angry_couch",
    "walk_down_hall_angry",
    "walking_and_outside_surprised",
    "walking_down_indoor_hall_disgust",
    "walking_down_street_outside_angry",
    "walking_outside_cafe_disgusted",
    "secret_conversation",
)
DFD_ACTORS, DFD_REALS, DFD_FAKES = 28, 363, 3068


def make_ffpp_full(root: Path, methods=FF_METHODS, dfd: bool = True, comp: str = "c23") -> None:
    rng = random.Random(0)
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"{i:03d}" for i in range(1000)]
    rng.shuffle(ids)
    pairs = [ids[i : i + 2] for i in range(0, 1000, 2)]
    (root / "splits").mkdir(parents=True)
    at = 0
    for split, n in FF_PAIRS.items():
        (root / "splits" / f"{split}.json").write_text(json.dumps(pairs[at : at + n]))
        at += n
    _touch_all(
        root / "original_sequences/youtube" / comp / "videos", [f"{i:03d}.mp4" for i in range(1000)]
    )
    fakes = [f"{a}_{b}.mp4" for a, b in pairs] + [f"{b}_{a}.mp4" for a, b in pairs]
    for m in methods:
        _touch_all(root / "manipulated_sequences" / m / comp / "videos", fakes)
        if m != "FaceShifter":  # the download has no masks for FaceShifter
            _touch_all(root / "manipulated_sequences" / m / "masks/videos", fakes)
    if dfd:
        actors = [f"{a:02d}" for a in range(1, DFD_ACTORS + 1)]
        reals = [f"{a}__{s}.mp4" for s in DFD_SCENES for a in actors][:DFD_REALS]
        _touch_all(root / "original_sequences/actors" / comp / "videos", reals)
        names: set[str] = set()
        while len(names) < DFD_FAKES:
            t, s = rng.sample(actors, 2)
            code = "".join(rng.choices(string.ascii_uppercase + string.digits, k=8))
            names.add(f"{t}_{s}__{rng.choice(DFD_SCENES)}__{code}.mp4")
        _touch_all(
            root / "manipulated_sequences/DeepFakeDetection" / comp / "videos", sorted(names)
        )
        _touch_all(root / "manipulated_sequences/DeepFakeDetection/masks/videos", sorted(names))


# ---- Celeb-DF v2 -----------------------------------------------------------------------------------
CDF_IDS = [k for k in range(62) if k not in (14, 15, 18)]  # 59 celebrities
CDF_FAKES, CDF_TEST_REAL, CDF_TEST_FAKE = 5639, 178, 340


def make_celebdf_full(root: Path) -> None:
    rng = random.Random(1)
    celeb = [f"id{k}_{n:04d}.mp4" for k in CDF_IDS for n in range(10)]  # 590
    youtube = [f"{n:05d}.mp4" for n in range(300)]
    fakes: list[str] = []
    per = {}
    while len(fakes) < CDF_FAKES:  # each celebrity's videos swapped with other celebrities' faces
        a, b = rng.sample(CDF_IDS, 2)
        n = per.get((a, b), 0)
        if n < 10:
            per[(a, b)] = n + 1
            fakes.append(f"id{a}_id{b}_{n:04d}.mp4")
    _touch_all(root / "Celeb-real", celeb)
    _touch_all(root / "YouTube-real", youtube)
    _touch_all(root / "Celeb-synthesis", fakes)
    reals = [f"Celeb-real/{n}" for n in celeb] + [f"YouTube-real/{n}" for n in youtube]
    lines = [f"1 {r}" for r in rng.sample(reals, CDF_TEST_REAL)]
    lines += [f"0 Celeb-synthesis/{f}" for f in rng.sample(fakes, CDF_TEST_FAKE)]
    rng.shuffle(lines)
    (root / "List_of_testing_videos.txt").write_text("\n".join(lines) + "\n")


# ---- DFDC ------------------------------------------------------------------------------------------
DFDC_PARTS, DFDC_REAL, DFDC_FAKE = 50, 19154, 100000
DFDC_VAL, DFDC_TEST = 4000, 5000


def _names(rng: random.Random, n: int, taken: set[str]) -> list[str]:
    out = []
    while len(out) < n:
        name = "".join(rng.choices(string.ascii_lowercase, k=10)) + ".mp4"
        if name not in taken:
            taken.add(name)
            out.append(name)
    return out


def _labelled(folder: Path, names: list[str], fake_from: int) -> None:
    _touch_all(folder, names)
    with (folder / "labels.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "label"])
        w.writerows((n, int(i >= fake_from)) for i, n in enumerate(names))


def make_dfdc_full(root: Path, validation: bool = True) -> None:
    rng = random.Random(2)
    taken: set[str] = set()
    for i in range(DFDC_PARTS):
        n_real = DFDC_REAL // DFDC_PARTS + (i < DFDC_REAL % DFDC_PARTS)
        n_fake = DFDC_FAKE // DFDC_PARTS
        reals, fakes = _names(rng, n_real, taken), _names(rng, n_fake, taken)
        meta = {r: {"label": "REAL", "split": "train", "original": None} for r in reals}
        meta.update(
            {
                f: {"label": "FAKE", "split": "train", "original": reals[j % n_real]}
                for j, f in enumerate(fakes)
            }
        )
        part = root / f"dfdc_train_part_{i}"
        _touch_all(part, [*reals, *fakes])
        (part / "metadata.json").write_text(json.dumps(meta))
    if validation:
        _labelled(root / "validation", _names(rng, DFDC_VAL, taken), DFDC_VAL // 2)
    _labelled(root / "test", _names(rng, DFDC_TEST, taken), DFDC_TEST // 2)
