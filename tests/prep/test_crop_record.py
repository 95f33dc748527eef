"""The crops' geometry travels with the data: extract's shard stats record crop.margin and size,
and balance's stats.json lists what its pool recorded (SBI places landmarks in a crop by it)."""

from __future__ import annotations

import json

from dfprep.adapters import VideoRow
from dfprep.balance.pool import read_pool
from dfprep.config import Params, replace
from dfprep.extract import run_extract
from dfprep.manifest import rows_to_table, write_manifest
from dfprep.synth import make_face_video


def test_extract_records_the_crop_geometry_and_the_pool_collects_it(tmp_path):
    make_face_video(tmp_path / "v" / "a.mp4", fps=10, size=(320, 240), seconds=1.0, seed=1)
    rows = [VideoRow("a.mp4", "train", 0, "real", "real")]
    m = write_manifest(rows_to_table("t", tmp_path / "v", rows), tmp_path / "m.parquet")
    p = Params()
    p = replace(
        p, crop=replace(p.crop, margin=0.5, size=96), run=replace(p.run, scheduler="inline")
    )
    assert run_extract([m], tmp_path / "out", p).crops > 0
    (stats,) = (tmp_path / "out" / "meta").glob("*.stats.json")
    assert json.loads(stats.read_text())["crop"] == {"margin": 0.5, "size": 96}
    assert read_pool([tmp_path / "out"]).crops == [{"margin": 0.5, "size": 96}]
    # a shard written before the geometry was recorded: listed as None (unknown), not guessed
    data = json.loads(stats.read_text())
    del data["crop"]
    stats.write_text(json.dumps(data))
    assert read_pool([tmp_path / "out"]).crops == [None]
