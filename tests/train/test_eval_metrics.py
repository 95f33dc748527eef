"""dftrain eval's arithmetic: metrics against scikit-learn, video aggregation, no-face videos,
per-method / FS / RE / scenario averages, attribution scores, and the Table 3 layout."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import torch
from scipy.optimize import brentq
from sklearn.metrics import balanced_accuracy_score, roc_auc_score, roc_curve

from dfprep.core.errors import ConfigError
from dftrain.aggregate import both_policies, dataset_metrics, evaluation_metrics, video_scores
from dftrain.config import EvalConfig, eval_defaults, load_eval_params
from dftrain.evaluate import _json_safe
from dftrain.labels import fake_probability
from dftrain.metrics import average, balanced_accuracy, eer, group_mean, roc_auc
from dftrain.results_table import Run, columns, markdown_table, render


def _random_set(seed: int, n: int, fake_share: float, decimals: int | None = None):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < fake_share).astype(int)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    if decimals is not None:
        s = np.round(s, decimals)  # many ties
    return y, s


@pytest.mark.parametrize(
    "seed, n, share, decimals", [(0, 50, 0.5, None), (1, 200, 0.9, 1), (2, 31, 0.1, 2)]
)
def test_auc_and_bacc_equal_sklearn(seed, n, share, decimals):
    y, s = _random_set(seed, n, share, decimals)
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    for t in (0.3, 0.5, 0.7):
        assert balanced_accuracy(y, s, t) == pytest.approx(
            balanced_accuracy_score(y, (s >= t).astype(int)), abs=1e-12
        )


def test_bacc_on_an_imbalanced_set_is_not_accuracy():
    y = np.array([0] * 2 + [1] * 98)
    s = np.full(100, 0.9)  # everything called fake: 98 % accurate, but every real is wrong
    assert balanced_accuracy(y, s, 0.5) == pytest.approx(0.5)
    s[:1] = 0.1  # one of the two reals right
    assert balanced_accuracy(y, s, 0.5) == pytest.approx((0.5 + 1.0) / 2)
    assert balanced_accuracy(y, np.full(100, 0.5), 0.5) == pytest.approx(0.5)  # 0.5 >= 0.5: fake


def test_one_class_gives_nan_auc_and_eer_not_an_exception():
    assert math.isnan(roc_auc([1, 1, 1], [0.2, 0.4, 0.9]))
    assert math.isnan(eer([0, 0], [0.2, 0.4]))
    assert balanced_accuracy([1, 1, 1, 1], [0.2, 0.6, 0.7, 0.9], 0.5) == pytest.approx(0.75)
    assert math.isnan(balanced_accuracy([], []))
    with pytest.raises(ValueError, match="labels must be 0"):
        roc_auc([0, 2], [0.1, 0.2])


def _brentq_eer(y, s):
    """The reference implementations' EER (FSFM, DeepfakeBench): root of 1 - x - TPR(x)."""
    fpr, tpr, _ = roc_curve(y, s)
    return brentq(lambda x: 1.0 - x - np.interp(x, fpr, tpr), 0.0, 1.0)


@pytest.mark.parametrize("seed, n, share", [(3, 40, 0.5), (4, 300, 0.2), (5, 17, 0.7)])
def test_eer_matches_the_brentq_reference(seed, n, share):
    y, s = _random_set(seed, n, share)
    assert eer(y, s) == pytest.approx(_brentq_eer(y, s), abs=1e-9)


