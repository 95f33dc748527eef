"""A contact sheet of pseudo-fakes: rows of (real crop, blending mask, pseudo-fake), drawn with
`dfprep report`'s contact sheet, so that a user sees what an SBI model is trained on.

    dftrain sbi-sheet DATA --out DIR [--faces 12] [--margin auto] [--seed 0]
`dftrain run --sbi` draws one into its run folder too (`split_sheet`).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from dfprep.balance.report import contact_sheet
from dfprep.config import ReportConfig
from dfprep.core.atomic import write_text, writing_to
from dfprep.core.errors import InputError
from dfprep.schema import REAL
from dfprep.shards import parse_sample
from dftrain.data import Piece, Split, read_pieces
from dftrain.sbi.blend import sample_rng, self_blend
from dftrain.sbi.config import SBIConfig
from dftrain.sbi.crops import crop_image, iter_crops, shard_paths
from dftrain.sbi.shape import crop_landmarks, valid_landmarks

__all__ = ["SHEET", "pick_reals", "pseudo_fake_sheet", "sheet_report", "split_sheet", "write_sheet"]

SHEET = "sbi-sheet.png"


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def pick_reals(shards: Iterable[Path], faces: int, seed: int) -> list[tuple[dict, bytes]]:
    """`faces` random real crops with landmarks (reservoir sampling: one pass, bounded memory)."""
    rng = np.random.default_rng(seed)
    keep: list[tuple[dict, bytes]] = []
    usable = lambda m: int(m.get("label", -1)) == REAL and valid_landmarks(m.get("landmarks"))  # noqa: E731
    for seen, (meta, jpg) in enumerate(iter_crops(shards, usable)):
        if seen < faces:
            keep.append((meta, jpg))
        elif (j := int(rng.integers(0, seen + 1))) < faces:
            keep[j] = (meta, jpg)
    return sorted(keep, key=lambda r: r[0]["key"])


def pseudo_fake_sheet(
    crops: list[tuple[dict, bytes]],
    margin: float,
    cfg: SBIConfig | None = None,
    *,
    seed: int = 0,
    per_row: int = 2,
    thumb: int = 160,
) -> Image.Image:
    """The sheet of the given real crops ((record, JPEG) pairs), `per_row` triples per row: the
    real of the pair (SBI's target), the mask (white = the source's full weight) and the fake,
    each as self_blend makes it for (seed, key), before the pair's training transforms."""
    cfg = cfg or SBIConfig()
    if not crops:
        raise InputError("no real crop with landmarks to draw")
    rows, images = [], {}
    for meta, jpg in crops:
        where = meta["key"]
        img = crop_image(jpg, where)
        lms = crop_landmarks(meta["bbox"], meta["landmarks"], margin, img.shape[0])
        out = self_blend(img, lms, sample_rng(seed, meta["key"]), cfg)
        name = meta.get("video_id", where)
        captions = (
            f"{name} {meta.get('time', 0):.0f}s",
            f"mask, ratio {out.ratio:g}",
            "pseudo-fake",
        )
        tiles = (
            out.real,
            (np.clip(out.mask, 0, 1) * 255).astype(np.uint8)[..., None].repeat(3, 2),
            out.fake,
        )
        for part, (caption, tile) in enumerate(zip(captions, tiles, strict=True)):
            key = f"{where}.{part}"
            images[key] = _png(tile)
            rows.append({"key": key, "video_id": name, "time": 0.0, "caption": caption})
    report = ReportConfig(
        rows=max(1, -(-len(rows) // (3 * per_row))), cols=3 * per_row, thumb=thumb
    )
    title = f"SBI pseudo-fakes: {len(crops)} real crops, each as (real, mask, fake), seed {seed}"
    return contact_sheet(pa.Table.from_pylist(rows), title, report, images)


def write_sheet(
    paths: Iterable[str | Path],
    out: str | Path,
    *,
    margin: float,
    faces: int = 12,
    seed: int = 0,
    cfg: SBIConfig | None = None,
    max_shards: int = 0,
) -> Path:
    """Pick `faces` random real crops of the shards (files or folders; at most `max_shards` of
    them, a seeded random choice, when > 0) and save their sheet (PNG)."""
    shards = shard_paths(paths)
    if 0 < max_shards < len(shards):
        pick = np.random.default_rng(seed).choice(len(shards), max_shards, replace=False)
        shards = [shards[i] for i in sorted(pick)]
    crops = pick_reals(shards, faces, seed)
    return _save(pseudo_fake_sheet(crops, margin, cfg, seed=seed), out)


def _save(sheet: Image.Image, out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise InputError(f"{out}: the sheet is a PNG (name it .png)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with writing_to(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out


def split_sheet(
    split: Split, out: str | Path, *, margin: float, cfg: SBIConfig, seed: int, faces: int = 12
) -> Path:
    """The sheet of the first `faces` crops of an SBI run's training split (its members: reals
    of the chosen datasets; balance shuffles the shards, so these are a random draw), for the run
    folder: a few samples read, whatever the size of the split."""
    plan, left = [], faces
    for i, shard in enumerate(split.shards):
        if left <= 0:
            break
        n = min(left, split.sizes[i])
        members = split.members[i][:n] if split.members is not None else None
        plan.append(Piece(shard, 0, n, split.sizes[i], members))
        left -= n
    crops = []
    for sample in read_pieces(plan):
        where = f"{sample['__url__']}: sample {sample['__key__']}"
        parsed = parse_sample(sample, where)
        if valid_landmarks(parsed.meta.get("landmarks")):
            crops.append((parsed.meta, sample["jpg"]))
    return _save(pseudo_fake_sheet(crops, margin, cfg, seed=seed), out)


def sheet_report(
    data: str | Path, out_dir: str | Path, margin: tuple[float, str], cfg: SBIConfig | None = None,
    *, faces: int = 12, seed: int = 0, max_shards: int = 8,
) -> Path:  # fmt: skip
    """`dftrain sbi-sheet`: OUT/sbi-sheet.png and OUT/report.md (what was drawn, and how);
    `margin`: the crops' margin and where it came from (`dftrain.sbi.data.crop_margin`)."""
    cfg = cfg or SBIConfig()
    out = Path(out_dir)
    png = write_sheet([data], out / SHEET, margin=margin[0], faces=faces, seed=seed, cfg=cfg,
                      max_shards=max_shards)  # fmt: skip
    lines = [
        "# SBI pseudo-fakes",
        "",
        f"{faces} random real crops of `{data}` (at most {max_shards} shards read, seed {seed}), each "
        "drawn as (the real of the pair, the blending mask: white = the source's full weight, the "
        "pseudo-fake), before the pair's training transforms. The landmarks are placed with the "
        f'crops\' margin {margin[0]:g} ({margin[1]}). See docs/train.md, "SBI".',
        "",
        f"![pseudo-fakes]({SHEET})",
        "",
    ]
    write_text(out / "report.md", "\n".join(lines))
    return png
