"""The dataset catalogue (dfprep/catalogue.yaml): adapter, role, methods and label classes.

It is data, not code, so that what each dataset means to the project can be reviewed in one file,
and adding an in-house collection is one more entry. The trainer's attribution classes come from its
`attribution.datasets` order, checked here against `dfprep.schema.class_names`. The file ships
inside the package, so a wheel install finds it; manifests/catalogue.yaml is a link to it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from rich.markup import escape
from rich.table import Table

from dfprep.core.config import load_yaml
from dfprep.core.errors import ConfigError
from dfprep.schema import FACES, LABEL_NAMES, SPLITS, class_names

DEFAULT_PATH = Path(__file__).resolve().with_name("catalogue.yaml")  # package data
ROLES = ("train", "ood", "wild")
METHOD_CATEGORIES = ("FS", "RE", "unknown")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_ENTRY_KEYS = {
    "title",
    "adapter",
    "role",
    "labels",
    "splits",
    "derived",
    "options",
    "methods",
    "methods_note",
    "out_of_scope",
    "faces",
    "expected",
    "samples",
}
CLASSES = tuple(LABEL_NAMES.values())  # real, fake
# Cells of an expected count: total, a split, a class, or split.class (e.g. train.real).
COUNT_CELLS = ("total", *SPLITS, *CLASSES, *(f"{s}.{c}" for s in SPLITS for c in CLASSES))
_REQUIRED = ("title", "adapter", "role")


@dataclass(frozen=True)
class Expected:
    """Videos a complete copy must give, from one source (Table 1, a publisher's totals...)."""

    source: str
    counts: Mapping[str, int]  # cell (COUNT_CELLS) -> videos


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    title: str
    adapter: str
    role: str  # train | ood | wild
    labels: str = ""  # where the labels come from
    splits: str = ""  # where the splits come from
    derived: tuple[str, ...] = ()  # splits the adapter derives (no official one)
    options: Mapping[str, Any] = field(
        default_factory=dict
    )  # adapter options for the paper's protocol
    methods: Mapping[str, str] = field(default_factory=dict)  # method -> FS | RE | unknown
    methods_note: str = ""
    out_of_scope: Mapping[str, tuple[str, ...]] = field(
        default_factory=dict
    )  # family -> method folders
    faces: str = (
        "detect"  # detect | shipped: the images are the publisher's face crops (no detection)
    )
    expected: tuple[Expected, ...] = ()  # video counts of a complete copy (the count check)
    samples: Mapping[str, int] = field(default_factory=dict)  # Table 1's training crops per class


@dataclass(frozen=True)
class Catalogue:
    path: Path
    datasets: Mapping[str, DatasetEntry]  # in file order
    attribution: tuple[str, ...]  # training datasets in class order (class 0 is real)

    def get(self, name: str) -> DatasetEntry | None:
        return self.datasets.get(name)

    def entry(self, name: str) -> DatasetEntry:
        if name not in self.datasets:
            raise ConfigError(
                f"{self.path}: no dataset {name!r} (known: {', '.join(self.datasets)})"
            )
        return self.datasets[name]

    def names(self, role: str | None = None) -> list[str]:
        return [n for n, e in self.datasets.items() if role is None or e.role == role]

    def train_datasets(self) -> tuple[str, ...]:
        return self.attribution

    def attribution_classes(self, mode: str) -> list[str]:
        return class_names(mode, self.attribution)

    def options_for(self, name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Adapter options: the catalogue's (if the dataset is catalogued), then the overrides."""
        base = dict(self.datasets[name].options) if name in self.datasets else {}
        base.update(overrides or {})
        return base


def _lines(text: str) -> dict[str, int]:
    """Line of each dataset entry, for error messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(root, yaml.MappingNode):
        return {}
    for k, v in root.value:
        if k.value == "datasets" and isinstance(v, yaml.MappingNode):
            return {dk.value: dk.start_mark.line + 1 for dk, _ in v.value}
    return {}


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of names, got {value!r}")
    return tuple(value)


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: expected a count (integer >= 0), got {value!r}")
    return value


def _expected(raw: Any, where: str) -> tuple[Expected, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list of {{source: ..., <cell>: count}} mappings")
    out = []
    for i, item in enumerate(raw):
        w = f"{where}[{i}]"
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("source"), str)
            or not item["source"]
        ):
            raise ConfigError(f"{w}: needs a `source` (where the figures come from) and counts")
        bad = sorted(set(item) - {"source", *COUNT_CELLS})
        if bad:
            raise ConfigError(f"{w}: unknown cell {bad[0]!r} (use {', '.join(COUNT_CELLS)})")
        counts = {c: _count(item[c], f"{w}.{c}") for c in COUNT_CELLS if c in item}
        if not counts:
            raise ConfigError(f"{w}: no counts")
        out.append(Expected(item["source"], MappingProxyType(counts)))
    return tuple(out)


def _entry(name: str, raw: Any, where: str) -> DatasetEntry:
    from dfprep.adapters import ADAPTERS

    if not _NAME.match(str(name)):
        raise ConfigError(f"{where}: dataset name {name!r} may hold only letters, digits, _ and -")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of {', '.join(sorted(_ENTRY_KEYS))}")
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    missing = [k for k in _REQUIRED if not raw.get(k)]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    if raw["role"] not in ROLES:
        raise ConfigError(f"{where}: role {raw['role']!r} is not one of {', '.join(ROLES)}")
    if raw["adapter"] not in ADAPTERS:
        raise ConfigError(
            f"{where}: unknown adapter {raw['adapter']!r} (known: {', '.join(sorted(ADAPTERS))})"
        )
    derived = _str_list(raw.get("derived") or [], f"{where}: derived")
    bad = [s for s in derived if s not in SPLITS]
    if bad:
        raise ConfigError(f"{where}: derived split {bad[0]!r} is not one of {', '.join(SPLITS)}")
    options = raw.get("options") or {}
    if not isinstance(options, dict) or not all(
        isinstance(v, (str, int, float, bool)) for v in options.values()
    ):
        raise ConfigError(f"{where}: options must map names to plain values")
    methods = raw.get("methods") or {}
    if not isinstance(methods, dict):
        raise ConfigError(
            f"{where}: methods must map a method name to {', '.join(METHOD_CATEGORIES)}"
        )
    for m, cat in methods.items():
        if cat not in METHOD_CATEGORIES:
            raise ConfigError(
                f"{where}: method {m!r} has category {cat!r} (use {', '.join(METHOD_CATEGORIES)})"
            )
    oos = raw.get("out_of_scope") or {}
    if not isinstance(oos, dict):
        raise ConfigError(f"{where}: out_of_scope must map a family to a list of method folders")
    faces = raw.get("faces", "detect")
    if faces not in FACES:
        raise ConfigError(f"{where}: faces {faces!r} is not one of {', '.join(FACES)}")
    samples = raw.get("samples") or {}
    if not isinstance(samples, dict) or set(samples) - set(CLASSES):
        raise ConfigError(f"{where}: samples must map real / fake to Table 1's training crops")
    return DatasetEntry(
        name=str(name),
        title=str(raw["title"]),
        adapter=raw["adapter"],
        role=raw["role"],
        labels=str(raw.get("labels") or ""),
        splits=str(raw.get("splits") or ""),
        derived=derived,
        options=MappingProxyType(dict(options)),
        methods=MappingProxyType({str(k): v for k, v in methods.items()}),
        methods_note=str(raw.get("methods_note") or ""),
        out_of_scope=MappingProxyType(
            {str(k): _str_list(v, f"{where}: out_of_scope.{k}") for k, v in oos.items()}
        ),
        faces=faces,
        expected=_expected(raw.get("expected") or [], f"{where}: expected"),
        samples=MappingProxyType(
            {c: _count(samples[c], f"{where}: samples.{c}") for c in CLASSES if c in samples}
        ),
    )


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and check the catalogue (default: the one shipped with dfprep, DEFAULT_PATH)."""
    p = Path(path) if path is not None else DEFAULT_PATH
    if not p.is_file():
        raise ConfigError(f"dataset catalogue not found: {p}")
    text = p.read_text(encoding="utf-8")
    data = load_yaml(text, p) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping with attribution and datasets")
    unknown = sorted(set(data) - {"attribution", "datasets"})
    if unknown:
        raise ConfigError(f"{p}: unknown top-level key(s) {', '.join(unknown)}")
    raw_sets = data.get("datasets")
    if not isinstance(raw_sets, dict) or not raw_sets:
        raise ConfigError(f"{p}: `datasets` must be a non-empty mapping")
    lines = _lines(text)
    entries = {
        str(n): _entry(n, raw, f"{p}:{lines.get(str(n), '?')}: dataset {n}")
        for n, raw in raw_sets.items()
    }
    att = data.get("attribution") or {}
    if not isinstance(att, dict) or set(att) != {"datasets"}:
        raise ConfigError(
            f"{p}: attribution must hold exactly `datasets: [<training datasets in class order>]`"
        )
    order = _str_list(att["datasets"], f"{p}: attribution.datasets")
    if len(set(order)) != len(order):
        raise ConfigError(f"{p}: attribution.datasets lists a dataset twice: {list(order)}")
    for n in order:
        if n not in entries or entries[n].role != "train":
            raise ConfigError(
                f"{p}: attribution.datasets names {n!r}, which is not a dataset with role train"
            )
    left = [n for n, e in entries.items() if e.role == "train" and n not in order]
    if left:
        raise ConfigError(
            f"{p}: training dataset {left[0]!r} has no attribution class (add it to attribution.datasets)"
        )
    return Catalogue(path=p, datasets=MappingProxyType(entries), attribution=order)


def train_datasets(cat: Catalogue | None = None) -> tuple[str, ...]:
    """Training datasets in attribution-class order (class i + 1 is the i-th)."""
    return (cat or load_catalogue()).train_datasets()


def attribution_classes(mode: str, cat: Catalogue | None = None) -> list[str]:
    """Class index -> name for a label mode (binary, category, dataset), from the catalogue's order."""
    return (cat or load_catalogue()).attribution_classes(mode)


def _methods_cell(e: DatasetEntry) -> str:
    parts = []
    for cat in METHOD_CATEGORIES:
        ms = [m for m, c in e.methods.items() if c == cat]
        if ms:
            parts.append(f"{cat}: {', '.join(ms)}")
    if e.methods_note:
        parts.append(e.methods_note)
    for family, ms in e.out_of_scope.items():
        parts.append(f"out of scope ({family}): {len(ms)} image-only")
    return "\n".join(parts)


def catalogue_table(cat: Catalogue | None = None) -> Table:
    """`dfprep datasets`: one row per dataset with its role, class, methods, labels and splits."""
    cat = cat or load_catalogue()
    t = Table(title=f"Dataset catalogue ({escape(cat.path.name)})", show_lines=True)
    for col in ("dataset", "role", "class", "adapter", "methods (category)", "labels", "splits"):
        t.add_column(col, overflow="fold")
    for n, e in cat.datasets.items():
        cls = str(1 + cat.attribution.index(n)) if n in cat.attribution else "-"
        splits = e.splits + (f"\nderived: {', '.join(e.derived)}" if e.derived else "")
        adapter = e.adapter + ("\nfaces: shipped" if e.faces == "shipped" else "")
        cells = (f"{n}\n{e.title}", e.role, cls, adapter, _methods_cell(e), e.labels, splits)
        t.add_row(*map(escape, cells))  # a catalogue's text, printed as it is
    return t
