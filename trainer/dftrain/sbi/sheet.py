"""A contact sheet of pseudo-fakes: rows of (real crop, blending mask, pseudo-fake), drawn with
`dfprep report`'s contact sheet, so that a user sees what an SBI model is trained on.

    python -m dftrain.sbi.sheet SHARDS_OR_DIRS... --out sbi.png [--faces 12] [--margin 0.3]
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import typer
from PIL import Image

from dfprep.balance.report import contact_sheet
from dfprep.config import ReportConfig
from dfprep.core.cli import handle_errors
from dfprep.core.errors import InputError
from dfprep.schema import REAL
from dftrain.sbi.blend import sample_rng, self_blend
from dftrain.sbi.config import SBIConfig
from dftrain.sbi.crops import crop_image, iter_crops, shard_paths
from dftrain.sbi.shape import crop_landmarks, valid_landmarks

__all__ = ["pick_reals", "pseudo_fake_sheet", "write_sheet"]


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
) -> Path:
    """Pick `faces` random real crops of the shards (files or folders) and save their sheet (PNG)."""
    crops = pick_reals(shard_paths(paths), faces, seed)
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise InputError(f"{out}: the sheet is a PNG (name it .png)")
    out.parent.mkdir(parents=True, exist_ok=True)
    pseudo_fake_sheet(crops, margin, cfg, seed=seed).save(out)
    return out


app = typer.Typer(add_completion=False)


@app.command()
@handle_errors
def main(
    shards: list[Path] = typer.Argument(
        ..., help="shard files or folders (balance or extract output)"
    ),
    out: Path = typer.Option(..., "--out", help="the PNG to write"),
    faces: int = typer.Option(12, min=1, max=256, help="real crops to draw"),
    margin: float = typer.Option(
        0.3, min=0, max=4, help="the crops' margin (params.yaml crop.margin)"
    ),
    seed: int = typer.Option(0, min=0),
) -> None:
    """Draw SBI pseudo-fakes of random real crops: rows of (real, mask, fake)."""
    typer.echo(write_sheet(shards, out, margin=margin, faces=faces, seed=seed))


if __name__ == "__main__":
    app()
