"""Tiny copies of each dataset's published layout, for the adapter tests.

File names, metadata files and their quirks follow the real downloads. Media are zero-byte
placeholders wherever the adapter never opens them (it only lists and checks that they exist); the
few ForgeryNet videos whose frame rate the adapter reads are real 64x64 H.264 files made with
`dfprep.videoio.encode_video`. Each builder returns what the manifest must say: relative path ->
`Want(label, split, method, category)`, with split None where the adapter derives it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfprep.videoio import encode_video


@dataclass(frozen=True)
class Want:
    label: int
    split: str | None  # None: derived by the adapter
    method: str
    category: str
    group: str = ""  # the identity / original that must not straddle splits


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def tiny_video(path: Path, fps: float, seconds: float = 1.0) -> Path:
    frames = (
        np.full((64, 64, 3), 40 * i % 255, np.uint8) for i in range(max(1, round(fps * seconds)))
    )
    return encode_video(path, frames, fps)


REAL = ("real", "real")


# ---- Celeb-DF v2 -------------------------------------------------------------------------------
def make_celebdf(root: Path, n_ids: int = 12, per_id: int = 2, youtube: int = 6) -> dict[str, Want]:
    """Celeb-real/id<k>_<nnnn>.mp4, Celeb-synthesis/id<a>_id<b>_<nnnn>.mp4, YouTube-real/<nnnnn>.mp4."""
    want: dict[str, Want] = {}
    for k in range(n_ids):
        for j in range(per_id):
            want[f"Celeb-real/id{k}_{j:04d}.mp4"] = Want(0, None, *REAL, f"id{k}")
            for b in ((k + 1) % n_ids, (k + 5) % n_ids):
                want[f"Celeb-synthesis/id{k}_id{b}_{j:04d}.mp4"] = Want(
                    1, None, "Celeb-synthesis", "FS", f"id{k}"
                )
    for n in range(youtube):
        want[f"YouTube-real/{n:05d}.mp4"] = Want(0, None, *REAL, f"youtube-{n:05d}")
    # The test list: identity 0's videos, two YouTube videos and some fakes of other identities.
    listed = [r for r in want if r.startswith(("Celeb-real/id0_", "Celeb-synthesis/id0_"))]
    listed += [
        "YouTube-real/00000.mp4",
        "YouTube-real/00001.mp4",
        "Celeb-synthesis/id3_id4_0001.mp4",
        "Celeb-synthesis/id7_id8_0000.mp4",
    ]
    lines = []
    for rel in listed:
        w = want[rel]
        want[rel] = Want(w.label, "test", w.method, w.category, w.group)
        lines.append(f"{1 - w.label} {rel}")  # the list's 1 means real
    for rel in want:
        touch(root / rel)
    (root / "List_of_testing_videos.txt").write_text("\n".join(lines) + "\n")
    return want


# ---- DFDC ----------------------------------------------------------------------------------------
def make_dfdc(
    root: Path,
    parts: int = 2,
    originals: int = 8,
    fakes: int = 2,
    test: int = 6,
    nested: bool = False,
    validation: int = 0,
) -> dict[str, Want]:
    """dfdc_train_part_<i>/{*.mp4, metadata.json} (or under train/ when nested), test/labels.csv and,
    with `validation`, the published validation set validation/{*.mp4, labels.csv}."""
    want: dict[str, Want] = {}
    for i in range(parts):
        part = f"train/dfdc_train_part_{i}" if nested else f"dfdc_train_part_{i}"
        meta = {}
        for j in range(originals):
            orig = f"p{i}real{j:02d}.mp4"
            # some releases write "original": null on REAL entries; others leave the key out
            meta[orig] = {
                "label": "REAL",
                "split": "train",
                **({"original": None} if j % 2 else {}),
            }
            want[f"{part}/{orig}"] = Want(0, None, *REAL, orig[:-4])
            for k in range(fakes):
                fake = f"p{i}fake{j:02d}{k}.mp4"
                meta[fake] = {"label": "FAKE", "split": "train", "original": orig}
                want[f"{part}/{fake}"] = Want(1, None, "unknown", "FS", orig[:-4])
        (root / part).mkdir(parents=True)
        (root / part / "metadata.json").write_text(json.dumps(meta))
    for folder, split, prefix, count in (
        ("test", "test", "t", test),
        ("validation", "val", "v", validation),
    ):
        if not count:
            continue
        rows = []
        for n in range(count):
            name, label = f"{prefix}{n:03d}.mp4", n % 2
            rows.append((name, label))
            want[f"{folder}/{name}"] = Want(
                label, split, *(REAL if label == 0 else ("unknown", "FS")), name[:-4]
            )
        (root / folder).mkdir(parents=True)
        with (root / folder / "labels.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["filename", "label"])
            w.writerows(rows)
    for rel in want:
        touch(root / rel)
    return want


# ---- FakeAVCeleb v1.2 ----------------------------------------------------------------------------
FAV_HEADER = "source,target1,target2,method,category,type,race,gender,path,"
FAV_RACES = (
    ("African", "men"),
    ("Asian (East)", "women"),
    ("Asian (South)", "men"),
    ("Caucasian (American)", "women"),
    ("Caucasian (European)", "men"),
)


def make_fakeavceleb(root: Path, n_ids: int = 20) -> dict[str, Want]:
    """meta_data.csv (header one name short) and <type>/<race>/<gender>/<id>/<file>.mp4."""
    want: dict[str, Want] = {}
    lines = [FAV_HEADER]

    def add(src, t1, method, cat, vtype, race, gender, name, want_row):
        folder = f"FakeAVCeleb/{vtype}/{race}/{gender}/{src}"
        lines.append(",".join([src, t1, "-", method, cat, vtype, race, gender, name, folder]))
        rel = f"{vtype}/{race}/{gender}/{src}/{name}"
        want[rel] = want_row
        touch(root / rel)

    for k in range(n_ids):
        src, tgt = f"id{k:05d}", f"id{(k + 1) % n_ids:05d}"
        race, gender = FAV_RACES[k % len(FAV_RACES)]
        real = f"{k:05d}.mp4"  # the same file name in RealVideo-RealAudio and RealVideo-FakeAudio
        add(
            src,
            "-",
            "real",
            "A",
            "RealVideo-RealAudio",
            race,
            gender,
            real,
            Want(0, None, *REAL, src),
        )
        add(
            src,
            tgt,
            "rtvc",
            "B",
            "RealVideo-FakeAudio",
            race,
            gender,
            real,
            Want(0, None, *REAL, src),
        )
        swap = f"{k:05d}_{tgt}_fs.mp4"  # and the same fake name in both FakeVideo folders
        add(
            src,
            tgt,
            "faceswap",
            "C",
            "FakeVideo-RealAudio",
            race,
            gender,
            swap,
            Want(1, None, "faceswap", "FS", src),
        )
        add(
            src,
            tgt,
            "fsgan",
            "C",
            "FakeVideo-RealAudio",
            race,
            gender,
            f"{k:05d}_{tgt}_gan.mp4",
            Want(1, None, "fsgan", "FS", src),
        )
        add(
            src,
            "-",
            "wav2lip",
            "D",
            "FakeVideo-FakeAudio",
            race,
            gender,
            f"{k:05d}_{k}_{src}_wavtolip.mp4",
            Want(1, None, "wav2lip", "RE", src),
        )
        add(
            src,
            tgt,
            "faceswap-wav2lip",
            "D",
            "FakeVideo-FakeAudio",
            race,
            gender,
            swap,
            Want(1, None, "faceswap-wav2lip", "FS", src),
        )
        add(
            src,
            tgt,
            "fsgan-wav2lip",
            "D",
            "FakeVideo-FakeAudio",
            race,
            gender,
            f"{k:05d}_{tgt}_gan_w.mp4",
            Want(1, None, "fsgan-wav2lip", "FS", src),
        )
    (root / "meta_data.csv").write_text("\n".join(lines) + "\n")
    return want


# ---- ForgeryNet ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FNVideo:
    line: str
    want: Want
    segments: list[tuple[float, float]] | None = None
    fps: float | None = None  # a real video at this rate; None = placeholder


def forgerynet_videos(prefix: str) -> list[FNVideo]:
    """One list's lines: reals, whole fakes (FS and RE), and partly manipulated fakes."""
    v = []
    for k in range(6):
        name = f"{prefix}/{1 + k % 2}/r{k:03d}/video.mp4"
        # reals with one real segment, and with none
        line = f"1 {name} 0 30 0 0 0 0" if k % 2 else f"0 {name} 0 0 0"
        v.append(FNVideo(line, Want(0, None, *REAL, name[:-4])))
    for k in range(6):
        name = f"{prefix}/3/w{k:03d}/video.mp4"
        triple, cls = (1, 1 + k % 3) if k < 4 else (2, 8)
        v.append(
            FNVideo(
                f"1 {name} 0 75 1 1 {triple} {cls}",
                Want(1, None, f"class-{cls:02d}", "FS" if triple == 1 else "RE", name[:-4]),
            )
        )
    # partly manipulated: frames [10, 15) and [20, 30) fake at 25 fps; [5, 10) fake at 10 fps
    name = f"{prefix}/4/p000/video.mp4"
    v.append(
        FNVideo(
            f"4 {name} 0 10 real 10 5 fake 15 5 real 20 10 fake 1 2 8",
            Want(1, None, "class-08", "RE", name[:-4]),
            [(0.4, 0.6), (0.8, 1.2)],
            25,
        )
    )
    name = f"{prefix}/4/p001/video.mp4"
    v.append(
        FNVideo(
            f"2 {name} 0 5 0 5 5 1 1 1 2",
            Want(1, None, "class-02", "FS", name[:-4]),
            [(0.5, 1.0)],
            10,
        )
    )
    return v


