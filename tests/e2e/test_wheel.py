"""A wheel install (`pip install .`, not editable) finds what the packages ship: the dataset
catalogue is package data, so `dfprep datasets` works from any directory, far from the clone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import dfprep
from dfprep.catalogue import DEFAULT_PATH, load_catalogue

REPO = Path(__file__).resolve().parents[2]


def _pip(*args: str | Path, cwd: Path) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    cmd = [sys.executable, "-m", "pip", *map(str, args)]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The project built into a wheel from a copy of the checkout, installed into a bare folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in ("pipeline", "trainer"):  # a copy: the build's own folders stay out of the clone
        shutil.copytree(REPO / name, src / name, ignore=junk)
    _pip(
        "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp / "dist", src, cwd=tmp
    )
    (wheel,) = (tmp / "dist").glob("dffm-*.whl")
    assert "dfprep/catalogue.yaml" in zipfile.ZipFile(wheel).namelist()
    _pip("install", "--no-deps", "--no-index", "--target", tmp / "site", wheel, cwd=tmp)
    return tmp / "site"


def _run(site: Path, cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # only the installed copy on the path: not the clone's pipeline/ and trainer/
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_wheel_install_runs_dfprep_datasets_outside_the_clone(site, tmp_path):
    where = _run(
        site,
        [sys.executable, "-c", "import dfprep, dftrain, dfprep.catalogue as c; "
         "print(dfprep.__file__, dftrain.__file__, c.DEFAULT_PATH, c.DEFAULT_PATH.is_file())"],
        tmp_path,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    dfprep_file, dftrain_file, catalogue, found = where.stdout.split()
    for path in (dfprep_file, dftrain_file, catalogue):  # the wheel's, not the editable finder's
        assert Path(path).resolve().is_relative_to(site.resolve()), path
    assert found == "True"

    done = _run(site, [str(site / "bin" / "dfprep"), "datasets"], tmp_path)
    assert done.returncode == 0, done.stderr
    for name, entry in load_catalogue().datasets.items():  # every dataset of the catalogue
        assert name in done.stdout and entry.adapter in done.stdout, name
    assert "FaceForensics++" in done.stdout


def test_the_user_facing_catalogue_is_the_shipped_one_not_a_copy():
    """manifests/catalogue.yaml links to the package's file: one catalogue, nothing to drift."""
    assert (REPO / "manifests" / "catalogue.yaml").resolve() == DEFAULT_PATH
    assert DEFAULT_PATH.parent == Path(dfprep.__file__).resolve().parent
