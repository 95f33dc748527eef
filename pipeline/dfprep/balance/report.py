"""`dfprep report`: what a person looks at before spending GPU days on a training set.

One contact sheet per dataset x label (random crops captioned with their video id and time), the
balance chart, and the extract outcome with the most common error messages. Works on a balance
output (reads its selection index and shards) or on extract outputs (their crop indexes). It
samples: at most `max_shards` shards are opened per sheet, and only their headers are scanned.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageFont

from dfprep.balance.pool import read_pool
from dfprep.balance.stats import compute_stats, error_summary, plot_stats
from dfprep.config import ReportConfig
from dfprep.core.atomic import write_text
from dfprep.core.errors import InputError
from dfprep.core.files import open_regular, read_regular_text
from dfprep.core.lock import output_lock
from dfprep.core.outputs import output_dir
from dfprep.schema import LABEL_NAMES
from dfprep.shards import decode_jpeg, read_dropped, read_members

SHEET_COLUMNS = ["key", "video_id", "dataset", "label", "time", "path"]


@dataclass
class ReportResult:
    out: Path
    sheets: list[Path] = field(default_factory=list)
    chart: Path | None = None
    markdown: Path | None = None
    dropped: int = 0  # faces of paired fakes dropped as unmanipulated (extract outputs)


def _balanced_crops(d: Path) -> tuple[pa.Table, dict]:
    sel = d / "selection.parquet"
    if not sel.exists():
        raise InputError(
            f"{d}: has sizes.json but no selection.parquet (not a complete balance output)"
        )
    with open_regular(sel) as f:
        t = pq.read_table(
            f, columns=["key", "video_id", "dataset", "label", "time", "split", "out_shard"]
        )
    paths = pc.binary_join_element_wise(str(d), t["split"], t["out_shard"], "/")
    t = t.drop_columns(["split", "out_shard"]).append_column("path", paths)
    stats = json.loads(read_regular_text(d / "stats.json")) if (d / "stats.json").exists() else {}
    return t.select(SHEET_COLUMNS), stats


def _extract_crops(dirs: list[Path], top: int) -> tuple[pa.Table, dict, object]:
    pool = read_pool(dirs)
    paths = pc.take(pa.array(pool.sources, pa.string()), pool.index["source"])
    t = pool.index.append_column("path", paths).select(SHEET_COLUMNS)
    stats = compute_stats(pool, None, None)
    stats["extract"].update(error_summary(pool.videos, top))
    return t, stats, pool


def sample_sheet(t: pa.Table, rng: np.random.Generator, k: int, max_shards: int) -> pa.Table:
    """Up to k random crops from at most max_shards random shards of the group (bounded reads)."""
    shards = sorted(pc.unique(t["path"]).to_pylist())
    if len(shards) > max_shards:
        keep = sorted(rng.choice(len(shards), size=max_shards, replace=False))
        t = t.filter(pc.is_in(t["path"], pa.array([shards[i] for i in keep])))
    take = np.sort(rng.choice(len(t), size=min(k, len(t)), replace=False))
    return t.take(pa.array(take))


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """Keep the end of the text (the distinctive part of a video id) within width pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength("…" + text, font=font) > width:
        text = text[1:]
    return "…" + text


