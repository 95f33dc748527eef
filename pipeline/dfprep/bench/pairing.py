"""`dfprep bench --case pairing`: the largest-face rule against manipulation-aware selection.

On the FF++-layout sample (`dfprep synth`, with its two-person scenes and `synth_truth.json`),
one run extracts the same manifest with `pair.select: off` (the largest face in every frame),
`auto` (the diff against the original, which every fake of the sample has), `mask` (FF++'s mask
videos alone) and `diff` with `pair.measure: ssim`, on one cluster, and reports: the share of
fake-labelled crops whose face was manipulated (from the ground truth), real crops of each run
(none may be lost), whether the single-person videos' crops are byte-identical (JPEG bytes) to
the largest-face run's, the extract time of each against it (target <= 1.3x) and the separation of
the absdiff and SSIM scores (manipulated vs untouched faces) at the threshold. Every video is put
in the train split (`all_train`): the test split is never paired.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dfprep.config import Params, replace
from dfprep.core.errors import InputError
from dfprep.core.system import available_cores

LARGEST = "largest face"  # the reference run: the largest face in every frame, no pairing
# (name, pair.select, pair.measure): the output folder is WORK/<select>-<measure>
RUNS = (
    (LARGEST, "off", "absdiff"),
    ("ours", "auto", "absdiff"),
    ("mask only", "mask", "absdiff"),
    ("ssim only", "diff", "ssim"),
)


@dataclass
class PairingBench:
    root: str
    videos: int
    fakes: int
    multi_person_fakes: int
    seconds: dict[str, float] = field(default_factory=dict)  # run -> extract wall seconds
    share: dict[str, float] = field(default_factory=dict)  # run -> manipulated share of fake crops
    share_multi: dict[str, float] = field(default_factory=dict)  # ...of multi-person fakes' crops
    fake_crops: dict[str, int] = field(default_factory=dict)
    real_crops: dict[str, int] = field(default_factory=dict)
    single_identical: dict[str, bool] = field(default_factory=dict)
    faces_dropped: dict[str, int] = field(default_factory=dict)
    fallbacks: dict[str, dict] = field(default_factory=dict)
    separation: dict[str, dict] = field(default_factory=dict)  # run -> score separation
    targets: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _index(out: Path) -> list[dict]:
    rows = []
    from dfprep.shards import find_shards

    for files in find_shards(out)[0]:
        rows += pq.read_table(files.index).to_pylist()
    return rows


def _dropped(out: Path) -> list[dict]:
    from dfprep.shards import read_dropped

    return read_dropped(out)[0].drop_columns(["jpg"]).to_pylist()


def _jpegs(out: Path, keys: set[str]) -> dict[str, bytes]:
    from dfprep.shards import iter_samples

    found = {}
    for tar in sorted((out / "shards").glob("*.tar")):
        with open(tar, "rb") as f:
            for key, members in iter_samples(f, str(tar)):
                if key in keys:
                    found[key] = members["jpg"]
    return found


def all_train(table: pa.Table) -> pa.Table:
    """Every video of a manifest in the train split: pairing selects the training crops (the test
    split is label-blind, never paired), so it is measured on all of the sample's videos."""
    i = table.schema.get_field_index("split")
    return table.set_column(i, "split", pa.array(["train"] * len(table), pa.string()))


def sample_root(work: Path, params: Params) -> Path:
    """The FF++-layout sample under WORK (made once, reused by later runs)."""
    from dfprep.synth import synth_ffpp

    root = work / "sample"
    if not (root / "synth_truth.json").exists():
        synth_ffpp(root, params.synth)
    return root


def pairing_root(paths: list[Path] | None) -> Path | None:
    """The case's one optional argument: the sample's root folder (None: generate it)."""
    if paths and (len(paths) != 1 or not Path(paths[0]).is_dir()):
        raise InputError("--case pairing: give at most one argument, the sample's root folder")
    return Path(paths[0]) if paths else None


