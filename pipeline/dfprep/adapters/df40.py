"""DF40 test set as published: preprocessed frames, not videos, plus the reals it is scored against.

Fakes: `DF40/<method>/{ff,cdf}/frames/<vid>/<n>.png` (FF++- and Celeb-DF-domain), or
`DF40/<method>/{fake,real}/...` for methods shipped with their own reals. DF40 ships no reals for the
ff/cdf domains: they are DeepfakeBench's processed frames of the FF++ test ids
(`FaceForensics++/original_sequences/youtube/c23/frames/<id>`, ids from `FaceForensics++/test.json`)
and of the real entries of `Celeb-DF-v2/List_of_testing_videos.txt`
(`Celeb-DF-v2/<Celeb-real|YouTube-real>/frames/<stem>`), next to `DF40/` under the root.
Everything is test. Option `domain` picks one evaluation set, scored as one dataset: `cdf` (the
default, the paper's DF40: 21 methods applied to the Celeb-DF test reals, 178 real / 11,366 fake),
`ff` (the FF++-domain fakes and the FF++ test reals), `own` (the methods shipped with their own
`fake/real` folders) or `all` (everything in one manifest, reals pooled: not the paper's set). One
domain per manifest keeps each domain's fakes scored against that domain's own reals (the
catalogue's `df40-ff` entry is the FF++ domain). The image-only families (entire-face synthesis, face editing) are skipped: they
are out of scope for video evaluation.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from dfprep.adapters.celebdf import read_test_list
from dfprep.adapters.registry import AdapterOptions, VideoRow, check_listed, note_skipped
from dfprep.adapters.splits import read_options
from dfprep.core.errors import ConfigError, InputError
from dfprep.core.media import IMAGE_EXTS, MediaScan, scan_files

log = logging.getLogger(__name__)

FS = (
    "fsgan",
    "faceswap",
    "simswap",
    "inswap",
    "blendface",
    "uniface",
    "mobileswap",
    "e4s",
    "facedancer",
    "deepfacelab",
)
RE = (
    "fomm",
    "facevid2vid",
    "wav2lip",
    "MRAA",
    "one_shot_free",
    "pirender",
    "tpsm",
    "lia",
    "danet",
    "sadtalker",
    "mcnet",
    "hyperreenact",
    "heygen",
)
METHOD_CATEGORY = {**dict.fromkeys(FS, "FS"), **dict.fromkeys(RE, "RE")}
IMAGE_ONLY = {  # method folder -> family; listed so they are recognised, never turned into rows
    **dict.fromkeys(
        (
            "VQGAN",
            "StyleGAN2",
            "StyleGAN3",
            "StyleGANXL",
            "sd2.1",
            "sd1.5",
            "ddim",
            "rddm",
            "PixArt",
            "DiT",
            "SiT",
            "MidJourney",
            "whichfaceisreal",
            "dalle2_face",
        ),
        "EFS",
    ),
    **dict.fromkeys(("CollabDiff", "e4e", "stargan", "starganv2", "styleclip"), "FE"),
}
DOMAINS = {"ff": 1, "cdf": 1, "fake": 1, "real": 0}
DOMAIN_DIRS = {"cdf": ("cdf",), "ff": ("ff",), "own": ("fake", "real"), "all": tuple(DOMAINS)}
OPTIONS = {
    "frame_stride": 1,
    "reals": "required",  # required | none (fakes only; pair them with reals from elsewhere)
    "ffpp_dir": "FaceForensics++",
    "celebdf_dir": "Celeb-DF-v2",
    "compression": "c23",
    "domain": "cdf",  # cdf | ff | own | all (see DOMAIN_DIRS)
}
_CANON = {m.lower(): m for m in [*METHOD_CATEGORY, *IMAGE_ONLY]}


def has_images(d: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_EXTS and p.is_file() for p in d.iterdir())


def sequences(base: Path) -> tuple[list[Path], MediaScan, list[Path]]:
    """(image folders, the other files by the media rule, folders with no images) directly
    under `base`.

    The published shape is exact (`frames/<vid>/<n>.png`), so this does not recurse: a folder
    holding no images is reported, not searched.
    """
    dirs, files, empty = [], [], []
    if has_images(base):
        dirs.append(base)
    for p in sorted(base.iterdir()):
        if p.is_dir():
            (dirs if has_images(p) else empty).append(p)
        elif p.suffix.lower() not in IMAGE_EXTS:
            files.append(p)  # e.g. heygen ships videos, not frames
    return dirs, scan_files(files), empty


def _domain_rows(
    root: Path, ddir: Path, method: str, stride: int, opts: AdapterOptions
) -> list[VideoRow]:
    label = DOMAINS[ddir.name]
    method_, category = ("real", "real") if label == 0 else (method, METHOD_CATEGORY[method])
    base = ddir / "frames" if (ddir / "frames").is_dir() else ddir
    dirs, scan, empty = sequences(base)
    note_skipped(root, scan.skipped, opts, "df40")
    videos = scan.videos
    if empty:
        log.warning(
            "df40: %d folder(s) under %s hold no images and were not used, e.g. %s",
            len(empty),
            base,
            empty[0].name,
        )
    rows = [
        VideoRow(
            d.relative_to(root).as_posix(),
            "test",
            label,
            method_,
            category,
            source_id=d.name,
            kind="frames",
            frame_stride=stride,
        )
        for d in dirs
    ]
    rows += [
        VideoRow(p.relative_to(root).as_posix(), "test", label, method_, category, source_id=p.stem)
        for p in videos
    ]
    return rows


def _fakes(
    root: Path, df40: Path, stride: int, opts: AdapterOptions, domain: str = "all"
) -> tuple[list[VideoRow], set[str]]:
    rows: list[VideoRow] = []
    domains: set[str] = set()
    skipped: list[str] = []
    other_domain: list[str] = []
    for mdir in sorted(p for p in df40.iterdir() if p.is_dir()):
        method = _CANON.get(mdir.name.lower())
        if method is None:
            raise InputError(
                f"df40: unknown method folder {mdir} (known: {', '.join(_CANON.values())})"
            )
        if method in IMAGE_ONLY:
            skipped.append(method)
            continue
        ddirs = sorted(p for p in mdir.iterdir() if p.is_dir() and p.name in DOMAINS)
        other = sorted(p.name for p in mdir.iterdir() if p.is_dir() and p.name not in DOMAINS)
        if other:
            raise InputError(
                f"df40: unexpected folder {mdir / other[0]} (expected one of {', '.join(DOMAINS)})"
            )
        chosen = [d for d in ddirs if d.name in DOMAIN_DIRS[domain]]
        if ddirs and not chosen:
            other_domain.append(method)
        for ddir in chosen:
            got = _domain_rows(root, ddir, method, stride, opts)
            if not got:
                _absent(root, ddir, opts, f"df40: {ddir} holds no frames and no videos")
                continue
            rows += got
            if ddir.name in ("ff", "cdf"):
                domains.add(ddir.name)
        if not ddirs:
            _absent(root, mdir, opts, f"df40: {mdir} holds none of {', '.join(DOMAINS)}")
    if other_domain:
        log.info(
            "df40: %d method(s) have no %s domain and were left out: %s",
            len(other_domain),
            domain,
            ", ".join(other_domain),
        )
    if skipped:
        log.info(
            "df40: skipped %d image-only method(s), out of scope for video evaluation: %s",
            len(skipped),
            ", ".join(skipped),
        )
    return rows, domains


def _absent(root: Path, d: Path, opts: AdapterOptions, msg: str) -> None:
    """A shipped folder with nothing in it: an error, or a recorded miss under skip_missing."""
    if not opts.skip_missing:
        raise InputError(msg)
    opts.missing.append(d.relative_to(root).as_posix())


def _ffpp_test_ids(ff: Path) -> list[str]:
    for cand in (ff / "test.json", ff / "splits" / "test.json"):
        if cand.is_file():
            try:
                pairs = json.loads(cand.read_text())
            except json.JSONDecodeError as e:
                raise InputError(f"{cand}:{e.lineno}: not valid JSON ({e.msg})") from None
            ids = []
            for n, pair in enumerate(pairs if isinstance(pairs, list) else [None]):
                if not (
                    isinstance(pair, list)
                    and len(pair) == 2
                    and all(isinstance(x, str) for x in pair)
                ):
                    raise InputError(f"{cand}: entry {n} is not a pair of ids: {pair!r}")
                ids += pair
            return sorted(set(ids))
    raise InputError(f"df40: FF++ test split missing: {ff / 'test.json'} (FF++'s splits/test.json)")


def _ff_reals(root: Path, ff: Path, comp: str, stride: int, opts: AdapterOptions) -> list[VideoRow]:
    rows = []
    test_json = ff / "test.json" if (ff / "test.json").is_file() else ff / "splits" / "test.json"
    for vid in _ffpp_test_ids(ff):
        rel = (
            (ff / "original_sequences" / "youtube" / comp / "frames" / vid)
            .relative_to(root)
            .as_posix()
        )
        if check_listed(root, rel, opts, f"{test_json}: {vid}"):
            rows.append(
                VideoRow(
                    rel,
                    "test",
                    0,
                    "real",
                    "real",
                    source_id=vid,
                    kind="frames",
                    frame_stride=stride,
                )
            )
    return rows


def _cdf_reals(root: Path, cdf: Path, stride: int, opts: AdapterOptions) -> list[VideoRow]:
    lst = cdf / "List_of_testing_videos.txt"
    rows = []
    for v in read_test_list(lst):
        if v.label != 0:
            continue
        subdir, name = v.relpath.split("/", 1)
        rel = (cdf / subdir / "frames" / Path(name).stem).relative_to(root).as_posix()
        if check_listed(root, rel, opts, f"{lst}:{v.lineno}"):
            rows.append(
                VideoRow(
                    rel,
                    "test",
                    0,
                    "real",
                    "real",
                    source_id=Path(name).stem,
                    kind="frames",
                    frame_stride=stride,
                )
            )
    return rows


def df40(root: Path, opts: AdapterOptions) -> list[VideoRow]:
    o = read_options(opts, "df40", OPTIONS)
    stride = o["frame_stride"]
    if stride < 1:
        raise ConfigError(f"df40: option frame_stride must be >= 1, got {stride}")
    if o["reals"] not in ("required", "none"):
        raise ConfigError(f"df40: option reals must be 'required' or 'none', got {o['reals']!r}")
    if o["domain"] not in DOMAIN_DIRS:
        raise ConfigError(
            f"df40: option domain must be one of {', '.join(DOMAIN_DIRS)}, got {o['domain']!r}"
        )
    top = root / "DF40"
    if not top.is_dir():
        raise InputError(f"df40: {top} not found (ROOT must hold DF40/<method>/...)")
    rows, domains = _fakes(root, top, stride, opts, o["domain"])
    if not rows:
        raise InputError(
            f"df40: no {o['domain']}-domain fakes under {top} (option domain: {', '.join(DOMAIN_DIRS)})"
        )
    if o["reals"] == "required":
        if "ff" in domains:
            ff = root / o["ffpp_dir"]
            if not ff.is_dir():
                raise InputError(
                    f"df40: FF-domain fakes need the FF++ test reals under {ff} (or --option reals=none)"
                )
            rows += _ff_reals(root, ff, o["compression"], stride, opts)
        if "cdf" in domains:
            cdf = root / o["celebdf_dir"]
            if not cdf.is_dir():
                raise InputError(
                    f"df40: CDF-domain fakes need the Celeb-DF test reals under {cdf} (or --option reals=none)"
                )
            rows += _cdf_reals(root, cdf, stride, opts)
    return rows
