"""The dataset miniatures, the paper's Table 3 beside ours, and the experiment's DVC pipeline
run end to end (cut down: two configurations, every dataset)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from dfprep.adapters import AdapterOptions
from dfprep.catalogue import load_catalogue
from dfprep.config import SynthConfig
from dfprep.manifest import build_manifest
from dfprep.synth.kinds import TRAIN_KINDS
from dfprep.synth.suite import DATASETS, synth_suite
from dftrain.paper_table import AUC, COLUMNS, render_paper, scenario_figure
from dftrain.results_table import Run

REPO = Path(__file__).resolve().parents[2]
ADAPTER = {"itw": "folder"}
TINY = SynthConfig(
    seed=0, originals=4, seconds=1.0, sizes=("128x96",), rates=(5.0,), workers=2, layout="all"
)


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> dict:
    return synth_suite(tmp_path_factory.mktemp("suite") / "raw", TINY)


def _manifest(suite: dict, ds: str, adapter: str | None = None):
    cat = load_catalogue()
    name = adapter or ds
    opts = AdapterOptions(options=cat.options_for(name))
    faces = cat.get(name).faces if cat.get(name) else "detect"
    root = Path(suite["datasets"][ds])
    return build_manifest(
        name,
        root,
        adapter=ADAPTER.get(ds, cat.get(name).adapter if cat.get(name) else None),
        opts=opts,
        faces=faces,
    ), root


def test_every_miniature_is_read_by_its_real_adapter_with_the_labels_it_was_made_with(suite):
    records = defaultdict(dict)
    for r in suite["records"]:
        records[r["dataset"]][r["rel"]] = r
    cat = load_catalogue()
    for ds in DATASETS:
        whole = cat.get(ds).role in ("ood", "wild")  # test data as a whole, whatever its folders
        table, root = _manifest(suite, ds)
        rows = table.to_pylist()
        assert rows, ds
        got = {Path(r["path"]).relative_to(root.resolve()).as_posix(): r for r in rows}
        want = {
            rel: r
            for rel, r in records[ds].items()
            if not (ds == "ffpp" and ("/actors/" in rel or "DeepFakeDetection" in rel))
        }
        assert set(got) == set(want), ds  # nothing lost, nothing extra (FF++ without its DFD part)
        for rel, r in got.items():
            assert r["label"] == want[rel]["label"], (ds, rel)
            if whole:
                assert r["split"] == "test", (ds, rel)
            elif (
                want[rel]["split"] is not None
            ):  # made for a split the adapter reads from the layout
                assert r["split"] == want[rel]["split"], (ds, rel)
    dfd, _ = _manifest(suite, "ffpp", adapter="dfd")
    assert sorted(dfd["label"].to_pylist()) == [0, 0, 1, 1]
    fnet, _ = _manifest(suite, "forgerynet")
    assert any(s for s in fnet["fake_segments"].to_pylist()), (
        "a partly manipulated ForgeryNet video"
    )
    assert set(_manifest(suite, "df40")[0]["faces"].to_pylist()) == {"shipped"}


def test_identities_never_cross_splits_and_the_test_sets_hold_unseen_kinds(suite):
    split_of = {}
    for ds in DATASETS:
        table, root = _manifest(suite, ds)
        for r in table.to_pylist():
            split_of[(ds, Path(r["path"]).relative_to(root.resolve()).as_posix())] = r["split"]
    people = defaultdict(set)
    for r in suite["records"]:
        split = split_of.get((r["dataset"], r["rel"]))
        if split is None:  # FF++'s DFD part: not read by ffpp
            continue
        people[split] |= {r["ident"]} | ({r["donor"]} if r["donor"] >= 0 else set())
    assert people["train"] and people["test"]
    assert not people["train"] & people["test"]
    assert not people["val"] & people["test"]
    assert not people["train"] & people["val"]
    cat = load_catalogue()
    kinds = defaultdict(set)
    for r in suite["records"]:
        if r["label"] == 1:
            kinds[r["dataset"]].add(r["kind"])
    for ds in DATASETS:
        role = cat.get(ds).role
        if role == "train":
            assert kinds[ds] <= TRAIN_KINDS, ds
        else:
            assert kinds[ds] - TRAIN_KINDS, f"{ds}: no manipulation kind unseen in training"


def _run(name: str, datasets: dict, init: str = "none") -> Run:
    metrics = {
        "datasets": {ds: {"summary": {"auc": v, "bacc": v}} for ds, v in datasets.items()},
        "scenarios": {"in_distribution": {"auc": 0.9, "bacc": 0.8}},
    }
    if "df40" in datasets:
        metrics["datasets"]["df40"]["categories"] = {
            "FS": {"auc": 0.7, "bacc": 0.6},
            "RE": {"auc": 0.6, "bacc": 0.55},
        }
    return Run(name, metrics, {"init": init, "model": "vit_tiny_patch16_224"})


def test_table3_puts_the_papers_number_beside_ours_and_says_what_is_missing(tmp_path):
    runs = [
        _run("FSFM", {"ffpp": 0.97, "celebdf": 0.88, "df40": 0.65}),
        _run("FSFM + BA", {"ffpp": 0.95}, init="fsfm:/w/checkpoint-400.pth"),
        _run("Control: shuffled labels", {"ffpp": 0.5}),
    ]
    text = render_paper(runs, ("auc",))
    lines = {ln.split(" | ")[0].lstrip("| "): ln for ln in text.splitlines() if ln.startswith("| ")}
    assert lines["FSFM"].split(" | ")[1:3] == ["97.0 (96)", "88.0 (99.8)"]
    assert "70.0 (95)" in lines["FSFM"] and "90.0 (96.4)" in lines["FSFM"]  # DF40 FS, ID avg
    assert "not run (88.2)" in lines["SBI"]  # no SBI run given: its row waits for one
    assert "not run (99.3)" in lines["ImageNet pretrained"]
    assert (
        lines["Control: shuffled labels"].split(" | ")[1] == "50.0"
    )  # a row the paper does not have
    assert (
        "not evaluated (no data given): dfdc, fakeavceleb, forgerynet, wilddeepfake, itw, dfeval2024"
        in text
    )
    assert "FSFM: random initialisation stands in for FSFM's checkpoint-400.pth" in text
    assert "FSFM + BA: random" not in text  # real FSFM weights: no stand-in note
    assert len(COLUMNS) == len(AUC["FSFM"]) == 13
    png = scenario_figure(runs, tmp_path / "t3.png")
    assert png.stat().st_size > 5000


def test_an_sbi_run_fills_the_sbi_row_in_both_tables():
    runs = [_run("FSFM", {"ffpp": 0.97}), _run("SBI", {"ffpp": 0.8, "df40": 0.7})]
    text = render_paper(runs)
    rows = [ln for ln in text.splitlines() if ln.startswith("| SBI |")]
    assert len(rows) == 2  # AUC and bACC
    assert rows[0].split(" | ")[1] == "80.0 (88.2)" and rows[1].split(" | ")[1] == "80.0 (70)"
    assert "70.0 (82.8)" in rows[0]  # DF40 FS beside the paper's
    assert "SBI: this project's SBI (`dftrain run --sbi`" in text
    assert "SBI: random initialisation stands in for ImageNet EfficientNet-B4 weights" in text
    assert "not reproduced" not in text
    assert "SBI: this project's" not in render_paper(runs[:1])  # no row, no note


def _link_repo(tmp: Path) -> Path:
    """A throw-away git + DVC repository with the experiment next to this checkout's code."""
    for name in ("pipeline", "trainer", "manifests"):
        (tmp / name).symlink_to(REPO / name, target_is_directory=True)
    exp = tmp / "experiments" / "cut"
    exp.mkdir(parents=True)
    shutil.copy(REPO / "experiments" / "paper" / "dvc.yaml", exp / "dvc.yaml")
    shutil.copy(REPO / "experiments" / "paper" / ".gitignore", exp / ".gitignore")
    params = yaml.safe_load((REPO / "experiments" / "mini" / "params.yaml").read_text())
    params["synth"].update(originals=4, seconds=2.0, sizes=["192x144"], rates=[5.0])
    params["configs"] = {k: params["configs"][k] for k in ("fsfm", "fsfm_ba")}  # two configurations
    params["extract_args"] = "--scheduler inline --videos-per-shard 64"
    params["balance_args"] = "--scheduler inline"
    params["decode"] = {"fps": 1.0}
    params["train"]["optim"].update(epochs=1, warmup_epochs=0.0)
    (exp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return exp


@pytest.mark.slow
@pytest.mark.timeout(1500)  # a guard (the shared machine it was written on ran 6x over its cores)
def test_dvc_repro_of_the_experiment_gives_table3_then_experiments_compare(tmp_path):
    """`dvc repro` of the experiment (a DVC project of its own, as experiments/paper is), Table 3
    for every dataset; then as a user compares runs: a committed baseline, `dvc exp run -S`, a
    queued one, `dvc exp show`, `dvc params diff`, `dvc metrics diff`, `dvc exp apply`."""
    exp = _link_repo(tmp_path)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": "1",
    }

    def sh(*cmd, cwd=exp):
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1400)
        assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return r

    sh("git", "init", "-q", cwd=tmp_path)
    sh(sys.executable, "-m", "dvc", "init", "-q", cwd=tmp_path)
    sh(sys.executable, "-m", "dvc", "init", "-q", "--subdir")  # experiments/cut: its own project
    # the links to the code too: a queued experiment runs in a clone of what git holds
    sh("git", "add", ".dvc", "experiments/cut", "pipeline", "trainer", "manifests", cwd=tmp_path)
    sh(
        "git",
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.org",
        "commit",
        "-qm",
        "experiment",
        cwd=tmp_path,
    )  # dvclive (in dftrain run) needs a commit to name its experiment after
    sh("dfprep", "synth", "data/raw", "--params", "params.yaml")
    sh(sys.executable, "-m", "dvc", "repro")
    table = (exp / "results" / "table3.md").read_text()
    rows = {
        ln.split(" | ")[0].lstrip("| "): ln.split(" | ")[1:]
        for ln in table.splitlines()
        if ln.startswith("| ")
    }
    for row in ("FSFM", "FSFM + BA"):
        cells = [c.strip(" |") for c in rows[row]]
        assert len(cells) == 13
        for c in cells:  # every dataset and scenario evaluated: a number beside the paper's
            ours, paper = c.split(" (")
            assert 0 <= float(ours) <= 100 and float(paper.rstrip(")")) > 50, (row, c)
    assert rows["FSFM + HP-HN"][0].startswith("not run")
    assert "not evaluated" not in table
    assert "random initialisation stands in for FSFM's checkpoint-400.pth" in table
    assert (exp / "results" / "table3.png").stat().st_size > 5000
    status = sh(sys.executable, "-m", "dvc", "status").stdout
    assert "changed" not in status  # everything up to date after one repro
    _compare_runs(exp, sh)


