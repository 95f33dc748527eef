"""The three DVC pipelines as their users run them: the sample pipeline at the root, the paper's
experiment and its miniature each a DVC project of its own (`dvc init --subdir`); results that
travel with every experiment (git-tracked `cache: false` files), data that stays in the DVC cache;
one summary metrics file per pipeline; curves as images that render with no network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROOT, PAPER, MINI = (
    REPO / "dvc.yaml",
    REPO / "experiments/paper/dvc.yaml",
    REPO / "experiments/mini/dvc.yaml",
)
SUMMARY = {ROOT: "metrics/summary.json", PAPER: "results/summary.json"}


def test_the_miniature_runs_a_copy_of_the_papers_pipeline_not_a_link():
    assert not MINI.is_symlink() and MINI.is_file()  # a symlink in git fails DVC at any revision
    assert MINI.read_bytes() == PAPER.read_bytes()  # keep them equal: cp paper/dvc.yaml mini/


def test_each_experiment_is_a_dvc_project_of_its_own():
    for folder in ("paper", "mini"):
        d = REPO / "experiments" / folder
        assert (d / ".dvc" / "config").is_file() and (d / ".dvcignore").is_file()
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", ".dvc/config"], cwd=d,
                                 capture_output=True)  # fmt: skip
        assert tracked.returncode == 0, f"experiments/{folder}/.dvc/config is not in git"


def _outputs(dvc_yaml: Path):
    """(kind, path, cache) of every output of every stage, foreach stages resolved for one item."""
    for stage in yaml.safe_load(dvc_yaml.read_text())["stages"].values():
        stage = stage.get("do", stage)
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                path, opts = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
                path = path.replace("${key}", "fsfm_ba").replace("${item.role}", "train")
                yield kind, path, (opts or {}).get("cache", True)


def _ignored(path: str) -> bool:
    r = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO)
    return r.returncode == 0


@pytest.mark.parametrize("dvc_yaml", [ROOT, PAPER], ids=["root", "paper"])
def test_results_travel_with_git_and_data_stays_in_the_dvc_cache(dvc_yaml):
    base = dvc_yaml.parent.relative_to(REPO)
    declared = []
    for kind, path, cache in _outputs(dvc_yaml):
        rel = (base / path).as_posix()
        # a directory output: a file inside it (git cannot know an absent path is a folder)
        probe = rel if Path(path).suffix else f"{rel}/file.bin"
        if cache:
            assert _ignored(probe), f"{rel}: a DVC-cached output that git does not ignore"
        else:
            assert not _ignored(probe), f"{rel}: `cache: false` but git ignores it"
        if kind == "metrics":
            declared.append(path)
    # what `dvc exp show` compares: the summary and the training's own metrics, not the details
    assert SUMMARY[dvc_yaml] in declared
    assert all(p == SUMMARY[dvc_yaml] or p.endswith("dvclive/metrics.json") for p in declared)
    assert _ignored((base / "dvc_plots/index.html").as_posix())  # `dvc plots show` writes it
    text = dvc_yaml.read_text()
    assert "--no-progress" not in text  # a log gets progress lines now


def _dvc(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    r = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, f"dvc {' '.join(args)}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r


def _png(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 30, 30)).save(path)


@pytest.mark.slow
def test_root_commands_see_the_sample_pipeline_and_plots_render_offline(tmp_path):
    """A copy of the repository's DVC files: the root sees its own stages only and `dvc plots show`
    embeds the curves as images in its HTML (nothing to fetch), writing nothing under the
    experiments; each experiment folder sees its own stages."""
    files = [".dvc/config", ".dvcignore", ".gitignore", "dvc.yaml", "params.yaml"]
    for d in ("experiments/paper", "experiments/mini"):
        files += [f"{d}/{f}" for f in (".dvc/config", ".dvcignore", ".gitignore", "dvc.yaml",
                                         "params.yaml")]  # fmt: skip
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / f, tmp_path / f)
    for name in ("pipeline", "trainer", "manifests"):
        (tmp_path / name).symlink_to(REPO / name, target_is_directory=True)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    root = _dvc("stage", "list", cwd=tmp_path).stdout
    assert [ln.split()[0] for ln in root.splitlines()] == [
        "synth", "manifest", "extract", "balance", "report", "train", "eval", "summary"
    ]  # fmt: skip
    paper = _dvc("stage", "list", cwd=tmp_path / "experiments" / "paper").stdout
    assert "train@fsfm_ba" in paper and "synth" not in paper
    status = _dvc("status", cwd=tmp_path).stdout
    assert "experiments" not in status

    # the curves of a run as the train and eval stages leave them
    metrics = tmp_path / "runs/sample/dvclive/plots/metrics"
    (metrics / "train").mkdir(parents=True)
    (metrics / "train" / "loss.tsv").write_text("step\tloss\n4\t1.0\n8\t0.5\n")
    _png(tmp_path / "runs/sample/dvclive/plots/images/curves.png")
    _png(tmp_path / "runs/sample/eval/plots/roc.png")
    _dvc("plots", "show", cwd=tmp_path)
    html = (tmp_path / "dvc_plots" / "index.html").read_text()
    for png in ("curves.png", "roc.png"):
        assert f"{png}" in html and "<img" in html, png
    assert not list((tmp_path / "experiments").rglob("dvc_plots"))
