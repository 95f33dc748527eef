"""Parameters: the one loader and validator that dfprep and dftrain share.

Every tunable is a field of a frozen dataclass (`dfprep.config`, `dftrain.config`) that carries
its rule: `fps: float = param(1.0, Float(0, 240, lo_open=True))`. A section's dataclass derives
from `Checked`, so an instance is validated whenever it is made: by `load` from a params.yaml, by
`override` from command-line options, by `dataclasses.replace` or directly in code. A bad value
is a `ConfigError` with one line naming the dotted key and what is allowed, e.g.
`params.yaml: eval.threshold: nan is not in [0, 1]`; an invalid config object cannot exist.

- `param(default, rule)`: a field with its rule (`Int`, `Float`, `Bool`, `Choice`, `Text`,
  `Seq`, `Caps`, `OrAuto`). Nested sections need no rule; a section-wide check (one value against another)
  is the dataclass's `cross_check()` method.
- `read_params(path)`: the YAML file as a mapping (the one place a params file is read): a regular
  file, its YAML bounded (`load_yaml`), its top-level sections known (`SECTIONS`);
  `read_value(text)`: one value given on a command line, read as YAML would read it in the file.
- `build(cls, mapping)`: strict: unknown keys are an error.
- `load(path, cls, section)`: `cls` from one section of a params file (the root when None).
- `override(cfg, {"dotted.key": value})`: replace values (None = unset, ignored), validated.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import itertools
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import MISSING, field, fields
from pathlib import Path
from typing import Any

import yaml

from dfprep.core.errors import ConfigError, first_line
from dfprep.core.files import NotRegular, open_regular

__all__ = [
    "SECTIONS",
    "Bool",
    "Caps",
    "Checked",
    "Choice",
    "Float",
    "Int",
    "OrAuto",
    "Rule",
    "Seq",
    "Text",
    "build",
    "load",
    "load_yaml",
    "override",
    "param",
    "read_params",
    "read_value",
    "reject",
    "rule_of",
    "section_fields",
    "validate",
]

RULE = "rule"  # the field-metadata key of a field's rule

SEED_MAX = 2**32 - 1  # numpy, torch and Python's random all take seeds in [0, 2**32)


class Reject(Exception):
    """A rule's refusal; `validate` adds the dotted key."""


def show(v: Any) -> str:
    """A value as the error message quotes it."""
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, float):
        s = repr(v)
        return f"{v:g}" if len(s) > 12 else s
    if isinstance(v, (list, tuple, dict)) or v is None:
        return repr(v)
    return str(v)


class Rule:
    """Checks (and normalises) one value; raises Reject(message) for a bad one."""

    def __call__(self, v: Any) -> Any:
        raise NotImplementedError

    @property
    def allowed(self) -> str:
        return ""


