"""Deterministic derived splits and typed adapter options, shared by the dataset adapters.

A derived split must never depend on file order, on the machine or on a random state: groups
(identities, original videos) are ordered by a salted hash and cut by cumulative video count, so the
same download always gives the same split and a group never straddles two splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from dfprep.adapters.registry import AdapterOptions
from dfprep.core.errors import ConfigError

SEED = "dfprep"  # default salt of every derived split; change it to draw another split
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def read_options(opts: AdapterOptions, adapter: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`opts.options` over `defaults`, each value cast to its default's type (CLI values are strings).

    An unknown key is an error, so a typo cannot silently fall back to a default.
    """
    unknown = sorted(set(opts.options) - set(defaults))
    if unknown:
        raise ConfigError(
            f"{adapter}: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(defaults)) or 'none'})"
        )
    out = dict(defaults)
    for key, value in opts.options.items():
        out[key] = _cast(value, defaults[key], f"{adapter}: option {key}")
    return out


def _cast(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        v = str(value).strip().lower()
        if v in _TRUE | _FALSE:
            return v in _TRUE
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if isinstance(default, int):
        try:
            if isinstance(value, (float, bool)):
                raise ValueError
            return int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if isinstance(default, float):
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(str(value).strip())
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    return "" if value is None else str(value)


def check_fractions(fractions: Sequence[tuple[str, float]], where: str) -> None:
    """Each fraction in [0, 1), all summing to at most 1 (the remainder goes to `train`)."""
    for split, f in fractions:
        if not 0.0 <= f < 1.0:
            raise ConfigError(f"{where}: {split} fraction must be in [0, 1), got {f}")
    if sum(f for _, f in fractions) >= 1.0:
        raise ConfigError(f"{where}: split fractions {dict(fractions)} leave nothing for train")


def _rank(seed: str, group: str) -> str:
    return hashlib.sha256(f"{seed}\0{group}".encode()).hexdigest()


def derive_splits(
    group_sizes: Mapping[str, int], fractions: Sequence[tuple[str, float]], seed: str = SEED
) -> dict[str, str]:
    """Group -> split. Whole groups only; each split gets about its fraction of all videos.

    `fractions` lists the held-out splits, e.g. [("val", 0.1)] or [("val", 0.15), ("test", 0.15)];
    everything else is `train`. Groups are taken in salted-hash order and a group goes to the split
    whose share of the cumulative video count contains the group's midpoint: exact proportions up
    to one group, and a split with a non-zero fraction is never empty when it could hold a group.
    """
    check_fractions(fractions, "derived split")
    total = sum(group_sizes.values())
    order = sorted(group_sizes, key=lambda g: (_rank(seed, g), g))
    bounds: list[tuple[str, float]] = []
    acc = 0.0
    for split, f in fractions:
        acc += f
        bounds.append((split, acc))
    out: dict[str, str] = {}
    before = 0
    for g in order:
        size = group_sizes[g]
        mid = (before + size / 2) / total if total else 0.0
        before += size
        out[g] = next((s for s, b in bounds if mid < b), "train")
    # A non-empty fraction whose share is smaller than every group's midpoint gap still gets one.
    for split, f in fractions:
        if f > 0 and split not in out.values():
            spare = [g for g in order if out[g] == "train"]
            if len(spare) > 1:
                out[spare[0]] = split
    return out
