"""What a run shows and records: a rich progress bar and dvclive metric files (`dvc plots` reads
`OUT/dvclive/plots/metrics/**.tsv`, `dvc metrics` reads `OUT/dvclive/metrics.json`). Rank 0 only.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


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
        progress: bool,
        enabled: bool = True,
    ):
        self.enabled = enabled
        self.summary = dict(summary or {})  # constants of the run for metrics.json (effective lr)
        self.console = Console(stderr=True)
        self.live = None
        self.bar: Progress | None = None
        if not enabled:
            return
        from dvclive import Live  # imported here: only rank 0 writes logs

        metrics_dir = out_dir / "dvclive" / "plots" / "metrics"
        if resume:
            truncate_after(metrics_dir, done_steps)
        self.live = Live(
            dir=str(out_dir / "dvclive"), resume=resume, save_dvc_exp=False, dvcyaml=None
        )
        if not resume:
            self.live.log_params(params)
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  {task.fields[ips]:.1f} img/s"
            ),
            TimeRemainingColumn(),
            console=self.console,
            disable=not progress,
        )
        self.bar.start()
        self.task = self.bar.add_task(
            "train", total=total_steps, completed=done_steps, loss=math.nan, lr=0.0, ips=0.0
        )

    def log(self, message: str) -> None:
        if self.enabled:
            self.console.print(escape(message), soft_wrap=True, highlight=False)

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
        self.bar.update(self.task, advance=1, description=f"epoch {epoch:.2f}", **fields)
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
        self.live.make_summary()
        self.log(
            f"epoch {epoch}: val loss {val['loss']:.4f} (CE {val['ce']:.4f}, triplet "
            f"{val['triplet']:.4f})  AUC {val['auc']:.4f}  acc {val['acc']:.4f}  "
            f"({int(val['n'])} frames)  best epoch {int(best['epoch'])}"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        if self.live is not None:
            self.live.end()


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