@dataclasses.dataclass(frozen=True)
class Int(Rule):
    lo: int
    hi: int
    even: bool = False

    def __call__(self, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise Reject(f"expected an integer {self.allowed}, got {show(v)}")
        v = int(v)
        if not self.lo <= v <= self.hi or (self.even and v % 2):
            raise Reject(f"{v} is not {self.allowed}")
        return v

    @property
    def allowed(self) -> str:
        return f"{'an even number ' if self.even else ''}in [{self.lo}, {self.hi}]"


@dataclasses.dataclass(frozen=True)
class Float(Rule):
    """A finite number in the range (NaN and inf are never in it)."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def __call__(self, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise Reject(f"expected a number {self.allowed}, got {show(v)}")
        x = float(v)
        above = x > self.lo if self.lo_open else x >= self.lo
        below = x < self.hi if self.hi_open else x <= self.hi
        if not (above and below and math.isfinite(x)):
            raise Reject(f"{show(v)} is not {self.allowed}")
        return x

    @property
    def allowed(self) -> str:
        lo, hi = show(float(self.lo)).removesuffix(".0"), show(float(self.hi)).removesuffix(".0")
        return f"in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"


@dataclasses.dataclass(frozen=True)
class OrAuto(Rule):
    """The string 'auto' (the value is found when the run starts), or a value `rule` accepts."""

    rule: Rule

    def __call__(self, v: Any) -> Any:
        if isinstance(v, str) and v == "auto":
            return v
        try:
            return self.rule(v)
        except Reject:
            raise Reject(f"{show(v)} is not {self.allowed}") from None

    @property
    def allowed(self) -> str:
        return f"'auto' or a number {self.rule.allowed}"


@dataclasses.dataclass(frozen=True)
class Bool(Rule):
    def __call__(self, v: Any) -> bool:
        if not isinstance(v, bool):
            raise Reject(f"expected true/false, got {show(v)}")
        return v

    @property
    def allowed(self) -> str:
        return "true/false"


@dataclasses.dataclass(frozen=True)
class Choice(Rule):
    """One of a fixed set of strings; `noun` words the message ("unknown backend 'x' (known: ...)")."""

    values: tuple[str, ...]
    noun: str = ""

    def __call__(self, v: Any) -> str:
        if not isinstance(v, str) or v not in self.values:
            if self.noun:
                raise Reject(f"unknown {self.noun} {show(v)} (known: {', '.join(self.values)})")
            raise Reject(f"{show(v)} is not {self.allowed}")
        return v

    @property
    def allowed(self) -> str:
        return f"one of {', '.join(self.values)}"


@dataclasses.dataclass(frozen=True)
class Text(Rule):
    """A string (null reads as ""); `check(s)` returns what is wrong with it, or None."""

    check: Callable[[str], str | None] | None = None
    what: str = "a string"

    def __call__(self, v: Any) -> str:
        if v is None:
            v = ""
        if not isinstance(v, str):
            raise Reject(f"expected a string, got {show(v)}")
        why = self.check(v) if self.check else None
        if why:
            raise Reject(why)
        return v

    @property
    def allowed(self) -> str:
        return self.what


@dataclasses.dataclass(frozen=True)
class Seq(Rule):
    """A list of values (read as a tuple), each checked by `item`."""

    item: Rule
    n: int | None = None  # exact length
    min_n: int = 0
    max_n: int = 10_000
    unique: bool = False
    ordered: bool = False  # non-decreasing (a range: lo, hi)

    def __call__(self, v: Any) -> tuple:
        if not isinstance(v, (list, tuple)):
            raise Reject(f"expected a list, got {show(v)}")
        if (self.n is not None and len(v) != self.n) or not self.min_n <= len(v) <= self.max_n:
            raise Reject(f"{show(list(v))}: expected {self.allowed}")
        out = tuple(self.item(x) for x in v)
        if self.unique and len(set(out)) != len(out):
            raise Reject(f"{show(list(v))}: an entry is listed twice")
        if self.ordered and any(a > b for a, b in itertools.pairwise(out)):
            raise Reject(f"{show(list(v))}: expected lo <= hi")
        return out

    @property
    def allowed(self) -> str:
        count = (
            f"{self.n}" if self.n is not None
            else f"{self.min_n} to {self.max_n}" if self.min_n else f"at most {self.max_n}"
        )  # fmt: skip
        return f"a list of {count} value(s) {self.item.allowed}"


@dataclasses.dataclass(frozen=True)
class Caps(Rule):
    """A mapping name -> value (null reads as {}), kept sorted by name."""

    value: Rule
    max_n: int = 10_000

    def __call__(self, v: Any) -> dict:
        if v is None:
            return {}
        if not isinstance(v, Mapping) or len(v) > self.max_n:
            raise Reject(f"expected a mapping name -> value {self.value.allowed}, got {show(v)}")
        for name, x in v.items():
            if not isinstance(name, str) or not name:
                raise Reject(f"{show(name)}: a name must be a non-empty string")
            try:
                self.value(x)
            except Reject as e:
                raise Reject(f"{name!r}: {e}") from None
        return {k: self.value(v[k]) for k in sorted(v)}

    @property
    def allowed(self) -> str:
        return f"a mapping name -> value {self.value.allowed}"


class _TypeOf(Rule):
    """For a field that has no rule (every field should have one; a test checks): its type only."""

    def __init__(self, default: Any) -> None:
        self.kind = type(default)

    def __call__(self, v: Any) -> Any:
        if self.kind is bool:
            return Bool()(v)
        if self.kind is int:
            return Int(-(2**63), 2**63 - 1)(v)
        if self.kind is float:
            return Float(-math.inf, math.inf)(v)  # any finite number
        if self.kind is str:
            return Text()(v)
        if self.kind in (list, tuple):
            if not isinstance(v, (list, tuple)):
                raise Reject(f"expected a list, got {show(v)}")
            return self.kind(v)
        return v


def param(default: Any = MISSING, rule: Rule | None = None, *, factory: Any = MISSING) -> Any:
    """A dataclass field with its rule: `x: int = param(1, Int(0, 10))`."""
    return field(default=default, default_factory=factory, metadata={RULE: rule})


def reject(key: str, message: str) -> ConfigError:
    """The error for a section-wide check (`cross_check`): `raise reject("train.optim.lr", "...")`."""
    return ConfigError(f"{key}: {message}")


@functools.cache
def _nested(cls: type) -> dict[str, type]:
    """The fields of cls that are sections themselves (a dataclass as default), with their types."""
    out = {}
    for f in fields(cls):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if dataclasses.is_dataclass(default):
            out[f.name] = type(default)
    return out


def section_fields(cls: type) -> list[dataclasses.Field]:
    """The value fields of a section (not its nested sections)."""
    nested = _nested(cls)
    return [f for f in fields(cls) if f.name not in nested]


def rule_of(f: dataclasses.Field) -> Rule | None:
    return f.metadata.get(RULE)


def _key(cls: type, name: str) -> str:
    section = getattr(cls, "SECTION", "")
    return f"{section}.{name}" if section else name


def validate(obj: Any) -> Any:
    """Check (and normalise: int -> float, list -> tuple) every field of a section, then its
    cross_check(); the first bad value raises ConfigError naming its dotted key."""
    cls = type(obj)
    nested = _nested(cls)
    for f in fields(obj):
        v = getattr(obj, f.name)
        if f.name in nested:
            if not isinstance(v, nested[f.name]):
                raise ConfigError(f"{_key(cls, f.name)}: expected a mapping, got {show(v)}")
            continue
        rule = rule_of(f)
        if rule is None:
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            rule = _TypeOf(default)
        try:
            new = rule(v)
        except Reject as e:
            raise ConfigError(f"{_key(cls, f.name)}: {e}") from None
        if new is not v:
            object.__setattr__(obj, f.name, new)
    check = getattr(obj, "cross_check", None)
    if check is not None:
        check()
    return obj


class Checked:
    """Base of every section dataclass: validated on construction. `SECTION` is its dotted name."""

    SECTION = ""

    def __post_init__(self) -> None:
        validate(self)


class _Tree(dict):
    """A nested section inside `override`'s working copy (a dict-valued field is a plain dict)."""


def _tree(cfg: Any) -> _Tree:
    out = _Tree()
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        out[f.name] = _tree(v) if dataclasses.is_dataclass(v) else v
    return out


def build(cls: type, data: Any) -> Any:
    """A section from a mapping, strictly: an unknown key or a bad value is a ConfigError."""
    label = getattr(cls, "SECTION", "") or "params"
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: expected a mapping, got {show(data)}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise ConfigError(f"{label}: unknown parameter(s) {', '.join(unknown)}")
    nested = _nested(cls)
    kwargs = {k: build(nested[k], v) if k in nested else v for k, v in data.items()}
    return cls(**kwargs)


# The top-level sections a params file may hold: dfprep's (dfprep.config.Params), dftrain's
# (train, eval), and the experiments' own keys that only their dvc.yaml reads. A section is added
# here when a package or an experiment gets one (tests/e2e/test_params.py checks both lists).
PACKAGE_SECTIONS = frozenset({
    "decode", "detect", "crop", "shard", "pair", "run", "synth", "balance", "report", "sample",
    "train", "eval",
})  # fmt: skip
EXPERIMENT_SECTIONS = frozenset({"datasets", "weights", "configs", "extract_args", "balance_args"})
SECTIONS = PACKAGE_SECTIONS | EXPERIMENT_SECTIONS

# A YAML document expands to at most this many values once its aliases are followed (the
# repository's own params files: ~300). Aliases are references, so "a billion laughs" in a few
# hundred bytes would otherwise expand to 10^9 values in whatever walks the result.
MAX_YAML_NODES = 100_000


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def expanded_size(root: yaml.Node, cap: int = MAX_YAML_NODES) -> int:
    """Values of a composed YAML document with every alias expanded, counted without expanding
    (each node once, a shared one as often as it is used); cap + 1 as soon as it exceeds cap, or
    for a recursive alias."""
    sizes: dict[int, int] = {}
    started: set[int] = set()  # the nodes on the path from the root (a recursive alias loops)
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            started.discard(key)
            sizes[key] = min(cap + 1, 1 + sum(sizes[id(k)] for k in _children(node)))
            continue
        if key in sizes:
            continue
        started.add(key)
        stack.append((node, True))
        for k in _children(node):
            if id(k) in started:
                return cap + 1
            if id(k) not in sizes:
                stack.append((k, False))
    return sizes[id(root)]


class _BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a document whose aliases expand it beyond MAX_YAML_NODES."""

    def construct_document(self, node):
        if expanded_size(node) > MAX_YAML_NODES:
            raise ConfigError(
                f"its aliases expand it to more than {MAX_YAML_NODES:,} values (an alias bomb?)"
            )
        return super().construct_document(node)


def load_yaml(text: str, where: str | Path) -> Any:
    """YAML text as Python values, safely (no tags that run code) and bounded (`MAX_YAML_NODES`);
    anchors and aliases otherwise work as usual. ConfigError naming WHERE for anything wrong."""
    loader = _BoundedLoader(text)  # what yaml.safe_load does, with the bound
    try:
        return loader.get_single_data()
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML ({first_line(e)})") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid YAML (nested too deeply)") from None
    finally:
        loader.dispose()


def read_params(path: str | Path) -> dict[str, Any]:
    """A params file as a mapping ({} when empty); missing, not a regular file, unreadable, not
    YAML, or with an unknown top-level section: ConfigError naming it."""
    p = Path(path)
    try:
        with open_regular(p) as f:
            text = f.read().decode()
    except FileNotFoundError:
        raise ConfigError(f"params file not found: {p}") from None
    except NotRegular as e:
        raise ConfigError(str(e)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read ({first_line(e)})") from None
    data = load_yaml(text, p) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    for key in data:
        if key not in SECTIONS:
            close = difflib.get_close_matches(str(key), sorted(SECTIONS), n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(sorted(SECTIONS))}"
            raise ConfigError(f"{p}: unknown section {str(key)!r} ({hint})")
    return data


def read_value(text: str, where: str) -> Any:
    """One value as params.yaml would hold it (`0.05`, `[0.5, 0.5]`, `sgd`; `1e-3` is a number,
    which YAML 1.1 reads as a string; "" is ""); not YAML: ConfigError naming `where`."""
    if not text.strip():
        return ""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not a YAML value ({first_line(e)})") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load(path: str | Path | None, cls: type, section: str | None = None) -> Any:
    """`cls` from the `section` of a params file (None: from the top level, keeping only cls's
    own sections: params.yaml also holds the other package's); the defaults when path is None.
    Errors are prefixed with the file: `params.yaml: decode.fps: -1 is not in (0, 240]`."""
    if path is None:
        return cls()
    data = read_params(path)
    if section is None:
        names = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in names}
    else:
        data = data.get(section)
    try:
        return build(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def override(cfg: Any, changes: Mapping[str, Any], source: str = "options") -> Any:
    """cfg with values replaced by dotted name relative to it (`{"optim.lr": 1e-3}`; a whole
    section by an instance of it); None values (unset options) are ignored. The result is validated; errors are prefixed with `source`."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return cfg
    tree = _tree(cfg)
    prefix = getattr(type(cfg), "SECTION", "")
    for dotted, value in changes.items():
        *path, key = dotted.split(".")
        node: Any = tree
        for part in path:
            node = node.get(part) if isinstance(node, _Tree) else None
        if not isinstance(node, _Tree) or key not in node:
            raise ConfigError(
                f"{source}: unknown parameter {prefix + '.' if prefix else ''}{dotted}"
            )
        if isinstance(node[key], _Tree):  # a whole section: replaced by one of its own type
            if not dataclasses.is_dataclass(value) or isinstance(value, type):
                raise ConfigError(
                    f"{source}: {prefix + '.' if prefix else ''}{dotted} is a section, not a value"
                )
            value = _tree(value)
        node[key] = value
    try:
        return build(type(cfg), tree)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