def make_forgerynet(
    root: Path,
) -> tuple[dict[str, Want], dict[str, list[tuple[float, float]] | None]]:
    """Training/{video_list.txt, video/train_video_release/...}, Validation/... likewise."""
    want: dict[str, Want] = {}
    segs: dict[str, list[tuple[float, float]] | None] = {}
    for top, release, split in (
        ("Training", "train_video_release", None),
        ("Validation", "val_video_release", "test"),
    ):
        videos = forgerynet_videos(release)
        (root / top).mkdir(parents=True)
        (root / top / "video_list.txt").write_text("\n".join(v.line for v in videos) + "\n")
        for v in videos:
            name = v.line.split()[1]
            rel = f"{top}/video/{name}"
            if v.fps:
                tiny_video(root / rel, v.fps)
            else:
                touch(root / rel)
            w = v.want
            want[rel] = Want(w.label, split, w.method, w.category, w.group)
            segs[rel] = v.segments
    return want, segs


# ---- DF40 ----------------------------------------------------------------------------------------
def _frames(d: Path, n: int = 3) -> None:
    for i in range(n):
        touch(d / f"{i * 10:03d}.png")


def make_df40(root: Path) -> dict[str, Want]:
    """DF40/<method>/{ff,cdf}/frames/<vid>/<n>.png, a {fake,real} method, an image-only family,
    and the reals: FF++ test ids and the Celeb-DF test list's real entries (DeepfakeBench frames)."""
    want: dict[str, Want] = {}
    ff_test = [["953", "974"], ["012", "026"]]
    for method, cat in (("simswap", "FS"), ("fomm", "RE"), ("MRAA", "RE")):
        for t, s in ff_test:
            rel = f"DF40/{method}/ff/frames/{t}_{s}"
            _frames(root / rel)
            want[rel] = Want(1, "test", method, cat)
            touch(root / f"DF40/{method}/ff/landmarks/{t}_{s}/000.npy")  # not frames: ignored
    for vid in ("id0_id1_0000", "id2_id3_0001"):
        rel = f"DF40/simswap/cdf/frames/{vid}"
        _frames(root / rel)
        want[rel] = Want(1, "test", "simswap", "FS")
    for n in range(2):  # heygen ships videos for its fakes, and its own reals
        touch(root / f"DF40/heygen/fake/{n:04d}.mp4")
        want[f"DF40/heygen/fake/{n:04d}.mp4"] = Want(1, "test", "heygen", "RE")
        rel = f"DF40/heygen/real/frames/r{n:04d}"
        _frames(root / rel)
        want[rel] = Want(0, "test", *REAL)
    _frames(root / "DF40/StyleGAN2/ff/frames/000")  # image-only family: out of scope, no rows
    ff = root / "FaceForensics++"
    ff.mkdir(parents=True)
    (ff / "test.json").write_text(json.dumps(ff_test))
    for pair in ff_test:
        for vid in pair:
            rel = f"FaceForensics++/original_sequences/youtube/c23/frames/{vid}"
            _frames(root / rel)
            want[rel] = Want(0, "test", *REAL)
    _frames(ff / "original_sequences/youtube/c23/frames/999")  # not a test id: not used
    cdf = root / "Celeb-DF-v2"
    cdf.mkdir()
    (cdf / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00170.mp4\n1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id16_0000.mp4\n"
    )
    for rel in ("Celeb-DF-v2/YouTube-real/frames/00170", "Celeb-DF-v2/Celeb-real/frames/id0_0000"):
        _frames(root / rel)
        want[rel] = Want(0, "test", *REAL)
    return want


