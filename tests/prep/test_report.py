"""dfprep report: contact sheets, chart and extract outcome, on balance and extract outputs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from dfprep.balance import run_balance, run_report
from dfprep.balance.report import sample_sheet
from dfprep.config import BalanceConfig, ReportConfig
from dfprep.core.errors import InputError
from test_balance import noise_jpeg, vid, write_extract

COLORS = {
    ("a", 0): (0, 200, 0),
    ("a", 1): (200, 0, 0),
    ("b", 0): (0, 0, 200),
    ("b", 1): (200, 200, 0),
}


@pytest.fixture(scope="module")
def extract_dir(tmp_path_factory):
    """Two datasets; every crop is the colour of its dataset x label, so a sheet shows its group."""
    videos = []
    for ds in ("a", "b"):
        videos += [vid(f"{ds}-real-{i}", dataset=ds, label=0, crops=6) for i in range(4)]
        videos += [vid(f"{ds}-fake-{i}", dataset=ds, label=1, crops=3) for i in range(8)]
    videos += [
        vid("a-nf", dataset="a", crops=0, error="no face in 12 frames"),
        vid(
            "a-bad1",
            dataset="a",
            crops=0,
            status="failed",
            error="InvalidDataError: /x/a-bad1.mp4: eof",
        ),
        vid(
            "b-bad2",
            dataset="b",
            crops=0,
            status="failed",
            error="InvalidDataError: /y/b-bad2.mp4: eof",
        ),
    ]
    root = tmp_path_factory.mktemp("extract")

    def payload(v, k):
        label = 0 if "real" in v["video_id"] else 1
        return noise_jpeg(k, COLORS[(v["dataset"], label)], size=64)

    return write_extract(root, videos, per_shard=3, payload=payload)


def _cell_mean(sheet: Image.Image, cfg: ReportConfig, i: int) -> np.ndarray:
    pad, cap, head = 4, 14, 22
    x = pad + (i % cfg.cols) * (cfg.thumb + pad)
    y = head + (i // cfg.cols) * (cfg.thumb + cap + pad)
    return (
        np.asarray(sheet.crop((x + 8, y + 8, x + cfg.thumb - 8, y + cfg.thumb - 8)))
        .reshape(-1, 3)
        .mean(0)
    )


def _check_sheets(result, cfg, expect_counts):
    names = sorted(p.name for p in result.sheets)
    assert names == [
        "contact-a-fake.png",
        "contact-a-real.png",
        "contact-b-fake.png",
        "contact-b-real.png",
    ]
    for p in result.sheets:
        ds, label = p.stem.split("-")[1:]
        sheet = Image.open(p)
        n = expect_counts[(ds, label)]
        cols = min(cfg.cols, n)
        assert sheet.width == cols * (cfg.thumb + 4) + 4
        assert sheet.height == 22 + -(-n // cols) * (cfg.thumb + 18) + 4
        want = np.array(COLORS[(ds, 0 if label == "real" else 1)])
        for i in range(n):  # every thumbnail is a crop of this sheet's own group
            assert np.abs(_cell_mean(sheet, cfg, i) - want).max() < 40


def test_report_on_extract_output(extract_dir, tmp_path):
    cfg = ReportConfig(rows=2, cols=5, thumb=48)
    res = run_report([extract_dir], tmp_path / "rep", cfg)
    # 24 real and 24 fake crops per dataset: a full 2 x 5 sheet each
    _check_sheets(res, cfg, {(d, lab): 10 for d in "ab" for lab in ("real", "fake")})
    assert res.chart is not None and res.chart.read_bytes()[:4] == b"\x89PNG"
    md = res.markdown.read_text()
    assert "| 2 | failed | InvalidDataError: <path> eof |" in md  # grouped across the two paths
    assert "| 1 | no_face | no face in 12 frames |" in md
    assert "| **all** | 24 | 1 | 2 |" in md.replace(",", "")
    for p in res.sheets:
        assert f"]({p.name})" in md


def test_report_on_balance_output(extract_dir, tmp_path):
    run_balance([extract_dir], tmp_path / "bal", BalanceConfig(total=20, min_shards=2))
    cfg = ReportConfig(rows=3, cols=4, thumb=40)
    res = run_report([tmp_path / "bal"], tmp_path / "rep", cfg)
    # 10 real / 10 fake per split overall: 8 real videos keep >= 1 crop each, datasets share the rest
    sel = pa.parquet.read_table(tmp_path / "bal" / "selection.parquet")
    counts = {}
    for ds, label in zip(sel["dataset"].to_pylist(), sel["label"].to_pylist(), strict=True):
        key = (ds, "real" if label == 0 else "fake")
        counts[key] = min(12, counts.get(key, 0) + 1)
    _check_sheets(res, cfg, counts)
    assert res.chart.read_bytes() == (tmp_path / "bal" / "stats.png").read_bytes()
    assert "InvalidDataError: <path> eof" in res.markdown.read_text()


def test_sheet_sampling_opens_at_most_max_shards():
    t = pa.table(
        {"key": [f"k{i}" for i in range(100)], "path": [f"s{i % 10}.tar" for i in range(100)]}
    )
    shown = sample_sheet(t, np.random.default_rng(0), 12, max_shards=2)
    assert len(shown) == 12 and len(set(shown["path"].to_pylist())) <= 2
    assert len(set(shown["key"].to_pylist())) == 12
    small = sample_sheet(t.slice(0, 5), np.random.default_rng(0), 12, max_shards=10)
    assert sorted(small["key"].to_pylist()) == [f"k{i}" for i in range(5)]


def test_report_refuses_mixed_inputs(extract_dir, tmp_path):
    run_balance([extract_dir], tmp_path / "bal", BalanceConfig(min_shards=1))
    with pytest.raises(InputError, match="reported on its own"):
        run_report([tmp_path / "bal", extract_dir], tmp_path / "rep")
    with pytest.raises(InputError, match="no shards/ folder"):
        run_report([tmp_path], tmp_path / "rep")
