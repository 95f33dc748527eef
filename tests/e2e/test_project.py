"""What a user of the project expects beside the code: its licence, how to cite it, its changes,
`--version` and the same shell completion on both command lines."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

import dfprep
import dftrain
from dfprep.cli import app as dfprep_app
from dftrain.cli import app as dftrain_app

REPO = Path(__file__).resolve().parents[2]


def test_the_licence_is_the_apache_2_text_the_readme_and_the_package_name():
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 10_000  # the full text
    assert "Apache-2.0" in (REPO / "README.md").read_text()
    assert 'license = { text = "Apache-2.0" }' in (REPO / "pyproject.toml").read_text()


def test_the_citation_names_the_paper_and_this_software():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["version"] == dfprep.__version__ and cff["license"] == "Apache-2.0"
    paper = cff["preferred-citation"]
    assert paper["title"].startswith("Improving Generalization in Deepfake Detection")
    assert [a["family-names"] for a in paper["authors"]] == ["Mylonas", "Papadopoulos"]
    assert "arXiv:2508.19730" in str(paper["identifiers"]) and paper["year"] == 2025
    assert "DHOW" in paper["collection-title"]


def test_the_changelog_keeps_a_changelog():
    text = (REPO / "CHANGELOG.md").read_text()
    assert "Keep a Changelog" in text and "## [Unreleased]" in text
    assert f"## [{dfprep.__version__}]" in text


def test_both_command_lines_have_version_and_the_same_completion():
    runner = CliRunner()
    for app, name, version in ((dfprep_app, "dfprep", dfprep.__version__),
                               (dftrain_app, "dftrain", dftrain.__version__)):  # fmt: skip
        res = runner.invoke(app, ["--version"])
        assert res.exit_code == 0 and res.stdout.strip() == f"{name} {version}"
        help_text = runner.invoke(app, ["--help"]).stdout
        assert "--install-completion" in help_text and "--show-completion" in help_text
