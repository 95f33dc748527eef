"""The plan of the dataset miniatures (`dfprep.synth.suite`): the clips to render and the text
files to write, and the identities, sizes and seeds handed out in order (same config, same plan)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace

import numpy as np

from dfprep.config import SynthConfig
from dfprep.synth.clip import Clip
from dfprep.synth.ffpp import parse_size
from dfprep.videoio import as_rate

POOL_START = {"train": 100, "val": 400, "test": 700}  # identity indices per split: disjoint


@dataclass
class Plan:
    """Everything to write: clips to render and small text files, per dataset."""

    cfg: SynthConfig
    clips: list[tuple[str, Clip]] = field(default_factory=list)  # (dataset, clip)
    files: dict[str, str] = field(default_factory=dict)  # "dataset/relpath" -> text
    copies: list[tuple[str, str]] = field(
        default_factory=list
    )  # ("dataset/src", "dataset/dst") after rendering
    archives: list[tuple[str, str]] = field(
        default_factory=list
    )  # ("dataset/dir", "dataset/x.tar.gz")
    records: list[dict] = field(
        default_factory=list
    )  # one per video: dataset, rel, label, split, kind, ident
    _next: dict[str, int] = field(default_factory=dict)
    _seed: int = 0
    _shape: int = 0

    def ident(self, split: str) -> int:
        n = self._next.get(split, 0)
        self._next[split] = n + 1
        return POOL_START[split] + n

    def shape(self) -> dict:
        """Size, rate and length of the next original (cycled through the config's lists)."""
        i, self._shape = self._shape, self._shape + 1
        c = self.cfg
        jitter = np.random.default_rng([c.seed, 2, i]).uniform(-0.1, 0.1)
        return {
            "size": parse_size(c.sizes[i % len(c.sizes)]),
            "fps": float(as_rate(c.rates[i % len(c.rates)])),
            "seconds": round(c.seconds * (1 + jitter), 3),
            "crf": c.crf,
            "preset": c.preset,
        }

    def scene(self) -> int:
        self._seed += 1
        return self.cfg.seed * 100_003 + self._seed

    def add(self, dataset: str, clip: Clip, label: int, split: str | None) -> Clip:
        self.clips.append((dataset, clip))
        self.records.append(
            {
                "dataset": dataset,
                "rel": clip.rel,
                "label": label,
                "split": split,
                "kind": clip.kind,
                "ident": clip.ident,
                "donor": clip.donor,
            }
        )
        return clip

    def real(self, dataset: str, rel: str, split: str | None, pool: str, **kw) -> Clip:
        clip = Clip(rel, self.ident(pool), self.scene(), **{**self.shape(), **kw})
        return self.add(dataset, clip, 0, split)

    def fake(
        self, dataset: str, rel: str, original: Clip, kind: str, donor: int, split: str | None, **kw
    ) -> Clip:
        clip = replace(
            original, rel=rel, kind=kind, donor=donor, drive_seed=donor * 7 + len(self.clips), **kw
        )
        return self.add(dataset, clip, 1, split)


def scaled(cfg: SynthConfig, base: int, least: int = 1) -> int:
    return max(least, round(base * cfg.originals / 10))


def csv_text(rows: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def random_name(rng: np.random.Generator) -> str:
    return "".join(chr(ord("a") + int(v)) for v in rng.integers(0, 26, 10))
