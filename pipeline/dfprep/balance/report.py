"""`dfprep report`: what a person looks at before spending GPU days on a training set.

One contact sheet per dataset x label (a few crops of each video, captioned with the method, the
video id and the time, and the videos not shown named in report.md), the balance chart, the
extract outcome with the most common error messages, and the videos to check (failed, no face,
warned, several faces) named with their reasons, also as `video_problems.parquet`. Works on a
balance output (reads its selection index and shards) or on extract outputs (their crop indexes).
It samples: at most `max_shards` shards are opened per sheet, and only their headers are scanned.
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
from dfprep.problems import MAX_NAMED, PROBLEMS_FILE, problem_lines, problem_rows, write_problems
from dfprep.schema import LABEL_NAMES, MULTI_FACE_FAKE, VIDEO_STATUS_SCHEMA
from dfprep.shards import (
    VIDEO_COLUMNS,
    ShardFiles,
    decode_jpeg,
    parse_file_name,
    read_dropped,
    read_members,
    read_table,
)

SHEET_COLUMNS = ["key", "video_id", "dataset", "label", "method", "time", "path"]
# a sheet's layout in pixels: padding, title band, caption line (the default font is 10 px)
PAD, HEAD, LINE = 4, 22, 12


@dataclass
class ReportResult:
    out: Path
    sheets: list[Path] = field(default_factory=list)
    chart: Path | None = None
    markdown: Path | None = None
    dropped: int = 0  # faces of paired fakes dropped as unmanipulated (extract outputs)
    problems: Path | None = None  # video_problems.parquet
    not_shown: dict[str, list[str]] = field(default_factory=dict)  # sheet -> videos not on it


def _balanced_crops(d: Path) -> tuple[pa.Table, dict]:
    sel = d / "selection.parquet"
    if not sel.exists():
        raise InputError(
            f"{d}: has sizes.json but no selection.parquet (not a complete balance output)"
        )
    with open_regular(sel) as f:
        pf = pq.ParquetFile(f)
        names = pf.schema_arrow.names
        t = pf.read(
            columns=["key", "video_id", "dataset", "label", "time", "split", "out_shard"]
            + ["method"] * ("method" in names)
        )
    if "method" not in names:
        t = t.append_column("method", pa.array([""] * len(t), pa.string()))
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


def sample_sheet(
    t: pa.Table, rng: np.random.Generator, k: int, max_shards: int, per_video: int
) -> tuple[pa.Table, list[str]]:
    """Up to k crops of the group, at most `per_video` of each video, from at most `max_shards`
    random shards (bounded reads); returns them (in table order) and the ids of the videos not
    shown. Videos are served in rounds, one random crop of each (in random order) per round, so
    one long video cannot fill the sheet while others are left out."""
    videos = pc.unique(t["video_id"]).to_pylist()
    shards = sorted(pc.unique(t["path"]).to_pylist())
    if len(shards) > max_shards:
        keep = sorted(rng.choice(len(shards), size=max_shards, replace=False))
        t = t.filter(pc.is_in(t["path"], pa.array([shards[i] for i in keep])))
    vid = np.asarray(pc.dictionary_encode(t["video_id"]).combine_chunks().indices, np.int64)
    n_videos = int(vid.max()) + 1 if len(vid) else 0
    order = np.lexsort((rng.random(len(t)), vid))  # by video, then at random
    first = np.searchsorted(vid[order], np.arange(n_videos))
    rank = np.empty(len(t), np.int64)
    rank[order] = np.arange(len(t)) - first[vid[order]]  # the crop's turn within its video
    turn = rng.permutation(n_videos)  # the videos' order within a round
    ok = np.flatnonzero(rank < per_video)
    take = np.sort(ok[np.lexsort((turn[vid[ok]], rank[ok]))][:k])
    shown = t.take(pa.array(take, pa.int64()))
    seen = set(shown["video_id"].to_pylist())
    return shown, sorted(v for v in videos if v not in seen)


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int, keep_end: bool = True) -> str:
    """The text within width pixels: its end kept (the distinctive part of a video id), or with
    keep_end=False its start (a method name)."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength("…" + text, font=font) > width:
        text = text[1:] if keep_end else text[:-1]
    return "…" + text if keep_end else text + "…"