def run_pairing_bench(
    root: Path | None = None, params: Params | None = None, *, work_dir: Path | None = None
) -> PairingBench:
    """Extract the sample once per run of RUNS on one cluster, then score the crops by its truth."""
    from dfprep.manifest import build_manifest, write_manifest
    from dfprep.synth.truth import is_multi_person, load_truth

    params = params or Params()
    work = Path(work_dir or tempfile.mkdtemp(prefix="dfprep-bench-pairing-"))
    work.mkdir(parents=True, exist_ok=True)
    root = Path(root) if root else sample_root(work, params)
    truth = by_video_id(load_truth(root))
    m = write_manifest(all_train(build_manifest("ffpp", root)), work / "ffpp.parquet")
    rows = pq.read_table(m).to_pylist()
    by_id = {r["video_id"]: r for r in rows}
    multi = {vid for vid in by_id if vid in truth and is_multi_person(truth[vid])}
    res = PairingBench(
        str(root),
        len(rows),
        sum(r["label"] == 1 for r in rows),
        sum(by_id[v]["label"] == 1 for v in multi),
    )
    outs = _extract_runs(m, len(rows), params, work, res)
    crops = {name: _index(out) for name, out in outs.items()}
    for name, idx in crops.items():
        fakes = [r for r in idx if r["label"] == 1]
        judged = [manipulated(truth, r) for r in fakes]
        res.fake_crops[name] = len(fakes)
        res.real_crops[name] = sum(r["label"] == 0 for r in idx)
        res.share[name] = round(sum(judged) / max(1, len(judged)), 4)
        mj = [j for r, j in zip(fakes, judged, strict=True) if r["video_id"] in multi]
        res.share_multi[name] = round(sum(mj) / max(1, len(mj)), 4)
    ref_single = {r["key"] for r in crops[LARGEST] if r["video_id"] not in multi}
    ref = _jpegs(outs[LARGEST], ref_single)
    for name in outs:
        if name != LARGEST:
            mine = {r["key"] for r in crops[name] if r["video_id"] not in multi}
            res.single_identical[name] = mine == ref_single and _jpegs(outs[name], mine) == ref
    # the scores of every face of the paired fakes (kept as crops, or dropped), by the truth
    for name in ("ours", "ssim only", "mask only"):
        thr = params.pair.mask_threshold if name == "mask only" else params.pair.threshold
        res.separation[name] = separation(crops[name], _dropped(outs[name]), truth, thr)
    for name in ("ours", "mask only"):
        _targets(res, name)
    res.notes.append(f"work folder: {work}; cores: {available_cores()}")
    return res


def _extract_runs(manifest: Path, videos: int, params: Params, work: Path, res) -> dict[str, Path]:
    """Each run of RUNS on one cluster (warmed up first); its seconds and pairing counts go to res."""
    from dfprep.bench.measure import warm_workers
    from dfprep.distribute import default_workers, make_client
    from dfprep.extract import run_extract, task_config

    outs = {}
    with make_client(params.run) as client:
        client.wait_for_workers(default_workers(params.run))
        warm_workers(client, work, task_config(params.extract, client, videos))
        for name, select, measure in RUNS:
            pair = replace(params.pair, select=select, measure=measure, max_dropped=1000)
            t0 = time.perf_counter()
            out = work / f"{select}-{measure}"
            s = run_extract([manifest], out, replace(params, pair=pair), client=client,
                            overwrite=True)  # fmt: skip
            res.seconds[name] = round(time.perf_counter() - t0, 2)
            res.faces_dropped[name] = s.faces_dropped
            res.fallbacks[name] = s.pairing_fallbacks
            outs[name] = out
    return outs


def _targets(res: PairingBench, name: str) -> None:
    ratio = res.seconds[name] / max(1e-9, res.seconds[LARGEST])
    lost = res.real_crops[LARGEST] - res.real_crops[name]
    res.targets[f"time {name} / {LARGEST}"] = {
        "measured": round(ratio, 3), "target": "<= 1.3", "met": ratio <= 1.3,
    }  # fmt: skip
    res.targets[f"manipulated share of fake crops, {name}"] = {
        "measured": res.share[name], "target": ">= 0.99", "met": res.share[name] >= 0.99,
    }  # fmt: skip
    res.targets[f"real crops lost, {name}"] = {"measured": lost, "target": "0", "met": lost <= 0}
    res.targets[f"single-person crops byte-identical, {name}"] = {
        "measured": res.single_identical[name], "target": "True",
        "met": res.single_identical[name],
    }  # fmt: skip


def separation(crops: list[dict], dropped: list[dict], truth, thr: float) -> dict:
    """How the scores of manipulated and untouched faces separate at the threshold."""
    faces = [r for r in crops if r["manip_score"] is not None] + dropped
    scored = [(f["manip_score"], manipulated(truth, f)) for f in faces]
    manip = sorted(s for s, j in scored if j)
    clean = sorted(s for s, j in scored if not j)
    if not manip or not clean:
        return {"manipulated faces": len(manip), "untouched faces": len(clean)}
    return {
        "manipulated faces": len(manip),
        "untouched faces": len(clean),
        "manipulated min": round(manip[0], 3),
        "manipulated 1st pct": round(manip[len(manip) // 100], 3),
        "untouched 99th pct": round(clean[min(len(clean) - 1, (99 * len(clean)) // 100)], 3),
        "untouched max": round(clean[-1], 3),
        "threshold": thr,
        "manipulated below threshold": sum(s < thr for s in manip),
        "untouched at or above threshold": sum(s >= thr for s in clean),
    }


def by_video_id(truth: dict) -> dict:
    """The truth's entries (keyed by relative path) keyed by the sample's video ids."""
    from dfprep.schema import make_video_id

    return {make_video_id("ffpp", rel): v for rel, v in truth.items()}


def manipulated(truth: dict, face: dict) -> bool:
    """Whether a crop or dropped face (video id, sample time, box) is the manipulated face."""
    from dfprep.synth.truth import crop_is_manipulated

    entry = truth.get(face["video_id"])
    if entry is None:
        return False
    return crop_is_manipulated(entry, int(face["frame_index"]), face["bbox"])
