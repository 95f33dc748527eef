"""Each miniature in its publisher's layout: one planner per dataset (see `dfprep.synth.suite`)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from dfprep.adapters.splits import SEED as SPLIT_SEED
from dfprep.adapters.splits import derive_splits
from dfprep.synth.clip import Clip
from dfprep.synth.ffpp import split_pairs
from dfprep.synth.suite_plan import Plan, csv_text, random_name, scaled

FFPP_METHODS = {
    "Deepfakes": "ae_swap",
    "FaceSwap": "poly_swap",
    "Face2Face": "f2f",
    "NeuralTextures": "nt",
}
FAV_METHODS = {  # method -> (type folder, category letter, kind)
    "faceswap": ("FakeVideo-RealAudio", "C", "poly_swap"),
    "fsgan": ("FakeVideo-RealAudio", "C", "ae_swap"),
    "wav2lip": ("FakeVideo-FakeAudio", "D", "nt"),
    "faceswap-wav2lip": ("FakeVideo-FakeAudio", "D", "poly_swap+nt"),
    "fsgan-wav2lip": ("FakeVideo-FakeAudio", "D", "ae_swap+nt"),
}
FAV_SUFFIX = {
    "faceswap": "fs",
    "fsgan": "gan",
    "wav2lip": "wavtolip",
    "faceswap-wav2lip": "fs_w",
    "fsgan-wav2lip": "gan_w",
}
FAV_RACES = (
    ("African", "men"),
    ("Asian (East)", "women"),
    ("Caucasian (American)", "men"),
    ("Asian (South)", "women"),
    ("Caucasian (European)", "men"),
)
FNET_CLASSES = {
    "ae_swap": (1, 1),
    "poly_swap": (1, 2),
    "f2f": (2, 8),
    "nt": (2, 9),
}  # kind -> (triple, 16-class)
DF40_METHODS = {"simswap": "poisson_swap", "e4s": "ae_swap", "fomm": "eyes", "wav2lip": "lipsync"}
WILD_KINDS = ("poisson_swap", "lipsync", "ae_swap", "eyes", "poly_swap", "f2f")


def plan_ffpp(p: Plan) -> None:
    n, half = p.cfg.originals, p.cfg.originals // 2
    ids = [f"{i:03d}" for i in range(n)]
    pairs = [(ids[i], ids[i + half]) for i in range(half)]
    splits = split_pairs(pairs, p.cfg.seed)
    split_of = {v: s for s, ps in splits.items() for pair in ps for v in pair}
    orig = {
        v: p.real(
            "ffpp", f"original_sequences/youtube/c23/videos/{v}.mp4", split_of[v], split_of[v]
        )
        for v in ids
    }
    for a, b in pairs:
        for t, s in ((a, b), (b, a)):
            for method, kind in FFPP_METHODS.items():
                p.fake(
                    "ffpp",
                    f"manipulated_sequences/{method}/c23/videos/{t}_{s}.mp4",
                    orig[t],
                    kind,
                    orig[s].ident,
                    split_of[t],
                )
    for s, ps in splits.items():
        p.files[f"ffpp/splits/{s}.json"] = json.dumps([list(x) for x in ps])
    # the DeepFakeDetection part of the download (another dataset: `dfd`; the ffpp adapter skips it)
    actors = [
        p.real(
            "ffpp",
            f"original_sequences/actors/c23/videos/{a:02d}__walking_and_outside.mp4",
            None,
            "test",
        )
        for a in (1, 2)
    ]
    for (t, tc), (s, sc) in (
        (("01", actors[0]), ("02", actors[1])),
        (("02", actors[1]), ("01", actors[0])),
    ):
        p.fake(
            "ffpp",
            f"manipulated_sequences/DeepFakeDetection/c23/videos/{t}_{s}__walking_and_outside__{s}X7K2{t}.mp4",
            tc,
            "poly_swap",
            sc.ident,
            None,
        )


def plan_celebdf(p: Plan) -> dict[str, Clip]:
    """Returns the test reals (DF40's Celeb-DF domain is made from them)."""
    n = scaled(p.cfg, 6, 4)
    n_test = max(2, n // 3)
    real: dict[int, Clip] = {}
    listed: list[str] = []
    test_reals: dict[str, Clip] = {}
    for k in range(n):
        split = "test" if k < n_test else "train"
        real[k] = p.real("celebdf", f"Celeb-real/id{k}_0000.mp4", split, split)
        if split == "test":
            listed.append(f"1 Celeb-real/id{k}_0000.mp4")
            test_reals[f"Celeb-real/id{k}_0000.mp4"] = real[k]
    for k in range(n):
        test = k < n_test
        group = list(range(n_test)) if test else list(range(n_test, n))
        donors = [d for d in group if d != k][:2] or [k]
        for b in donors:
            # the published naming: id<a>_id<b>_<nnnn> is target a's Celeb-real/id<a>_<nnnn>
            rel = f"Celeb-synthesis/id{k}_id{b}_0000.mp4"
            donor = real[b].ident if b != k else p.ident("test" if test else "train")
            p.fake("celebdf", rel, real[k], "ae_swap", donor, "test" if test else "train")
            if test:
                listed.append(f"0 {rel}")
    for y in range(2):
        split = "test" if y == 0 else "train"
        c = p.real("celebdf", f"YouTube-real/{y:05d}.mp4", split, split)
        if split == "test":
            listed.append(f"1 YouTube-real/{y:05d}.mp4")
            test_reals[f"YouTube-real/{y:05d}.mp4"] = c
    p.files["celebdf/List_of_testing_videos.txt"] = "\n".join(listed) + "\n"
    p.files["df40/Celeb-DF-v2/List_of_testing_videos.txt"] = p.files[
        "celebdf/List_of_testing_videos.txt"
    ]
    return test_reals


def plan_dfdc(p: Plan) -> None:
    rng = np.random.default_rng([p.cfg.seed, 0xDFDC])
    meta: dict[str, dict] = {}
    for split, folder, n in (
        ("train", "dfdc_train_part_0", scaled(p.cfg, 6, 3)),
        ("val", "validation", scaled(p.cfg, 2)),
        ("test", "test", scaled(p.cfg, 3, 2)),
    ):
        rows = [["filename", "label"]]
        originals = [
            p.real("dfdc", f"{folder}/{random_name(rng)}.mp4", split, split) for _ in range(n)
        ]
        for o in originals:
            name = o.rel.split("/")[-1]
            meta[name] = {"label": "REAL", "split": "train", "original": None}
            rows.append([name, 0])
        for i, o in enumerate(originals):
            for j, kind in enumerate(
                ("ae_swap", "poly_swap")
                if split == "train"
                else ("ae_swap" if i % 2 else "poly_swap",)
            ):
                donor = originals[(i + 1 + j) % n].ident if n > 1 else p.ident(split)
                f = p.fake("dfdc", f"{folder}/{random_name(rng)}.mp4", o, kind, donor, split)
                meta[f.rel.split("/")[-1]] = {
                    "label": "FAKE",
                    "split": "train",
                    "original": o.rel.split("/")[-1],
                }
                rows.append([f.rel.split("/")[-1], 1])
        if split == "train":
            p.files[f"dfdc/{folder}/metadata.json"] = json.dumps(meta, indent=1)
        else:
            p.files[f"dfdc/{folder}/labels.csv"] = csv_text(rows)


def plan_fakeavceleb(p: Plan) -> None:
    n = scaled(p.cfg, 10, 6)
    sources = [f"id{k:05d}" for k in range(n)]
    # the adapter derives the split by source identity: ask it first (RealVideo-FakeAudio excluded)
    split_of = derive_splits(
        Counter(dict.fromkeys(sources, 1 + len(FAV_METHODS))),
        [("val", 0.15), ("test", 0.15)],
        SPLIT_SEED,
    )
    lines = ["source,target1,target2,method,category,type,race,gender,path,"]
    reals: dict[str, Clip] = {}
    for k, src in enumerate(sources):
        race, gender = FAV_RACES[k % len(FAV_RACES)]
        folder = f"{race}/{gender}/{src}"
        reals[src] = p.real(
            "fakeavceleb", f"RealVideo-RealAudio/{folder}/{k:05d}.mp4", None, split_of[src]
        )
        lines.append(
            ",".join(
                [
                    src,
                    "-",
                    "-",
                    "real",
                    "A",
                    "RealVideo-RealAudio",
                    race,
                    gender,
                    f"{k:05d}.mp4",
                    f"FakeAVCeleb/RealVideo-RealAudio/{folder}",
                ]
            )
        )
        # a real video with a cloned voice: the same pixels (the adapter leaves it out by default)
        p.copies.append(
            (
                f"fakeavceleb/{reals[src].rel}",
                f"fakeavceleb/RealVideo-FakeAudio/{folder}/{k:05d}.mp4",
            )
        )
        lines.append(
            ",".join(
                [
                    src,
                    src,
                    "-",
                    "rtvc",
                    "B",
                    "RealVideo-FakeAudio",
                    race,
                    gender,
                    f"{k:05d}.mp4",
                    f"FakeAVCeleb/RealVideo-FakeAudio/{folder}",
                ]
            )
        )
    for k, src in enumerate(sources):
        race, gender = FAV_RACES[k % len(FAV_RACES)]
        mates = [s for s in sources if split_of[s] == split_of[src] and s != src]
        tgt = mates[0] if mates else src
        donor = reals[tgt].ident if mates else p.ident(split_of[src])
        for method, (vtype, letter, kind) in FAV_METHODS.items():
            name = f"{k:05d}_{tgt}_{FAV_SUFFIX[method]}.mp4"
            folder = f"{vtype}/{race}/{gender}/{src}"
            p.fake("fakeavceleb", f"{folder}/{name}", reals[src], kind, donor, None)
            t1 = "-" if method == "wav2lip" else tgt
            lines.append(
                ",".join(
                    [
                        src,
                        t1,
                        "-",
                        method,
                        letter,
                        vtype,
                        race,
                        gender,
                        name,
                        f"FakeAVCeleb/{folder}",
                    ]
                )
            )
    p.files["fakeavceleb/meta_data.csv"] = "\n".join(lines) + "\n"


def plan_forgerynet(p: Plan) -> None:
    kinds = list(FNET_CLASSES)
    for top, release, n in (
        ("Training", "train_video_release", scaled(p.cfg, 8, 4)),
        ("Validation", "val_video_release", scaled(p.cfg, 3, 2)),
    ):
        names = [f"{release}/{1 + i % 3}/{i:04x}c3d9e1/video.mp4" for i in range(2 * n)]
        if top == "Training":  # val is derived per video by the adapter: ask it first
            split_of = derive_splits(
                Counter({nm[:-4]: 1 for nm in names}), [("val", 0.1)], SPLIT_SEED
            )
        else:
            split_of = {nm[:-4]: "test" for nm in names}
        lines = []
        reals = []
        for nm in names[:n]:
            split = split_of[nm[:-4]]
            reals.append(
                p.real(
                    "forgerynet", f"{top}/video/{nm}", None if top == "Training" else "test", split
                )
            )
            lines.append(f"0 {nm} 0 0 0")
        for i, nm in enumerate(names[n:]):
            split = split_of[nm[:-4]]
            # a fake reuses a real's footage only when both are in the same split (identities stay apart)
            mates = [r for r in reals if split_of[r.rel.split("/video/", 1)[1][:-4]] == split]
            base = mates[i % len(mates)] if mates else None
            if base is None:
                base = Clip("", p.ident(split), p.scene(), **p.shape())
            kind = kinds[i % len(kinds)]
            triple, cls = FNET_CLASSES[kind]
            frames = max(1, round(base.seconds * base.fps))
            donor = p.ident(split)
            listed = None if top == "Training" else "test"  # the split the record names
            if i % 3 == 2 and frames >= 4:  # partly manipulated: a fake segment in the middle
                a, b = frames // 4, frames // 2
                seg = (a / base.fps, (a + b) / base.fps)
                p.fake("forgerynet", f"{top}/video/{nm}", base, kind, donor, listed, segment=seg)
                lines.append(
                    f"3 {nm} 0 {a} 0 {a} {b} 1 {a + b} {frames - a - b} 0 1 {triple} {cls}"
                )
            else:
                p.fake("forgerynet", f"{top}/video/{nm}", base, kind, donor, listed)
                lines.append(f"1 {nm} 0 {frames} 1 1 {triple} {cls}")
        p.files[f"forgerynet/{top}/video_list.txt"] = "\n".join(lines) + "\n"


def plan_df40(p: Plan, cdf_test_reals: dict[str, Clip]) -> None:
    images = max(2, round(p.cfg.seconds))
    reals = list(cdf_test_reals.items())
    for rel, clip in reals:
        subdir, name = rel.split("/", 1)
        frames = replace(clip, rel=f"Celeb-DF-v2/{subdir}/frames/{Path(name).stem}", images=images)
        p.add("df40", frames, 0, "test")
    for method, kind in DF40_METHODS.items():
        for i, (rel, clip) in enumerate(reals):
            donor_clip = reals[(i + 1) % len(reals)][1]
            donor = donor_clip.ident if len(reals) > 1 else p.ident("test")
            vid = f"{Path(rel).stem}_{method}_{i}"
            p.fake(
                "df40",
                f"DF40/{method}/cdf/frames/{vid}",
                replace(clip, images=images),
                kind,
                donor,
                "test",
            )


def plan_wilddeepfake(p: Plan) -> None:
    images = 10 * max(2, round(p.cfg.seconds))  # the adapter keeps every 10th face
    post = {"images": images, "face_px": 112, "jpeg": 45, "downscale": 0.5}
    layout = (
        ("real_train", 0, "train", 1, 1),
        ("fake_train", 1, "train", 2, 1),
        ("real_test", 0, "test", 5, scaled(p.cfg, 2)),
        ("fake_test", 1, "test", 5 + scaled(p.cfg, 2), scaled(p.cfg, 2)),
    )
    k = 0
    for top, label, split, first, count in layout:
        for n in range(first, first + count):
            for seq in range(2):
                rel = f"{top}/{n}/{'fake' if label else 'real'}/{seq}"
                if label == 0:
                    p.real("wilddeepfake", rel, split, split, **post)
                else:
                    base = Clip("", p.ident(split), p.scene(), **{**p.shape(), **post})
                    p.fake(
                        "wilddeepfake",
                        rel,
                        base,
                        WILD_KINDS[k % len(WILD_KINDS)],
                        p.ident(split),
                        split,
                    )
                    k += 1
            p.archives.append((f"wilddeepfake/{top}/{n}", f"wilddeepfake/{top}/{n}.tar.gz"))


def plan_dfeval2024(p: Plan) -> None:
    post = {"crf": 34, "downscale": 0.5}
    rows = [["Filename", "Media", "Finetuning Set", "Video Ground Truth", "Audio Ground Truth"]]
    n = scaled(p.cfg, 4, 2)
    truths = ["Real"] * n + ["Fake"] * (n + 2) + ["Unknown", ""]
    for i, truth in enumerate(truths):
        name = f"{i:04x}{'a9c2' * 4}.mp4"
        rel = f"video-data/{name}"
        if truth == "Fake":
            base = Clip("", p.ident("test"), p.scene(), **{**p.shape(), **post})
            p.fake(
                "dfeval2024", rel, base, WILD_KINDS[i % len(WILD_KINDS)], p.ident("test"), "test"
            )
        elif truth == "Real":
            p.real("dfeval2024", rel, "test", "test", **post)
        else:  # unlabelled: on disk and in the CSV, left out by the adapter
            p.clips.append(
                ("dfeval2024", Clip(rel, p.ident("test"), p.scene(), **{**p.shape(), **post}))
            )
        rows.append(
            [name, f"https://example.org/post/{i}", "Train" if i % 3 else "Test", truth, "Real"]
        )
    p.files["dfeval2024/video-metadata-publish.csv"] = csv_text(rows)


def plan_itw(p: Plan) -> None:
    post = {"crf": 32, "downscale": 0.6}
    n = scaled(p.cfg, 4, 2)
    for i in range(n):
        p.real("itw", f"real/clip_{i:03d}.mp4", "test", "test", **post)
    for i in range(n):
        base = Clip("", p.ident("test"), p.scene(), **{**p.shape(), **post})
        p.fake(
            "itw",
            f"fake/clip_{i:03d}.mp4",
            base,
            WILD_KINDS[(i + 1) % len(WILD_KINDS)],
            p.ident("test"),
            "test",
        )