def captions(row: dict) -> list[str]:
    """A thumbnail's caption lines: its `caption` column (lines split on newlines) if it has one,
    else the method, the video id and the time in the video, each on its own line."""
    if row.get("caption"):
        return row["caption"].split("\n")
    return [row.get("method") or "", row["video_id"], f"{row['time']:.0f} s"]


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
    rows_ = crops.to_pylist()
    lines = [captions(r) for r in rows_]
    pad, head = PAD, HEAD
    cap = caption_height(max((len(c) for c in lines), default=1))
    cols = max(1, min(cfg.cols, len(crops)))
    rows = max(1, -(-len(crops) // cols))
    sheet = Image.new(
        "RGB",
        (cols * (cfg.thumb + pad) + pad, head + rows * (cfg.thumb + cap + pad) + pad),
        "white",
    )
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 4), _fit(draw, title, font, sheet.width - 2 * pad), fill="black", font=font)
    for i, row in enumerate(rows_):
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
        for j, text in enumerate(lines[i]):  # the first line (a method) keeps its start
            text = _fit(draw, text, font, cfg.thumb, keep_end=j > 0 or len(lines[i]) == 1)
            draw.text((x, y + cfg.thumb + 1 + j * LINE), text, fill="black", font=font)
    return sheet


def caption_height(lines: int) -> int:
    """The band under each thumbnail for LINES caption lines."""
    return LINE * lines + 2


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
            "caption": f"{r['method']}\n{r['video_id']}\n"
            f"{r['time']:.0f} s, {r['source']} {r['manip_score']:.2f}",
        }
        for i, r in enumerate(shown)
    ]
    videos = len(set(thumbs["video_id"].to_pylist()))
    title = (
        f"faces dropped as unmanipulated: {total:,} in all, {len(thumbs):,} kept as thumbnails "
        f"from {videos:,} fake videos, {len(rows)} random shown (caption: method, video, time, "
        "source and score)"
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


def _names(ids: list[str], limit: int = MAX_NAMED) -> str:
    more = f" and {len(ids) - limit:,} more" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def _problems(videos: pa.Table | None, out: Path, result: ReportResult, balanced: bool) -> str:
    """The videos to check, named with their reasons (all in video_problems.parquet)."""
    if videos is None:
        return ""
    rows = problem_rows(videos)
    result.problems = write_problems(rows, out / PROBLEMS_FILE)
    scope = "the videos of this training set" if balanced else "every video extracted"
    lines = ["", "## Videos to check", ""]
    if not rows:
        return "\n".join([*lines, f"None among {scope}.", ""])
    lines += [
        f"Among {scope} (all of them, with their reasons: [{PROBLEMS_FILE}]({PROBLEMS_FILE})). "
        f"`{MULTI_FACE_FAKE}`: an unpaired training fake with several faces in a frame; its "
        "crops may show a real face labelled fake (give its original in the CSV's `original` "
        "column, or leave it out).",
        *problem_lines(rows),
        "",
    ]
    return "\n".join(lines)


def _selected_videos(d: Path, crops: pa.Table) -> pa.Table | None:
    """The status rows of the videos of a balance output's selection, from its source shards
    (None when they are gone)."""
    sel = pq.read_table(d / "selection.parquet", columns=["source"])
    tables = []
    for tar in pc.unique(sel["source"]).to_pylist():
        parsed = parse_file_name(Path(tar).name)
        files = ShardFiles(Path(tar).parent, parsed[0]) if parsed else None
        if files is None or not files.videos.exists():  # moved or deleted since
            continue
        tables.append(read_table(files.videos, VIDEO_COLUMNS, VIDEO_STATUS_SCHEMA))
    if not tables:
        return None
    videos = pa.concat_tables(tables)
    return videos.filter(pc.is_in(videos["video_id"], pc.unique(crops["video_id"])))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def _markdown(
    title: str,
    chart: str | None,
    sheets: list[tuple[str, str, list[str]]],
    extract: dict,
    top: int,
) -> str:
    lines = [f"# Data report: {title}", ""]
    if chart:
        lines += ["## Balance", "", f"![balance chart]({chart})", ""]
    lines += ["## Contact sheets", ""]
    for caption, name, hidden in sheets:
        lines += [f"### {caption}", "", f"![{caption}]({name})", ""]
        if hidden:
            lines += [f"Not shown: {len(hidden):,} video(s): {_names(hidden)}.", ""]
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
        videos = _selected_videos(dirs[0], crops)
    else:
        crops, stats, pool = _extract_crops(dirs, cfg.top_errors)
        if stats["splits"]:
            result.chart = plot_stats(stats, chart)
        videos = pool.videos
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
        shown, hidden = sample_sheet(sub, rng, cfg.rows * cfg.cols, cfg.max_shards, cfg.per_video)
        n = g["video_id_count_distinct"]
        title = (
            f"{ds} / {label}: {g['key_count']:,} crops from {n:,} videos; {len(shown)} shown, "
            f"at most {cfg.per_video} per video, from {n - len(hidden):,} videos"
        )
        name = f"contact-{_safe(ds)}-{label}.png"
        contact_sheet(shown, title, cfg).save(out / name)
        result.sheets.append(out / name)
        result.not_shown[name] = hidden
        entries.append((f"{ds} / {label}", name, hidden))
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
    md += _problems(videos, out, result, bool(balanced))
    result.markdown = out / "report.md"
    write_text(result.markdown, md)
    return result
