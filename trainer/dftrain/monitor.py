"""What a run shows and records: its progress (a bar on a terminal, a line every few seconds in a
log: `dfprep.core.progress`) and dvclive metric files (`dvc plots` reads
`OUT/dvclive/plots/metrics/**.tsv`, `dvc metrics` reads `OUT/dvclive/metrics.json`). Rank 0 only.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any

from dfprep.core.progress import Reporter
from dftrain.plots import curves_figure

CURVES = "images/curves.png"  # under dvclive/plots/: the curves as an image (no network to view)


class Monitor:
    def __init__(
        self,
        out_dir: Path,
        *,
        total_steps: int,
        done_steps: int,
        params: dict[str, Any],
        summary: dict[str, float] | None = None,
        resume: bool,
        progress: bool | str,
        enabled: bool = True,
    ):
        self.enabled = enabled
        self.summary = dict(summary or {})  # constants of the run for metrics.json (effective lr)
        self.live = None
        self.bar: Reporter | None = None
        if not enabled:
            return
        from dvclive import Live  # imported here: only rank 0 writes logs

        metrics_dir = out_dir / "dvclive" / "plots" / "metrics"
        self.metrics_dir, self.curves = metrics_dir, out_dir / "dvclive" / "plots" / CURVES
        self._t0 = time.monotonic() - (previous_wall(out_dir) if resume else 0.0)
        if resume:
            truncate_after(metrics_dir, done_steps)
        self.live = Live(
            dir=str(out_dir / "dvclive"), resume=resume, save_dvc_exp=False, dvcyaml=None
        )
        if not resume:
            self.live.log_params(params)
        self.bar = Reporter(
            "train",
            "steps",
            mode=progress,
            detail=lambda f: (
                f"epoch {f['epoch']:.2f} · loss "
                + (f"{f['loss']:.4f}" if math.isfinite(f["loss"]) else "-")
                + f" · lr {f['lr']:.2e} · {f['ips']:.1f} img/s"
            ),
        )
        self.bar.start(total_steps - done_steps, epoch=0.0, loss=math.nan, lr=0.0, ips=0.0)

    def log(self, message: str) -> None:
        if self.enabled:
            self.bar.console.print(message, markup=False, soft_wrap=True, highlight=False)

    def step(
        self,
        step: int,
        epoch: float,
        values: dict[str, float] | None,
        lr: float,
        ips: float,
        record: bool,
    ) -> None:
        """Advance the bar; when `record`, append the training point (`values`) to the metric files."""
        if not self.enabled:
            return
        fields: dict[str, Any] = {"lr": lr, "ips": ips}
        if values is not None:
            fields["loss"] = values["loss"]
        self.bar.advance(1, epoch=epoch, **fields)
        if record and values is not None:
            self.live.step = step
            for k, v in values.items():
                self.live.log_metric(f"train/{k}", v)
            self.live.log_metric("train/lr", lr)
            self.live.log_metric("train/epoch", epoch)
            self.live.log_metric("train/img_per_s", ips)

    def epoch_end(
        self, step: int, epoch: int, val: dict[str, float], best: dict[str, float]
    ) -> None:
        if not self.enabled:
            return
        self.live.step = step
        self.live.log_metric("val/epoch", epoch)
        for k, v in val.items():
            self.live.log_metric(f"val/{k}", v)
        for k, v in {**self.summary, **{f"best/{k}": v for k, v in best.items()}}.items():
            self.live.summary[k] = v
        self.live.summary["time/wall_s"] = round(time.monotonic() - self._t0, 1)  # resumes add up
        self.live.make_summary()
        curves_figure(self.metrics_dir, self.curves, "training curves")
        self.log(
            f"epoch {epoch}: val loss {val['loss']:.4f} (CE {val['ce']:.4f}, triplet "
            f"{val['triplet']:.4f})  AUC {val['auc']:.4f}  acc {val['acc']:.4f}  "
            f"({int(val['n'])} frames)  best epoch {int(best['epoch'])}"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.live is not None:
            self.live.end()


def previous_wall(out_dir: Path) -> float:
    """The wall seconds an interrupted run had recorded (0 when none)."""
    try:
        return float(json.loads((out_dir / "dvclive" / "metrics.json").read_text())["time/wall_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def truncate_after(metrics_dir: Path, step: int) -> None:
    """Drop rows logged after `step` (an interrupted epoch) so resumed curves do not double back."""
    for tsv in metrics_dir.rglob("*.tsv"):
        with tsv.open(newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))
        if not rows or "step" not in rows[0]:
            continue
        i = rows[0].index("step")
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[i]) <= step]
        with tsv.open("w", newline="") as f:
            csv.writer(f, delimiter="\t", lineterminator="\n").writerows(kept)
