"""Files planted where a tool keeps its own: a link as the lock, a FIFO as the ownership marker.
Each is one error line's worth of refusal; nothing behind them is written or waited on."""

from __future__ import annotations

import os

import pytest

from dfprep.core.errors import DfprepError, InputError
from dfprep.core.lock import LOCK_NAME, output_lock
from dfprep.core.owned import claim


def test_a_link_planted_as_the_lock_is_refused_and_its_target_kept(tmp_path):
    out, victim = tmp_path / "out", tmp_path / "precious.txt"
    out.mkdir()
    victim.write_text("precious")
    (out / LOCK_NAME).symlink_to(victim)
    with pytest.raises(DfprepError, match=LOCK_NAME), output_lock(out, "test"):
        pass
    assert victim.read_text() == "precious"


def test_a_fifo_as_the_ownership_marker_is_refused_not_read(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_text("mine?")
    os.mkfifo(root / "marker.json")
    with pytest.raises(InputError, match="not a regular file"):
        claim(root, "marker.json", "test", "test output")
    assert (root / "a.txt").read_text() == "mine?"