def contact_sheet(
    crops: pa.Table, title: str, cfg: ReportConfig, images: dict[str, bytes] | None = None
) -> Image.Image:
    """A grid of thumbnails, each captioned with its video id and time in the video (and its
    `caption` column when it has one). IMAGES: key -> JPEG, else read from the crops' tars."""
    if images is None:
        images = {}
        for path in sorted(set(crops["path"].to_pylist())):
            keys = set(crops.filter(pc.equal(crops["path"], path))["key"].to_pylist())
            images.update(read_members(path, keys, "jpg"))
    font = ImageFont.load_default()
    pad, cap, head = 4, 14, 22
    cols = max(1, min(cfg.cols, len(crops)))
    rows = max(1, -(-len(crops) // cols))
    sheet = Image.new(
        "RGB",
        (cols * (cfg.thumb + pad) + pad, head + rows * (cfg.thumb + cap + pad) + pad),
        "white",
    )
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 4), _fit(draw, title, font, sheet.width - 2 * pad), fill="black", font=font)
    for i, row in enumerate(crops.to_pylist()):
        x = pad + (i % cols) * (cfg.thumb + pad)
        y = head + (i // cols) * (cfg.thumb + cap + pad)
        data = images.get(row["key"])
        try:
            if data is None:
                raise InputError("missing")
            thumb = decode_jpeg(data, row["key"]).resize((cfg.thumb, cfg.thumb))
            sheet.paste(thumb, (x, y))
        except InputError:
            draw.rectangle([x, y, x + cfg.thumb - 1, y + cfg.thumb - 1], outline="red")
            draw.text(
                (x + 4, y + 4), "missing" if data is None else "unreadable", fill="red", font=font
            )
        text = row.get("caption") or f"{row['video_id']} {row['time']:.0f}s"
        caption = _fit(draw, text, font, cfg.thumb)
        draw.text((x, y + cfg.thumb + 1), caption, fill="black", font=font)
    return sheet


DROPPED_SHEET = "dropped-unmanipulated.png"


def _dropped_sheet(dirs, out: Path, cfg: ReportConfig, rng, result, entries) -> str:
    """The faces of paired fakes that extract left out as unmanipulated (a random few of the
    thumbnails it kept), captioned video id, time and score; returns the report's lines."""
    tables, total = [], 0
    for d in dirs:
        t, n = read_dropped(d)
        tables.append(t)
        total += n
    thumbs = pa.concat_tables(tables)
    if total == 0 and len(thumbs) == 0:
        return ""
    take = np.sort(
        rng.choice(len(thumbs), size=min(cfg.rows * cfg.cols, len(thumbs)), replace=False)
    )
    shown = thumbs.take(pa.array(take, pa.int64())).to_pylist()
    rows = [
        {
            "key": str(i),
            "video_id": r["video_id"],
            "time": r["time"],
            "caption": f"{r['video_id']} {r['time']:.0f}s {r['source']} {r['manip_score']:.2f}",
        }
        for i, r in enumerate(shown)
    ]
    videos = len(set(thumbs["video_id"].to_pylist()))
    title = (
        f"faces dropped as unmanipulated: {total:,} in all, {len(thumbs):,} kept as thumbnails "
        f"from {videos:,} fake videos, {len(rows)} random shown (caption: video, time, source, score)"
    )
    if rows:
        table = pa.Table.from_pylist(rows)
        images = {str(i): r["jpg"] for i, r in enumerate(shown)}
        contact_sheet(table, title, cfg, images).save(out / DROPPED_SHEET)
        result.sheets.append(out / DROPPED_SHEET)
    lines = ["", "## Faces dropped as unmanipulated", "", f"{title}.", ""]
    if rows:
        lines += [f"![dropped faces]({DROPPED_SHEET})", ""]
    result.dropped = total
    return "\n".join(lines)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def _markdown(
    title: str, chart: str | None, sheets: list[tuple[str, str]], extract: dict, top: int
) -> str:
    lines = [f"# Data report: {title}", ""]
    if chart:
        lines += ["## Balance", "", f"![balance chart]({chart})", ""]
    lines += ["## Contact sheets", ""]
    for caption, name in sheets:
        lines += [f"### {caption}", "", f"![{caption}]({name})", ""]
    if extract:
        lines += [
            "## Extract outcome",
            "",
            "| dataset | ok | no_face | failed |",
            "|---|---|---|---|",
        ]
        for ds, c in extract.get("datasets", {}).items():
            lines.append(
                f"| {ds} | {c.get('ok', 0):,} | {c.get('no_face', 0):,} | {c.get('failed', 0):,} |"
            )
        v = extract.get("videos", {})
        lines.append(
            f"| **all** | {v.get('ok', 0):,} | {v.get('no_face', 0):,} | {v.get('failed', 0):,} |"
        )
        errors = extract.get("errors", [])[:top]
        if errors:
            lines += [
                "",
                "Most common messages:",
                "",
                "| videos | status | message |",
                "|---|---|---|",
            ]
            lines += [
                f"| {e['videos']} | {e['status']} | {e['message'].replace('|', '/')} |"
                for e in errors
            ]
        if extract.get("incomplete_shards"):
            lines += ["", f"{extract['incomplete_shards']} incomplete shard(s) skipped."]
    return "\n".join(lines) + "\n"


def run_report(
    dirs: list[str | Path], out: str | Path, cfg: ReportConfig | None = None
) -> ReportResult:
    """Contact sheets, chart and outcome summary of one balance output or of extract outputs."""
    cfg = cfg or ReportConfig()
    dirs = [Path(d) for d in dirs]
    if not dirs:
        raise InputError("no directory given")
    balanced = [d for d in dirs if (d / "sizes.json").exists()]
    if balanced and len(dirs) > 1:
        raise InputError(f"{balanced[0]}: a balance output is reported on its own; give it alone")
    out = output_dir(out)
    with output_lock(out, "dfprep report"):
        return _report(dirs, balanced, out, cfg)


def _report(dirs: list[Path], balanced: list[Path], out: Path, cfg: ReportConfig) -> ReportResult:
    result = ReportResult(out)
    chart = out / "balance.png"
    if balanced:
        crops, stats = _balanced_crops(dirs[0])
        if (dirs[0] / "stats.png").exists():
            shutil.copyfile(dirs[0] / "stats.png", chart)
            result.chart = chart
    else:
        crops, stats, _ = _extract_crops(dirs, cfg.top_errors)
        if stats["splits"]:
            result.chart = plot_stats(stats, chart)
    if len(crops) == 0:
        raise InputError(f"no crops in {', '.join(map(str, dirs))}")
    rng = np.random.default_rng(cfg.seed)
    groups = crops.group_by(["dataset", "label"]).aggregate(
        [("video_id", "count_distinct"), ("key", "count")]
    )
    entries = []
    for g in sorted(groups.to_pylist(), key=lambda r: (r["dataset"], r["label"])):
        ds, label = g["dataset"], LABEL_NAMES[g["label"]]
        sub = crops.filter(
            pc.and_(pc.equal(crops["dataset"], ds), pc.equal(crops["label"], g["label"]))
        )
        shown = sample_sheet(sub, rng, cfg.rows * cfg.cols, cfg.max_shards)
        title = f"{ds} / {label}: {g['key_count']:,} crops from {g['video_id_count_distinct']:,} videos, {len(shown)} random shown"
        name = f"contact-{_safe(ds)}-{label}.png"
        contact_sheet(shown, title, cfg).save(out / name)
        result.sheets.append(out / name)
        entries.append((f"{ds} / {label}", name))
    dropped_note = ""
    if not balanced:
        dropped_note = _dropped_sheet(dirs, out, cfg, rng, result, entries)
    md = _markdown(
        ", ".join(map(str, dirs)),
        chart.name if result.chart else None,
        entries,
        stats.get("extract", {}),
        cfg.top_errors,
    )
    md += dropped_note
    result.markdown = out / "report.md"
    write_text(result.markdown, md)
    return result