# ---- WildDeepfake --------------------------------------------------------------------------------
def make_wilddeepfake(root: Path) -> dict[str, Want]:
    """{real,fake}_{train,test}/<N>.tar.gz extracted in place to <N>/<real|fake>/<seq>/<frame>.png."""
    want: dict[str, Want] = {}
    layout = {
        "real_train": (0, "train", (1, 2)),
        "fake_train": (1, "train", (3, 4)),
        "real_test": (0, "test", (5,)),
        "fake_test": (1, "test", (6, 7)),
    }
    for top, (label, split, nums) in layout.items():
        for n in nums:
            touch(root / top / f"{n}.tar.gz")  # the archive stays next to its extracted folder
            for seq in range(2):
                rel = f"{top}/{n}/{'fake' if label else 'real'}/{seq}"
                _frames(root / rel, 12)
                want[rel] = Want(
                    label, split, *(REAL if label == 0 else ("unknown", "unknown")), str(n)
                )
    return want


# ---- Deepfake-Eval-2024 --------------------------------------------------------------------------
DFE_COLUMNS = ["Filename", "Media", "Finetuning Set", "Video Ground Truth", "Audio Ground Truth"]


def make_dfeval2024(root: Path) -> tuple[dict[str, Want], int]:
    """video-metadata-publish.csv and video-data/<Filename>; returns (wanted rows, rows left out)."""
    want: dict[str, Want] = {}
    rows = []
    truths = ["Real", "Fake", "Fake", "", "Unknown", "Real", "Fake", "Real"]
    for n, truth in enumerate(truths):
        name = f"{n:04x}a9c2.mp4"
        fset = "Train" if n % 3 else "Test"
        rows.append([name, f"https://example.org/{n}", fset, truth, "Fake" if n % 2 else "Real"])
        touch(root / "video-data" / name)
        if truth in ("Real", "Fake"):
            label = int(truth == "Fake")
            want[f"video-data/{name}"] = Want(
                label, fset.lower(), *(REAL if label == 0 else ("unknown", "unknown"))
            )
    with (root / "video-metadata-publish.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(DFE_COLUMNS)
        w.writerows(rows)
    return want, sum(t not in ("Real", "Fake") for t in truths)