def test_eer_known_values():
    assert eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert eer([0, 0, 1, 1], [0.8, 0.9, 0.1, 0.2]) == 1.0
    assert eer([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]) == pytest.approx(0.5)
    assert eer([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)  # all tied


def test_group_mean_and_average():
    ids, means, counts = group_mean(["b", "a", "b", "c", "b"], [0.1, 0.4, 0.3, 1.0, 0.5])
    assert ids.tolist() == ["a", "b", "c"]
    assert means.tolist() == pytest.approx([0.4, 0.3, 1.0])
    assert counts.tolist() == [1, 3, 1]
    assert average([0.5, 0.7]) == pytest.approx(0.6)
    assert math.isnan(average([0.5, float("nan")])) and math.isnan(average([]))


def _videos(rows):
    """Test-list rows: (video_id, dataset, label, method, category, status)."""
    keys = ("video_id", "dataset", "label", "method", "category", "status")
    return pa.Table.from_pylist([dict(zip(keys, r, strict=True)) for r in rows])


def _frames(rows):
    """Crop rows: (video_id, dataset, crop label, p_fake)."""
    keys = ("video_id", "dataset", "label", "p_fake")
    return pa.Table.from_pylist([dict(zip(keys, r, strict=True)) for r in rows])


def test_video_score_is_the_mean_of_its_crops_and_no_face_videos_are_kept():
    videos = _videos([
        ("r1", "x", 0, "real", "real", "ok"), ("r2", "x", 0, "real", "real", "ok"),
        ("f1", "x", 1, "m", "FS", "ok"), ("f2", "x", 1, "m", "FS", "ok"),
        ("nf", "x", 1, "m", "FS", "no_face"), ("bad", "x", 0, "real", "real", "failed"),
    ])  # fmt: skip
    frames = _frames([
        ("r1", "x", 0, 0.1), ("r1", "x", 0, 0.5), ("r2", "x", 0, 0.6),
        ("f1", "x", 1, 0.9), ("f1", "x", 1, 0.7), ("f1", "x", 1, 0.2), ("f2", "x", 1, 0.6),
    ])  # fmt: skip
    v = video_scores(videos, frames, no_face_score=0.5)
    got = dict(zip(v["video_id"].to_pylist(), v["p_fake"].to_pylist(), strict=True))
    assert got == pytest.approx({"r1": 0.3, "r2": 0.6, "f1": 0.6, "f2": 0.6, "nf": 0.5, "bad": 0.5})
    assert v["default_score"].to_pylist() == [False, False, False, False, True, True]
    assert v["scored_crops"].to_pylist() == [2, 1, 3, 1, 0, 0]
    d, _ = dataset_metrics(v, frames, 0.5, "train", no_face="score")
    # r2, f1 and f2 tie at 0.6: sklearn gives the tied pairs half credit; no-face videos count
    y, s = [0, 0, 1, 1, 1, 0], [0.3, 0.6, 0.6, 0.6, 0.5, 0.5]
    assert d["video"]["auc"] == pytest.approx(roc_auc_score(y, s))
    assert d["video"]["bacc"] == pytest.approx(
        balanced_accuracy_score(y, [int(x >= 0.5) for x in s])
    )
    assert (d["video"]["n"], d["video"]["real"], d["video"]["fake"]) == (6, 3, 3)
    assert d["videos"] == {
        "test": 6, "ok": 4, "no_face": 1, "failed": 1, "default_score": 2, "dropped": 0,
    }  # fmt: skip
    # no_face: drop (the default): the video metrics leave nf and bad out, the counts keep them
    dd, _ = dataset_metrics(v, frames, 0.5, "train")
    y4, s4 = [0, 0, 1, 1], [0.3, 0.6, 0.6, 0.6]
    assert dd["video"]["auc"] == pytest.approx(roc_auc_score(y4, s4))
    assert dd["video"]["bacc"] == pytest.approx(0.75)  # r2 at 0.6 is the one error
    assert (dd["video"]["n"], dd["videos"]["test"], dd["videos"]["dropped"]) == (4, 6, 2)
    assert dd["frame"] == d["frame"]  # crops are crops: the policy only concerns videos
    both = both_policies(v, frames, 0.5, {"x": "train"}, "drop")
    assert both["policy"] == "drop" and both["videos"] == 2
    assert both["drop"]["datasets"]["x"] == {
        **{k: dd["video"][k] for k in ("auc", "bacc")},
        "videos": 4,
    }
    assert both["score"]["datasets"]["x"] == {
        **{k: d["video"][k] for k in ("auc", "bacc")},
        "videos": 6,
    }
    assert both["score"]["scenarios"]["in_distribution"]["auc"] == d["video"]["auc"]
    assert both["drop"]["all"]["videos"] == 4 and both["score"]["all"]["videos"] == 6
    fy, fs = [0, 0, 0, 1, 1, 1, 1], [0.1, 0.5, 0.6, 0.9, 0.7, 0.2, 0.6]
    assert d["frame"]["auc"] == pytest.approx(roc_auc_score(fy, fs))
    assert d["frame"]["eer"] == pytest.approx(_brentq_eer(fy, fs), abs=1e-9)
    assert d["frame"]["n"] == 7
    v2 = video_scores(videos, frames, no_face_score=1.0)  # the parameter is honoured
    assert v2["p_fake"].to_pylist()[4:] == [1.0, 1.0]


def test_crops_of_a_video_outside_the_test_list_are_refused():
    videos = _videos([("a", "x", 0, "real", "real", "ok")])
    with pytest.raises(ValueError, match="not in the test list"):
        video_scores(videos, _frames([("a", "x", 0, 0.2), ("zz", "x", 1, 0.9)]), 0.5)


def test_attribution_scores_are_summed_before_averaging_over_crops():
    # two crops of one video under a 4-class head (real + 3 sources): the fake mass is spread
    probs = torch.tensor([[0.40, 0.20, 0.20, 0.20], [0.70, 0.10, 0.10, 0.10]])
    p = fake_probability(torch.log(probs))
    assert p.tolist() == pytest.approx([0.6, 0.3])
    frames = _frames([("v", "x", 1, float(p[0])), ("v", "x", 1, float(p[1]))])
    v = video_scores(_videos([("v", "x", 1, "m", "FS", "ok")]), frames, 0.5)
    assert v["p_fake"].to_pylist() == pytest.approx([0.45])  # not the mean top fake class (0.2)


def _scored(rows):
    """Scored videos: (video_id, dataset, label, method, category, p_fake)."""
    t = _videos([(*r[:5], "ok") for r in rows])
    return t.append_column("p_fake", pa.array([r[5] for r in rows], pa.float64())).append_column(
        "default_score", pa.array([False] * len(rows))
    )


def _df40_like():
    rows = [("r1", "df40", 0, "real", "real", 0.2), ("r2", "df40", 0, "real", "real", 0.6)]
    rows += [("a1", "df40", 1, "simswap", "FS", 0.9), ("a2", "df40", 1, "simswap", "FS", 0.4)]
    rows += [("b1", "df40", 1, "inswap", "FS", 0.7), ("b2", "df40", 1, "inswap", "FS", 0.8)]
    rows += [("b3", "df40", 1, "inswap", "FS", 0.3)]  # methods of unequal size: pooled != averaged
    rows += [("c1", "df40", 1, "fomm", "RE", 0.1), ("c2", "df40", 1, "fomm", "RE", 0.3)]
    return rows


def test_per_method_metrics_use_all_reals_and_fs_re_average_over_methods():
    v = _scored(_df40_like())
    frames = _frames([(r[0], "df40", r[2], r[5]) for r in _df40_like()])
    d, cats = dataset_metrics(v, frames, 0.5, "ood")
    assert cats == {"fomm": "RE", "inswap": "FS", "simswap": "FS"}
    reals = [0.2, 0.6]
    for m, fakes in {"simswap": [0.9, 0.4], "inswap": [0.7, 0.8, 0.3], "fomm": [0.1, 0.3]}.items():
        y, s = [0, 0] + [1] * len(fakes), reals + fakes
        assert d["methods"][m]["auc"] == pytest.approx(roc_auc_score(y, s))
        assert d["methods"][m]["bacc"] == pytest.approx(
            balanced_accuracy_score(y, [int(x >= 0.5) for x in s])
        )
    fs = (d["methods"]["simswap"]["auc"] + d["methods"]["inswap"]["auc"]) / 2
    assert d["categories"]["FS"]["auc"] == pytest.approx(fs)
    assert d["categories"]["RE"]["auc"] == pytest.approx(d["methods"]["fomm"]["auc"])
    assert d["categories"]["all"]["auc"] == pytest.approx(
        np.mean([d["methods"][m]["auc"] for m in d["methods"]])
    )
    assert d["categories"]["FS"]["methods"] == 2 and d["categories"]["all"]["methods"] == 3
    # an ood dataset is summarised by its method average, an in-distribution one by the pooled AUC
    assert d["summary"]["auc"] == pytest.approx(d["categories"]["all"]["auc"])
    d_train, _ = dataset_metrics(v, frames, 0.5, "train")
    assert d_train["summary"]["auc"] == pytest.approx(d_train["video"]["auc"])
    assert d_train["video"]["auc"] != pytest.approx(d["summary"]["auc"])


def test_scenarios_average_dataset_summaries_by_catalogue_role():
    rows = _df40_like()
    rows += [("p1", "ffpp", 0, "real", "real", 0.1), ("p2", "ffpp", 1, "Deepfakes", "FS", 0.9)]
    rows += [
        ("q1", "celebdf", 0, "real", "real", 0.6),
        ("q2", "celebdf", 1, "Celeb-synthesis", "FS", 0.4),
    ]
    rows += [
        ("w1", "wilddeepfake", 0, "unknown", "real", 0.3),
        ("w2", "wilddeepfake", 1, "unknown", "unknown", 0.35),
    ]
    rows += [("z1", "mine", 0, "real", "real", 0.3), ("z2", "mine", 1, "m", "FS", 0.9)]
    v = _scored(rows)
    frames = _frames([(r[0], r[1], r[2], r[5]) for r in rows])
    roles = {"ffpp": "train", "celebdf": "train", "df40": "ood", "wilddeepfake": "wild"}
    m, cats = evaluation_metrics(v, frames, 0.5, roles)
    ds = m["datasets"]
    assert set(ds) == {"ffpp", "celebdf", "df40", "wilddeepfake", "mine"}
    assert (ds["ffpp"]["video"]["auc"], ds["celebdf"]["video"]["auc"]) == (1.0, 0.0)
    sc = m["scenarios"]
    assert set(sc) == {
        "in_distribution",
        "out_of_distribution",
        "in_the_wild",
    }  # "mine" has no role
    assert (
        sc["in_distribution"]["auc"] == pytest.approx(0.5)
        and sc["in_distribution"]["datasets"] == 2
    )
    assert sc["out_of_distribution"]["auc"] == pytest.approx(ds["df40"]["categories"]["all"]["auc"])
    assert sc["in_the_wild"]["bacc"] == pytest.approx(0.5)  # 0.3 and 0.35 are both called real
    assert m["all"]["video"]["n"] == len(rows)
    assert "methods" not in ds["ffpp"] and cats["ffpp"] == {}


def _run(name, auc, roles, extra=None):
    datasets = {
        ds: {
            "summary": {"auc": a, "bacc": a},
            "videos": {"test": 4, "no_face": 0, "failed": 0, "default_score": 0},
        }
        for ds, a in auc.items()
    }
    for ds, d in (extra or {}).items():
        datasets[ds].update(d)
    return Run(
        name,
        {"datasets": datasets, "scenarios": {}},
        {"roles": roles, "dataset_order": list(auc), "threshold": 0.5},
    )


def test_table3_columns_group_datasets_by_scenario():
    roles = {"ffpp": "train", "celebdf": "train", "df40": "ood", "wilddeepfake": "wild", "mine": ""}
    cats = {"df40": {"categories": {"FS": {"auc": 0.8}, "RE": {"auc": 0.6}, "all": {"auc": 0.7}}}}
    a = _run(
        "a",
        {"wilddeepfake": 0.6, "ffpp": 0.99, "df40": 0.7, "celebdf": 0.9, "mine": 0.5},
        roles,
        cats,
    )
    a.metrics["scenarios"]["in_distribution"] = {"auc": 0.945}
    b = _run("b", {"ffpp": 0.95}, {"ffpp": "train"})
    titles = [c.title for c in columns([a, b])]
    assert titles == ["FF++", "CDF", "ID avg", "DF40 FS", "DF40 RE", "DF40 avg", "WDF", "mine"]
    md = markdown_table([a, b], "auc")
    lines = md.splitlines()
    assert lines[0].startswith("| run | FF++ | CDF | ID avg | DF40 FS |")
    assert lines[2] == "| a | 99.0 | 90.0 | 94.5 | 80.0 | 60.0 | 70.0 | 60.0 | 50.0 |"
    assert lines[3] == "| b | 95.0 | – | – | – | – | – | – | – |"  # not evaluated: a dash


def test_table_notes_name_the_videos_scored_without_a_face():
    r = _run("a", {"ffpp": float("nan")}, {"ffpp": "train"})
    r.metrics["datasets"]["ffpp"]["videos"] = {
        "test": 10,
        "no_face": 2,
        "failed": 1,
        "default_score": 3,
    }
    text = render([r])
    assert "| a | – |" in text  # NaN (one class) renders as a dash
    assert (
        "a: FF++: 3 of 10 test videos had no face crop (2 no face, 1 unreadable) and were scored 0.5"
        in text
    )
    assert _json_safe({"x": [float("nan"), np.float32(0.5)]}) == {"x": [None, 0.5]}


def test_eval_params_defaults_overrides_and_errors(tmp_path):
    assert load_eval_params(None) == EvalConfig()
    assert eval_defaults()["threshold"] == 0.5 and eval_defaults()["no_face_score"] == 0.5
    p = tmp_path / "params.yaml"
    p.write_text("eval: {threshold: 0.7, split: val}\ntrain: {}\n")
    cfg = load_eval_params(p, batch_size=8, split=None)
    assert (cfg.threshold, cfg.split, cfg.batch_size) == (0.7, "val", 8)
    p.write_text("eval: {treshold: 0.7}\n")
    with pytest.raises(ConfigError, match="treshold"):
        load_eval_params(p)
    with pytest.raises(ConfigError, match=r"eval\.threshold"):
        load_eval_params(None, threshold=1.5)
    with pytest.raises(ConfigError, match=r"eval\.split"):
        load_eval_params(None, split="holdout")
    assert (
        EvalConfig().no_face == "drop"
        and load_eval_params(None, no_face="score").no_face == "score"
    )
    with pytest.raises(ConfigError, match=r"eval\.no_face: 'zero' is not one of drop, score"):
        load_eval_params(None, no_face="zero")
