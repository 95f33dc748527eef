"""dfprep report: contact sheets, chart and extract outcome, on balance and extract outputs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from dfprep.balance import run_balance, run_report
from dfprep.balance.report import HEAD, PAD, caption_height, sample_sheet
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


CAP = caption_height(3)  # method, video, time


def _cell_mean(sheet: Image.Image, cfg: ReportConfig, i: int) -> np.ndarray:
    pad, cap, head = PAD, CAP, HEAD
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
        assert sheet.width == cols * (cfg.thumb + PAD) + PAD
        assert sheet.height == HEAD + -(-n // cols) * (cfg.thumb + CAP + PAD) + PAD
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
    md = res.markdown.read_text()
    assert "InvalidDataError: <path> eof" in md
    # the videos to check among those of the selection (the failed ones gave it no crop)
    assert "## Videos to check\n\nNone among the videos of this training set." in md
    assert res.problems is not None and len(pa.parquet.read_table(res.problems)) == 0


def test_sheet_sampling_opens_at_most_max_shards():
    t = pa.table(
        {
            "key": [f"k{i}" for i in range(100)],
            "video_id": [f"v{i // 2}" for i in range(100)],
            "path": [f"s{i % 10}.tar" for i in range(100)],
        }
    )
    shown, hidden = sample_sheet(t, np.random.default_rng(0), 12, max_shards=2, per_video=3)
    assert len(shown) == 12 and len(set(shown["path"].to_pylist())) <= 2
    assert len(set(shown["key"].to_pylist())) == 12
    assert len(hidden) == 50 - len(set(shown["video_id"].to_pylist()))
    small, none = sample_sheet(t.slice(0, 5), np.random.default_rng(0), 12, 10, per_video=3)
    assert sorted(small["key"].to_pylist()) == [f"k{i}" for i in range(5)] and none == []


def test_report_refuses_mixed_inputs(extract_dir, tmp_path):
    run_balance([extract_dir], tmp_path / "bal", BalanceConfig(min_shards=1))
    with pytest.raises(InputError, match="reported on its own"):
        run_report([tmp_path / "bal", extract_dir], tmp_path / "rep")
    with pytest.raises(InputError, match="no shards/ folder"):
        run_report([tmp_path], tmp_path / "rep")


def test_sheets_take_a_few_crops_of_every_video_and_name_the_ones_not_shown(tmp_path):
    """Before: random crops, so a 200-s video filled most of a sheet and short ones were never
    shown, and nothing said so."""
    long = [vid("a-long", dataset="a", crops=200)]
    short = [vid(f"a-short{i}", dataset="a", crops=2) for i in range(5)]
    many = [vid(f"b-v{i:02d}", dataset="b", crops=2) for i in range(12)]
    root = write_extract(tmp_path / "x", long + short + many, per_shard=3)
    cfg = ReportConfig(rows=2, cols=4, thumb=32, per_video=3)
    res = run_report([root], tmp_path / "rep", cfg)
    assert res.not_shown["contact-a-fake.png"] == []  # 8 slots: each of the 6 videos, then more
    assert len(res.not_shown["contact-b-fake.png"]) == 12 - 8  # one crop of 8 videos
    t = pa.table(
        {
            "key": [f"k{i}" for i in range(210)],
            "video_id": ["long"] * 200 + [f"s{i // 2}" for i in range(10)],
            "path": ["x.tar"] * 210,
        }
    )
    shown, hidden = sample_sheet(t, np.random.default_rng(1), 8, max_shards=8, per_video=3)
    ids = shown["video_id"].to_pylist()
    assert hidden == [] and len(set(ids)) == 6 and len(ids) == 8  # all 6, then 2 second crops
    assert max(ids.count(v) for v in set(ids)) == 2
    shown, _ = sample_sheet(t, np.random.default_rng(1), 48, max_shards=8, per_video=3)
    assert shown["video_id"].to_pylist().count("long") == 3 and len(shown) == 3 + 5 * 2
    md = res.markdown.read_text()
    hidden_b = res.not_shown["contact-b-fake.png"]
    assert f"Not shown: 4 video(s): {', '.join(hidden_b)}." in md


def test_captions_give_the_method_the_video_and_the_time_a_line_each(tmp_path):
    from PIL import ImageDraw, ImageFont

    from dfprep.balance.report import LINE, _fit, captions, contact_sheet

    row = {"key": "k", "video_id": "ffpp-manipulated_sequences-NeuralTextures-c23-videos-000_003",
           "method": "NeuralTextures", "time": 12.4, "path": "x.tar"}  # fmt: skip
    assert captions(row) == ["NeuralTextures", row["video_id"], "12 s"]
    cfg = ReportConfig(rows=1, cols=1, thumb=128)
    sheet = contact_sheet(pa.Table.from_pylist([row]), "t", cfg, {"k": noise_jpeg(0, size=64)})
    assert sheet.height == HEAD + cfg.thumb + caption_height(3) + 2 * PAD
    font = ImageFont.load_default()
    end = _fit(ImageDraw.Draw(Image.new("RGB", (1, 1))), row["video_id"], font, cfg.thumb)
    assert end.startswith("…") and end.endswith("-videos-000_003")  # the id keeps its end
    for j, text in enumerate(["NeuralTextures", end, "12 s"]):
        y = HEAD + cfg.thumb + 1 + j * LINE  # each line drawn in full where it belongs
        want = Image.new("RGB", (cfg.thumb, LINE), "white")
        ImageDraw.Draw(want).text((0, 0), text, fill="black", font=font)
        got = sheet.crop((PAD, y, PAD + cfg.thumb, y + LINE))
        assert np.array_equal(np.asarray(got), np.asarray(want)), text


def test_the_report_names_the_videos_to_check(extract_dir, tmp_path):
    res = run_report([extract_dir], tmp_path / "rep", ReportConfig(rows=2, cols=5, thumb=48))
    md = res.markdown.read_text()
    section = md[md.index("## Videos to check") :]
    assert (
        "| a-nf | a | train | fake | no face in 0 sampled frame(s); no face in 12 frames |"
        in section
    )
    assert "| a-bad1 | a | train | fake | InvalidDataError: /x/a-bad1.mp4: eof |" in section
    rows = pa.parquet.read_table(res.problems).to_pylist()
    assert {(r["video_id"], r["problem"]) for r in rows} == {
        ("a-nf", "no_face"), ("a-bad1", "failed"), ("b-bad2", "failed"),
    }  # fmt: skip
