"""dftrain command line: a thin typer layer over the library."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from dfprep.core.atomic import write_text
from dfprep.core.cli import add_version, handle_errors, stdout
from dfprep.core.errors import DfprepError
from dfprep.core.outputs import output_figure, output_file
from dfprep.core.progress import PROGRESS_HELP
from dfprep.core.system import available_cores
from dftrain import __version__

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
add_version(
    app,
    "dftrain",
    __version__,
    "Train and evaluate deepfake detectors on dfprep shards (FSFM ViT-B/16 + triplet losses).",
)


@app.command()
@handle_errors
def run(
    data: Path = typer.Argument(
        ...,
        help="Balanced shards from `dfprep balance`: DIR/train/*.tar, DIR/val/*.tar, DIR/sizes.json.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run directory: checkpoints/{best,last}, dvclive/."
    ),
    params: Path | None = typer.Option(
        None, "--params", "-p", help="params.yaml whose `train:` section sets the defaults."
    ),
    labels: str | None = typer.Option(
        None, "--labels", help="binary | category | dataset (train.labels.mode)"
    ),
    triplet: str | None = typer.Option(
        None, "--triplet", help="none | batch_all | hard | easy_positive (train.loss.triplet)"
    ),
    init: str | None = typer.Option(
        None,
        "--init",
        help="fsfm:PATH/checkpoint-400.pth | timm:PATH | none (train.model.init; required for the paper's ViT-B)",
    ),
    shuffle_labels: bool | None = typer.Option(
        None,
        "--shuffle-labels/--true-labels",
        help="control run: a random class per video (train.labels.shuffle)",
    ),
    sbi: bool | None = typer.Option(
        None,
        "--sbi/--no-sbi",
        help="SBI: train on DATA's real crops and their self-blended pseudo-fakes (train.sbi.enabled)",
    ),
    settings: list[str] | None = typer.Option(
        None,
        "--set",
        help="KEY=VALUE: any train parameter, e.g. --set optim.sam_rho=0.05 (repeatable; before the options above)",
    ),
    model: str | None = typer.Option(None, "--model", help="timm ViT name (train.model.name)"),
    img_size: int | None = typer.Option(None, "--img-size", help="(train.model.img_size)"),
    epochs: int | None = typer.Option(None, "--epochs", help="(train.optim.epochs)"),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="per process (train.optim.batch_size)"
    ),
    blr: float | None = typer.Option(
        None, "--blr", help="basic lr: peak lr = blr x global batch / 256 (train.optim.blr)"
    ),
    lr: float | None = typer.Option(
        None, "--lr", help="absolute peak lr, overrides --blr (train.optim.lr; 0 = unset)"
    ),
    warmup_epochs: float | None = typer.Option(
        None, "--warmup-epochs", help="(train.optim.warmup_epochs)"
    ),
    workers: int | None = typer.Option(
        None, "--workers", help="loader workers per process, -1 = auto (train.data.workers)"
    ),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda (train.device)"),
    seed: int | None = typer.Option(None, "--seed", help="(train.seed)"),
    compile_: bool | None = typer.Option(
        None, "--compile/--no-compile", help="torch.compile the model (train.compile)"
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue OUT's run from checkpoints/last (same parameters)."
    ),
    stop_after: int = typer.Option(
        0, "--stop-after", help="Return after this many epochs in this call (0 = run to the end)."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=PROGRESS_HELP),
) -> None:
    """Fine-tune a ViT detector with CE + triplet loss (multi-GPU: `torchrun --nproc_per_node=N --no-python dftrain run ...`)."""
    from dftrain.config import load_train_params, parse_settings, with_overrides

    if stop_after < 0:
        raise DfprepError(f"--stop-after: {stop_after} is not >= 0 (0 = run to the end)")
    cfg = with_overrides(load_train_params(params), **parse_settings(settings))
    cfg = with_overrides(
        cfg,
        **{
            "sbi.enabled": sbi, "labels.mode": labels, "loss.triplet": triplet, "model.init": init, "model.name": model, "labels.shuffle": shuffle_labels,
            "model.img_size": img_size, "optim.epochs": epochs, "optim.batch_size": batch_size,
            "optim.blr": blr, "optim.lr": lr, "optim.warmup_epochs": warmup_epochs, "data.workers": workers, "device": device, "seed": seed,
            "compile": compile_,
        },
    )  # fmt: skip
    from dftrain.train import run as run_training  # torch: imported once the options are known good

    result = run_training(
        data,
        out,
        cfg,
        resume=resume,
        progress=progress,
        stop_after=stop_after,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"best epoch {result.best_epoch}: val loss {result.best_val_loss:.4f} -> {out / 'checkpoints' / 'best'}"
        )


@app.command()
@handle_errors
def bench(
    data: Path | None = typer.Argument(
        None, help="Balanced shard directory; omitted = synthetic 224px shards."
    ),
    params: Path | None = typer.Option(
        None, "--params", "-p", help="params.yaml (`train:` section)."
    ),
    workers: str | None = typer.Option(
        None,
        "--workers",
        help="Comma list of loader worker counts; auto = cores - 1 (default: 1,auto).",
    ),
    batches: int | None = typer.Option(
        None, "--batches", help="Batches timed per loader measurement (default: 20)."
    ),
    batch: int | None = typer.Option(
        None, "--batch", help="Batch size, loader and model (train.optim.batch_size)."
    ),
    model: str | None = typer.Option(
        None, "--model", help="timm ViT for the model benchmark (train.model.name)."
    ),
    img_size: int | None = typer.Option(None, "--img-size", help="(train.model.img_size)"),
    steps: int | None = typer.Option(
        None, "--steps", help="Timed training steps per model measurement (default: 20)."
    ),
    cpu_model: bool | None = typer.Option(
        None, "--cpu-model", help="Also time the model on the CPU when there is no GPU."
    ),
) -> None:
    """Input-pipeline samples/s, and training img/s vs a bare timm loop (on the GPU, bf16)."""
    from dfprep.core.cli import comma_list
    from dfprep.core.config import override
    from dftrain.bench.config import AUTO_WORKERS, BenchConfig
    from dftrain.config import load_train_params, with_overrides

    bcfg = override(BenchConfig(), {
        "workers": comma_list(workers, {"auto": AUTO_WORKERS}), "batches": batches,
        "steps": steps, "cpu_model": cpu_model,
    })  # fmt: skip
    cfg = with_overrides(
        load_train_params(params),
        **{"optim.batch_size": batch, "model.name": model, "model.img_size": img_size},
    )
    import torch

    from dftrain.bench.train import bench_loader, bench_model, data_or_synthetic
    from dftrain.data import default_workers

    cores = available_cores()
    counts = [max(1, cores - 1) if w == AUTO_WORKERS else w for w in bcfg.workers]
    batch = cfg.optim.batch_size
    with data_or_synthetic(data) as d:
        for w in counts:
            r = bench_loader(d, cfg, w, bcfg.batches)
            print(
                f"loader  workers={w:<3d} {r['samples_per_s']:8.1f} samples/s  ({r['per_worker']:.1f} per worker; "
                f"{int(r['samples'])} samples in {r['seconds']:.1f} s; {cores} cores; default workers here: "
                f"{default_workers(1, 10**6)})"
            )
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        name = torch.cuda.get_device_name(dev)
    elif bcfg.cpu_model:
        dev, name = torch.device("cpu"), "CPU (no GPU)"
    else:
        print("model   no GPU: training throughput not measured (pass --cpu-model for CPU figures)")
        return
    r = bench_model(cfg, batch, bcfg.steps, max(2, bcfg.steps // 5), dev)
    prec = "bf16" if dev.type == "cuda" and cfg.amp != "off" else "fp32"
    print(
        f"model   {cfg.model.name} @{cfg.model.img_size} batch {batch} {prec} on {name}: ours {r['ours_img_per_s']:.1f} img/s, "
        f"bare timm {r['bare_img_per_s']:.1f} img/s, ratio {r['ratio']:.3f}"
    )


@app.command("gpu-bench")
@handle_errors
def gpu_bench(
    out: Path = typer.Option(
        ..., "--out", "-o", help="Write OUT/bench.json and OUT/bench.md here."
    ),
    tiny: bool | None = typer.Option(
        None, "--tiny", help="Tiny sizes: a CPU smoke test in seconds, not a result."
    ),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda (default: auto)."),
    work: Path | None = typer.Option(
        None, "--work", help="Scratch folder on local disk (default: a temporary one)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Balanced shard directory (default: synthetic 224 px shards)."
    ),
    params: Path | None = typer.Option(
        None, "--params", "-p", help="params.yaml (`train:` section)."
    ),
) -> None:
    """Every GPU measurement in one run (model, compile, loader, run, eval, predict) at fixed sizes."""
    from dfprep.core.config import override
    from dfprep.core.errors import InputError
    from dfprep.core.outputs import output_dir
    from dftrain.bench.config import GpuBenchConfig
    from dftrain.config import load_train_params

    gcfg = override(GpuBenchConfig(), {"device": device, "tiny": tiny})
    output_dir(out)
    if work is not None:
        output_dir(work, "--work")
    if data is not None and not (data / "sizes.json").is_file():
        raise InputError(f"--data {data}: no sizes.json (not the output of `dfprep balance`)")
    base = load_train_params(params)
    from dftrain.bench.report import print_tables, write_json, write_outputs
    from dftrain.bench.suite import Sizes, run_suite
    from dftrain.inference import pick_device

    dev = pick_device(gcfg.device, "gpu_bench.device")
    if dev.type != "cuda" and not gcfg.tiny:
        print("gpu-bench: no GPU: the full-size suite on a CPU takes hours; pass --tiny for a smoke test",
              file=sys.stderr)  # fmt: skip
    result = run_suite(
        Sizes.tiny_sizes() if gcfg.tiny else Sizes(), dev, base, data, work,
        log=lambda m: print(m, file=sys.stderr), on_update=lambda r: write_json(r, out),
    )  # fmt: skip
    print_tables(result)
    j, m = write_outputs(result, out)
    print(f"wrote {j} and {m}")
    if result["errors"]:
        print(f"error: {len(result['errors'])} measurement(s) failed: "
              f"{', '.join(result['errors'])}", file=sys.stderr)  # fmt: skip
        raise typer.Exit(1)


@app.command("eval")
@handle_errors
def eval_(
    checkpoint: Path = typer.Argument(
        ...,
        help="Checkpoint directory (runs/X/checkpoints/best) or a run directory (uses its best).",
    ),
    data: list[str] = typer.Option(
        ...,
        "--data",
        "-d",
        help="NAME=EXTRACT_DIR: the videos of dataset NAME in a `dfprep extract` output (DIR alone: all its datasets). Repeatable.",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Output directory: metrics.json, table.md, predictions.parquet, plots/.",
    ),
    params: Path | None = typer.Option(
        None, "--params", "-p", help="params.yaml whose `eval:` section sets the defaults."
    ),
    split: str | None = typer.Option(None, "--split", help="(eval.split)"),
    threshold: float | None = typer.Option(None, "--threshold", help="(eval.threshold)"),
    no_face: str | None = typer.Option(
        None, "--no-face", help="drop | score: a test video with no face crop (eval.no_face)"
    ),
    no_face_score: float | None = typer.Option(
        None, "--no-face-score", help="its score under --no-face score (eval.no_face_score)"
    ),
    aggregate: str | None = typer.Option(
        None,
        "--aggregate",
        help="a video's score: mean (all faces, the paper) | frame_max (SBI's) | auto (eval.aggregate)",
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", help="(eval.batch_size)"),
    workers: int | None = typer.Option(None, "--workers", help="-1 = auto (eval.workers)"),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda (eval.device)"),
    name: str | None = typer.Option(
        None, "--name", help="Row name in the table (default: the run's)."
    ),
    catalogue: Path | None = typer.Option(
        None,
        "--catalogue",
        help="Dataset catalogue for the scenarios (default: the one shipped with dfprep).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=PROGRESS_HELP),
) -> None:
    """Video-level AUC / bACC per dataset, method and scenario (the paper's Table 3), frame AUC / EER."""
    from dftrain.config import load_eval_params
    from dftrain.evaluate import evaluate

    cfg = load_eval_params(
        params, split=split, threshold=threshold, no_face=no_face, no_face_score=no_face_score,
        batch_size=batch_size, workers=workers, device=device, aggregate=aggregate,
    )  # fmt: skip
    result = evaluate(
        checkpoint, data, out, cfg, name=name, catalogue_path=catalogue,
        progress=progress,
    )  # fmt: skip
    print(
        f"{result.videos} test videos, {result.crops} crops scored in {result.seconds:.1f} s "
        f"on {result.info['device']} -> {out}",
        file=sys.stderr,
    )
    print(result.table)


@app.command("sbi-sheet")
@handle_errors
def sbi_sheet(
    data: Path = typer.Argument(
        ..., help="A `dfprep balance` or `dfprep extract` output (or a folder of its shards)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Write OUT/sbi-sheet.png and OUT/report.md."),
    params: Path | None = typer.Option(
        None, "--params", "-p", help="params.yaml whose `train.sbi` section sets the pseudo-fakes."
    ),
    faces: int = typer.Option(12, "--faces", min=1, max=256, help="Real crops to draw."),
    margin: str | None = typer.Option(
        None,
        "--margin",
        help="The crops' margin: auto (as DATA records it) or a number (train.sbi.margin).",
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Which crops, and their draws."),
) -> None:
    """Draw SBI pseudo-fakes of random real crops: rows of (real, mask, fake), as `dfprep report` draws crops."""
    from dfprep.core.outputs import output_dir
    from dftrain.config import load_train_params, parse_settings, with_overrides
    from dftrain.sbi.data import crop_margin
    from dftrain.sbi.sheet import sheet_report

    settings = parse_settings([f"sbi.margin={margin}"] if margin is not None else [])
    cfg = with_overrides(load_train_params(params), **settings)
    output_dir(out)
    png = sheet_report(
        data, out, crop_margin(data, cfg.sbi.margin), cfg.sbi, faces=faces, seed=seed
    )
    print(png)


@app.command()
@handle_errors
def compare(
    dirs: list[Path] = typer.Argument(..., help="`dftrain eval` output directories, one row each."),
    names: str | None = typer.Option(
        None, "--names", help="Comma list of row names (default: the runs' own)."
    ),
    metric: str = typer.Option(
        "auc,bacc", "--metric", help="Comma list of auc, bacc: one table each."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Also write the Markdown to this file."
    ),
    paper: bool = typer.Option(
        False,
        "--paper",
        help="The paper's Table 3 rows and columns, each cell `ours (paper)`, with notes.",
    ),
    figure: Path | None = typer.Option(
        None,
        "--figure",
        help="Also draw per-scenario bars (ours vs the paper's) into this file (.png, .pdf, .svg...).",
    ),
) -> None:
    """Several evaluated runs side by side in one Table 3 (Markdown on stdout)."""
    from dftrain.compare import compare as compare_runs

    metrics = tuple(m.strip() for m in metric.split(",") if m.strip())
    bad = [m for m in metrics if m not in ("auc", "bacc")]
    if bad or not metrics:
        raise DfprepError(f"--metric: {bad[0] if bad else metric!r} is not auc or bacc")
    if out is not None:
        output_file(out, "--out")
    if figure is not None:
        output_figure(figure, "--figure")
    text = compare_runs(
        dirs,
        [n.strip() for n in names.split(",")] if names else None,
        metrics,
        paper=paper,
        figure=figure,
    )
    if out is not None:
        write_text(out, text)
    print(text)


@app.command()
@handle_errors
def summary(
    dirs: list[Path] = typer.Argument(..., help="`dftrain eval` output directories."),
    out: Path = typer.Option(..., "--out", "-o", help="The summary JSON (DVC metrics) to write."),
    keyed: bool = typer.Option(
        False, "--keyed", help="One entry per directory name, even for a single directory."
    ),
) -> None:
    """The numbers to compare runs by: video AUC / bACC per scenario, val loss, epochs, wall time
    (one eval directory: flat; several, or --keyed: one entry per directory name)."""
    import json

    from dftrain.summary import summarise

    output_file(out, "--out")
    data = summarise(dirs, keyed)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")


@app.command()
@handle_errors
def predict(
    checkpoint: Path = typer.Argument(
        ..., help="Checkpoint directory, or a run directory (its best)."
    ),
    paths: list[Path] = typer.Argument(
        ..., help="Video files and/or folders (searched recursively)."
    ),
    params: Path | None = typer.Option(
        None,
        "--params",
        "-p",
        help="params.yaml: decode/detect/crop as for `dfprep extract`, and the `eval:` section.",
    ),
    threshold: float | None = typer.Option(None, "--threshold", help="(eval.threshold)"),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda (eval.device)"),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON (per video and per crop) instead of the table."
    ),
    timeline: Path | None = typer.Option(
        None, "--timeline", help="Write a figure of the per-second scores (.png, .pdf, .svg...)."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=PROGRESS_HELP),
) -> None:
    """Score raw videos: 1-FPS decoding, extract's detector and crops, the model, mean P(fake).

    Folders are searched recursively, leaving out the publishers' mask folders (FF++'s and DFD's
    masks/videos). Exit status 1 when a video could not be read or had no face (it says so)."""
    from dfprep.config import load_params
    from dfprep.core.cli import console
    from dfprep.core.progress import Reporter
    from dftrain.config import load_eval_params
    from dftrain.plots import timeline_figure
    from dftrain.predict import find_videos, results_table, to_json
    from dftrain.predict import predict as predict_videos

    cfg = load_eval_params(params, threshold=threshold, device=device)
    prep = load_params(params)
    if timeline is not None:
        output_figure(timeline, "--timeline")
    skipped: list[Path] = []
    videos = find_videos(paths, skipped)
    if skipped:
        folders = sorted({str(p.parent) for p in skipped})
        console.print(
            f"skipped {len(skipped)} mask video(s) in {len(folders)} mask folder(s) "
            f"(not videos to score), e.g. {folders[0]}", markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    with Reporter("predict", "videos", mode=progress, transient=True) as bar:
        bar.start(len(videos))
        preds = predict_videos(
            videos,
            checkpoint,
            prep,
            cfg,
            on_video=lambda _: bar.advance(),
            on_notice=lambda line: print(f"detect: {line}", file=sys.stderr),
        )
    if timeline is not None:
        series = [(Path(p.path).name, p.times, p.scores) for p in preds if p.scored]
        timeline_figure(series, timeline, cfg.threshold)
    if as_json:
        print(to_json(preds, cfg.threshold))
    else:
        stdout.print(results_table(preds, cfg.threshold))
    if not all(p.scored for p in preds):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
