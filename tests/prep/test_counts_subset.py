"""The count check on a known subset: the sample and the miniatures that `dfprep synth` makes are
called a subset, calmly; red is kept for a download that is missing parts (it has no marker)."""

from __future__ import annotations

from rich.console import Console
from typer.testing import CliRunner

from dfprep.catalogue import load_catalogue
from dfprep.cli import app
from dfprep.counts import SUBSET_MARKERS, check_counts, count_table, known_subset
from dfprep.synth.ffpp import MARKER as SAMPLE_MARKER
from dfprep.synth.suite import MARKER as SUITE_MARKER

CAT = load_catalogue()


def _text(check) -> tuple[str, bool]:
    """The table's text, and whether anything in it is red."""
    console = Console(record=True, width=200, color_system="standard", force_terminal=True)
    console.print(count_table(check))
    ansi = console.export_text(styles=True, clear=False)
    return " ".join(console.export_text(styles=False).split()), "\x1b[1;31m" in ansi


def test_the_markers_are_the_ones_synth_writes():
    assert set(SUBSET_MARKERS) == {SAMPLE_MARKER, SUITE_MARKER}


def test_a_marker_above_the_videos_makes_them_a_known_subset(tmp_path):
    sample, suite, download = tmp_path / "sample", tmp_path / "raw", tmp_path / "FaceForensics++"
    (sample / "original_sequences").mkdir(parents=True)
    (sample / SAMPLE_MARKER).write_text("{}")
    (suite / "ffpp" / "original_sequences").mkdir(parents=True)
    (suite / SUITE_MARKER).write_text("{}")
    (download / "original_sequences").mkdir(parents=True)
    videos = ["original_sequences/youtube/c23/videos/000.mp4", "original_sequences/x/001.mp4"]
    assert "dfprep synth" in known_subset([str(sample / v) for v in videos])
    assert "--layout all" in known_subset([str(suite / "ffpp" / v) for v in videos])
    assert known_subset([str(download / v) for v in videos]) == ""  # a download: no marker
    assert known_subset([]) == ""


def test_a_known_subset_is_calm_and_a_partial_download_or_a_surplus_is_red():
    short = {"train": 40, "val": 10, "test": 20, "real": 14, "fake": 56, "total": 70}
    sub = check_counts(
        "ffpp", short, CAT.entry("ffpp"), "the sample dataset made by `dfprep synth`"
    )
    assert sub.differences and sub.as_subset
    text, red = _text(sub)
    assert not red and "subset: the sample dataset made by `dfprep synth`" in text
    assert "difference(s)" not in text and "as expected" in text
    partial = check_counts("ffpp", short, CAT.entry("ffpp"))  # the same counts, no marker
    text, red = _text(partial)
    assert red and not partial.as_subset and "difference(s)" in text and "subset" not in text
    more = check_counts("ffpp", {**short, "train": 9999}, CAT.entry("ffpp"), "a sample")
    text, red = _text(more)
    assert red and not more.as_subset and more.above == ["train: 9,999 (Table 1: 4,320)"]
    assert "difference(s)" in text  # more videos than the full release: never a subset


def test_the_manifest_of_the_sample_gets_the_subset_verdict(sample_manifest):
    res = CliRunner().invoke(app, ["datasets", "--check", str(sample_manifest)])
    assert res.exit_code == 0, res.output
    assert "subset: the sample dataset made by `dfprep synth`" in res.stdout
    assert "difference(s)" not in res.stdout