def _compare_runs(exp: Path, sh) -> None:
    import json

    def dvc(*args):
        return sh(sys.executable, "-m", "dvc", *args).stdout

    git = ("git", "-c", "user.name=test", "-c", "user.email=test@example.org")
    sh("git", "add", "-A", ".")  # the results: git tracks them, .gitignore keeps the data out
    staged = sh("git", "diff", "--cached", "--name-only", "--relative").stdout.split()
    assert "results/summary.json" in staged and "runs/fsfm/dvclive/metrics.json" in staged
    assert not [f for f in staged if f.startswith("data/") or f.endswith((".tar", ".safetensors"))]
    sh(*git, "commit", "-qm", "baseline")
    dvc("exp", "run", "-n", "lr2", "-S", "train.optim.lr=0.002", "train@fsfm")
    dvc("exp", "run", "--queue", "-n", "lr3", "-S", "train.optim.lr=0.003", "train@fsfm")
    dvc("queue", "start", "-j", "1")
    for _ in range(240):  # the queue's worker runs it in a copy of the repository
        if not re.search(r"Queued|Running", dvc("queue", "status")):
            break
        time.sleep(2)
    assert "Success" in dvc("queue", "status"), dvc("queue", "logs", "lr3")
    rows = {}
    for base in json.loads(dvc("exp", "show", "--json")):
        for r in [base, *(base.get("experiments") or [])]:
            for rev in r.get("revs", [r]) if "revs" in r else [r]:
                data = rev.get("data") or {}
                rows[rev.get("name") or rev.get("rev")] = data
    summary = rows["workspace"]  # the last run's files
    baseline = next(v for k, v in rows.items() if k not in ("workspace", "lr2", "lr3"))

    def metric(row, path, key):
        return (row.get("metrics", {}).get(path, {}).get("data") or {}).get(key)

    live = "runs/fsfm/dvclive/metrics.json"
    assert metric(baseline, "results/summary.json", "fsfm")["ID"]["auc"] is not None
    for name, lr in (("lr2", 0.002), ("lr3", 0.003)):  # both runs, with their own metrics
        assert metric(rows[name], live, "lr/effective") == pytest.approx(lr), name
        assert metric(rows[name], live, "best/val_loss") is not None, name
    assert metric(summary, live, "lr/effective") == pytest.approx(0.002)
    assert "train.optim.lr" in dvc("params", "diff")
    assert "lr/effective" in dvc("metrics", "diff") and "failed" not in dvc("metrics", "diff")
    sh("git", "checkout", "--", ".")  # back to the baseline's files ...
    dvc("exp", "apply", "lr3")  # ... and an experiment's results come back with it
    applied = json.loads((exp / live).read_text())
    assert applied["lr/effective"] == pytest.approx(0.003)


def test_the_shuffled_label_control_is_fixed_per_video_and_uniform():
    from dftrain.labels import shuffled_class

    ids = [f"ffpp-video-{i:04d}" for i in range(2000)]
    ys = [shuffled_class(v, 2) for v in ids]
    assert ys == [shuffled_class(v, 2) for v in ids]  # the same class for every crop of a video
    assert 0.45 < sum(ys) / len(ys) < 0.55
    assert set(shuffled_class(v, 6) for v in ids) == set(range(6))


def test_eval_data_dir_of_extract_folders_expands_to_each(tmp_path):
    from dftrain.testset import Source, expand_sources

    for d in ("train/ffpp", "train/dfdc", "wild/itw"):
        (tmp_path / "extract" / d / "shards").mkdir(parents=True)
    (tmp_path / "plain" / "shards").mkdir(parents=True)
    got = expand_sources(
        [Source(tmp_path / "extract"), Source(tmp_path / "plain"), Source(tmp_path / "nothing")]
    )
    assert [s.root.relative_to(tmp_path).as_posix() for s in got] == [
        "extract/train/dfdc",
        "extract/train/ffpp",
        "extract/wild/itw",
        "plain",
        "nothing",
    ]
