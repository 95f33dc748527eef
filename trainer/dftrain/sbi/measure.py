"""How well the 5-point face hull covers a face: IoU against the sample dataset's true face region.

The sample (`dfprep synth`) writes FF++-style mask videos, white where a fake differs from its
original, and `synth_truth.json`, the manipulated face's box per frame (`dfprep.synth.truth`
documents both). For the face-swap fakes (Deepfakes, FaceSwap) the mask is the swapped face. Each
crop of such a fake that an extraction took from the manipulated face (its box overlaps the
truth's by IoU >= 0.5) is compared, in crop pixels, with the mask frame at the crop's frame index
cut by the same crop geometry (`dfprep.crop.crop_face`):
  - hull68: the mean 68-point face fitted to the crop's 5 landmarks, filled (no elastic, no blur);
  - hull81: the same with the forehead arc (`SBIConfig.forehead`), SBI's 81-point hull;
  - ellipse: the ellipse inscribed in the detected box, a landmark-free baseline.

    python -m dftrain.sbi.measure EXTRACT_DIR DATASET_ROOT [--margin 0.3] [--json out.json]
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import typer

from dfprep.core.atomic import write_json
from dfprep.core.cli import handle_errors
from dfprep.core.errors import InputError
from dfprep.crop import box_in_crop, crop_face
from dfprep.schema import make_video_id
from dftrain.sbi.config import SBIConfig
from dftrain.sbi.crops import crop_image, iter_crops, shard_paths
from dftrain.sbi.shape import crop_landmarks, ellipse_mask, face_points, hull_mask, valid_landmarks

__all__ = ["FACE_SWAPS", "REGIONS", "HullIoU", "mask_path", "measure_hull_iou", "summarise"]

FACE_SWAPS = ("Deepfakes", "FaceSwap")  # methods whose mask is the swapped face
REGIONS = ("hull68", "hull81", "ellipse")
TRUTH_FILE = "synth_truth.json"
MATCH_IOU = 0.5  # a crop is of the manipulated face when its box overlaps the truth's this much


@dataclass
class HullIoU:
    rows: list[dict] = field(
        default_factory=list
    )  # key, method, frame_index, and one IoU per region
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> crops left out

    def summary(self) -> dict:
        return summarise(self.rows)


def _box_iou(a: Iterable[float], b: Iterable[float]) -> float:
    ax1, ay1, ax2, ay2 = map(float, a)
    bx1, by1, bx2, by2 = map(float, b)
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def mask_path(rel: str) -> str:
    """FF++'s mask video of a fake: `manipulated_sequences/M/<compression>/videos/X.mp4` ->
    `manipulated_sequences/M/masks/videos/X.mp4`."""
    parts = PurePosixPath(rel).parts
    if len(parts) < 5 or parts[0] != "manipulated_sequences":
        raise InputError(f"{rel}: not an FF++ fake (manipulated_sequences/METHOD/.../X.mp4)")
    return str(PurePosixPath(*parts[:2], "masks", "videos", parts[-1]))


def _load_truth(root: Path) -> dict:
    path = root / TRUTH_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path} is missing (not a dfprep synth dataset?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("videos"), dict):
        raise InputError(f"{path}: expected {{'version': 1, 'videos': {{...}}}}")
    return data["videos"]


def _mask_frames(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """The grey frames of a mask video at the wanted indices (decode order = presentation order)."""
    import av  # PyAV: only this measurement decodes video

    out: dict[int, np.ndarray] = {}
    try:
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    out[i] = frame.to_ndarray(format="gray")
                if len(out) == len(wanted):
                    break
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(f"{path}: cannot decode the mask video ({e})") from None
    return out


def measure_hull_iou(
    extract_dir: str | Path,
    dataset_root: str | Path,
    *,
    margin: float,
    methods: Iterable[str] = FACE_SWAPS,
    cfg: SBIConfig | None = None,
) -> HullIoU:
    """IoU of each region (REGIONS) with the true face region, per face-swap crop of an extract
    output (`margin`: the crops' margin, params.yaml `crop.margin`) of the sample dataset."""
    cfg = cfg or SBIConfig()
    root, methods = Path(dataset_root), set(methods)
    truth = _load_truth(root)
    result = HullIoU()
    skipped: dict[str, int] = defaultdict(int)
    ids: dict[tuple[str, str], str] = {}
    by_video: dict[str, list[tuple[dict, bytes]]] = defaultdict(list)
    for meta, jpg in iter_crops(
        shard_paths([extract_dir]),
        lambda m: m.get("method") in methods and int(m.get("label", 0)) == 1,
    ):
        ds = meta["dataset"]
        if (ds, "") not in ids:
            ids[(ds, "")] = ""
            ids.update({(ds, make_video_id(ds, rel)): rel for rel in truth})
        rel = ids.get((ds, meta["video_id"]))
        if rel is None:
            skipped["video not in synth_truth.json"] += 1
        elif not valid_landmarks(meta.get("landmarks")):
            skipped["no landmarks"] += 1
        else:
            by_video[rel].append((meta, jpg))
    for rel in sorted(by_video):
        boxes = truth[rel].get("manipulated", [])
        crops = []
        for meta, jpg in by_video[rel]:
            i = int(meta["frame_index"])
            box = boxes[i] if 0 <= i < len(boxes) else None
            if box is None or _box_iou(meta["bbox"], box) < MATCH_IOU:
                skipped["not the manipulated face"] += 1
            else:
                crops.append((meta, jpg))
        if not crops:
            continue
        frames = _mask_frames(root / mask_path(rel), {int(m["frame_index"]) for m, _ in crops})
        for meta, jpg in crops:
            frame = frames.get(int(meta["frame_index"]))
            if frame is None:
                skipped["frame beyond the mask video"] += 1
                continue
            size = crop_image(jpg, meta["key"]).shape[0]
            bbox = tuple(float(v) for v in meta["bbox"])
            true = crop_face(frame[..., None], bbox, margin, size).reshape(size, size) >= 128
            if not true.any():
                skipped["mask empty in the crop"] += 1
                continue
            lms = crop_landmarks(bbox, meta["landmarks"], margin, size)
            regions = {
                "hull68": hull_mask(face_points(lms), size, size),
                "hull81": hull_mask(face_points(lms, cfg.forehead), size, size),
                "ellipse": ellipse_mask(box_in_crop(bbox, margin, size), size, size),
            }
            result.rows.append(
                {
                    "key": meta["key"],
                    "method": meta["method"],
                    "frame_index": int(meta["frame_index"]),
                    **{name: round(_iou(r > 0, true), 4) for name, r in regions.items()},
                }
            )
    result.skipped = dict(sorted(skipped.items()))
    return result


def summarise(rows: list[dict]) -> dict:
    """Per method and for all: crops, and the mean, median and 10th percentile of each region's IoU."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r["method"]].append(r)
        groups["all"].append(r)
    out = {}
    for name in sorted(groups, key=lambda g: (g == "all", g)):
        rs = groups[name]
        out[name] = {"crops": len(rs)}
        for region in REGIONS:
            v = np.array([r[region] for r in rs])
            out[name][region] = {
                "mean": round(float(v.mean()), 3),
                "median": round(float(np.median(v)), 3),
                "p10": round(float(np.percentile(v, 10)), 3),
            }
    return out


def format_summary(summary: dict) -> str:
    lines = ["| crops | region | mean | median | p10 |", "|---|---|---|---|---|"]
    for name, s in summary.items():
        for region in REGIONS:
            q = s[region]
            lines.append(
                f"| {name} ({s['crops']}) | {region} | {q['mean']:.3f} | {q['median']:.3f} | {q['p10']:.3f} |"
            )
    return "\n".join(lines)


app = typer.Typer(add_completion=False)


@app.command()
@handle_errors
def main(
    extract_dir: Path = typer.Argument(..., help="an extract output (its shards) of the sample"),
    dataset_root: Path = typer.Argument(..., help="the sample dataset (masks, synth_truth.json)"),
    margin: float = typer.Option(
        0.3, min=0, max=4, help="the crops' margin (params.yaml crop.margin)"
    ),
    json_out: Path | None = typer.Option(None, "--json", help="also write rows and summary here"),
) -> None:
    """IoU of the fitted 5-point face hull (and an ellipse baseline) with the true face region."""
    result = measure_hull_iou(extract_dir, dataset_root, margin=margin)
    if not result.rows:
        raise InputError(f"{extract_dir}: no face-swap crop of the manipulated face to measure")
    summary = result.summary()
    typer.echo(format_summary(summary))
    if result.skipped:
        typer.echo("left out: " + ", ".join(f"{k} {v}" for k, v in result.skipped.items()))
    if json_out is not None:
        write_json(
            json_out, {"summary": summary, "skipped": result.skipped, "rows": result.rows}, indent=1
        )


if __name__ == "__main__":
    app()
