"""dfprep verify: can an output directory be trusted as it is on disk?

Reads everything back, once, with the same readers the later stages use, and reports every
discrepancy (one line each, naming the file) instead of stopping at the first:

- extract output (DIR/shards/): a shard counts once its stats file exists; then its tar, crop
  index and video table must all be there and readable, the stats must add up (videos = ok +
  no_face + failed, crops = index rows = tar samples), the tar and the index must hold exactly the
  same crops with the same labels, every `.json` must parse and agree with its `.cls`, and no video
  or crop may appear twice. Given the manifests, every manifest video must be in exactly one
  complete shard with the manifest's labels, and no shard of a manifest may hold a video it does
  not list.
- balance output (DIR/sizes.json): every shard sizes.json lists exists with that many samples and
  no other shard is there; selection.parquet names the same crops, in the same order and with the
  same labels, as the tars; every JSON file and record parses.

Leftovers that nothing trusts (temporary files of killed runs, shards without a stats file) are
notes, not problems, unless manifests are given and their videos are therefore missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dfprep.core.errors import InputError
from dfprep.verify.balance import verify_balance
from dfprep.verify.common import VerifyReport
from dfprep.verify.extract import verify_extract

__all__ = ["VerifyReport", "verify_balance", "verify_extract", "verify_output"]


def verify_output(path: str | Path, manifests: Iterable[str | Path] | None = None) -> VerifyReport:
    """Check an extract or a balance output directory (recognised by its contents)."""
    d = Path(path)
    if (d / "shards").is_dir():
        return verify_extract(d, manifests)
    if manifests:
        raise InputError(
            f"{d}: manifests can only be checked against an extract output (DIR/shards/)"
        )
    if (d / "sizes.json").exists() or (d / "selection.parquet").exists() or (d / "train").is_dir():
        return verify_balance(d)
    if not d.is_dir():
        raise InputError(f"{d}: directory not found")
    raise InputError(
        f"{d}: neither an extract output (no shards/) nor a balance output (no sizes.json)"
    )
