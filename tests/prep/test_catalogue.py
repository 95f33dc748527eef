"""The dataset catalogue: it loads, matches the adapters and the trainer's classes, and rejects bad entries."""

from __future__ import annotations

import pytest
import yaml
from rich.console import Console

from dataset_fixtures import (
    make_celebdf,
    make_df40,
    make_dfdc,
    make_fakeavceleb,
    make_forgerynet,
    touch,
)
from dfprep.adapters import (
    AdapterOptions,
    celebdf,
    df40,
    dfd,
    dfdc,
    dfeval2024,
    fakeavceleb,
    ffpp,
    forgerynet,
    wilddeepfake,
)
from dfprep.adapters.splits import read_options
from dfprep.catalogue import (
    DEFAULT_PATH,
    attribution_classes,
    catalogue_table,
    load_catalogue,
    train_datasets,
)
from dfprep.core.errors import ConfigError
from dfprep.manifest import build_manifest
from dfprep.schema import LABEL_MODES, TRAIN_DATASETS, class_names

MODULES = {
    "ffpp": ffpp,
    "dfd": dfd,
    "celebdf": celebdf,
    "dfdc": dfdc,
    "fakeavceleb": fakeavceleb,
    "forgerynet": forgerynet,
    "df40": df40,
    "wilddeepfake": wilddeepfake,
    "dfeval2024": dfeval2024,
}


@pytest.fixture(scope="module")
def cat():
    return load_catalogue()


def test_attribution_order_and_classes_match_the_schema(cat):
    assert train_datasets(cat) == TRAIN_DATASETS  # the paper's order, also the trainer's default
    assert set(cat.names("train")) == set(TRAIN_DATASETS)
    for mode in LABEL_MODES:
        assert attribution_classes(mode, cat) == class_names(mode, TRAIN_DATASETS)
    assert attribution_classes("dataset", cat)[0] == "real"
    assert attribution_classes("category", cat) == ["real", "FS", "RE"]
    assert set(cat.names("ood")) == {"df40", "df40-ff", "dfd"}
    assert set(cat.names("wild")) >= {"wilddeepfake", "dfeval2024"}


def test_catalogue_methods_are_the_adapters_methods(cat):
    assert dict(cat.entry("ffpp").methods) == ffpp.METHOD_CATEGORY
    assert dict(cat.entry("fakeavceleb").methods) == fakeavceleb.METHOD_CATEGORY
    assert dict(cat.entry("df40").methods) == df40.METHOD_CATEGORY
    assert {m for ms in cat.entry("df40").out_of_scope.values() for m in ms} == set(df40.IMAGE_ONLY)
    for family, ms in cat.entry("df40").out_of_scope.items():
        assert all(df40.IMAGE_ONLY[m] == family for m in ms)
    assert dict(cat.entry("celebdf").methods) == {celebdf.METHOD: celebdf.CATEGORY}
    assert dict(cat.entry("dfdc").methods) == {dfdc.METHOD: dfdc.CATEGORY}


def test_catalogue_options_are_accepted_by_their_adapters(cat):
    for name, module in MODULES.items():
        e = cat.entry(name)
        assert e.adapter == name
        read_options(AdapterOptions(options=dict(e.options)), name, module.OPTIONS)
    assert cat.options_for("fakeavceleb", {"fake_audio": "keep"})["fake_audio"] == "keep"
    assert cat.options_for("fakeavceleb")["fake_audio"] == "exclude"
    assert cat.options_for("not-catalogued", {"a": "1"}) == {"a": "1"}


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("celebdf", make_celebdf),
        ("dfdc", make_dfdc),
        ("fakeavceleb", make_fakeavceleb),
        ("forgerynet", make_forgerynet),
        ("df40", make_df40),
    ],
)
def test_manifests_use_only_catalogued_methods(cat, tmp_path, name, make):
    make(tmp_path)
    e = cat.entry(name)
    opts = AdapterOptions(options=cat.options_for(name))
    fakes = [
        r
        for r in build_manifest(name, tmp_path, adapter=e.adapter, opts=opts).to_pylist()
        if r["label"] == 1
    ]
    assert fakes
    if e.methods:
        assert {(r["method"], r["category"]) for r in fakes} <= set(e.methods.items())
    else:  # forgerynet: per-video category from the triple label
        assert {r["category"] for r in fakes} <= {"FS", "RE"}


def test_ood_and_wild_datasets_are_test_data_as_a_whole(cat, tmp_path):
    """A dataset whose role is ood or wild is evaluated whole: its catalogued options put every
    video in the test split (WildDeepfake included: Table 2 counts all 7,314 sequences)."""
    from dataset_fixtures import make_dfeval2024, make_wilddeepfake

    (tmp_path / "itw" / "real").mkdir(parents=True)
    touch(tmp_path / "itw" / "real" / "a.mp4")
    touch(tmp_path / "itw" / "fake" / "b.mp4")
    makers = {"df40": make_df40, "wilddeepfake": make_wilddeepfake, "dfeval2024": make_dfeval2024}
    built = set()
    for name in cat.names("ood") + cat.names("wild"):
        e = cat.entry(name)
        root = tmp_path / "itw" if name == "itw" else tmp_path / e.adapter
        if e.adapter in makers and not root.exists():
            makers[e.adapter](root)
        if not root.exists():
            continue  # dfd, df40-ff: fixtures elsewhere (test_adapters_pairing, test_adapters)
        opts = AdapterOptions(options=cat.options_for(name))
        table = build_manifest(name, root, adapter=e.adapter, opts=opts)
        assert set(table["split"].to_pylist()) == {"test"}, name
        built.add(name)
        for x in e.expected:  # the count check's figures sit in the test rows
            assert all(c in ("real", "fake", "total") or c.startswith("test") for c in x.counts)
    assert built >= {"df40", "wilddeepfake", "dfeval2024", "itw"}


def test_expected_counts_add_up(cat):
    """Each source's cells agree with each other: split cells sum to the class cells and the total."""
    for name, e in cat.datasets.items():
        for x in e.expected:
            c = x.counts
            for cls in ("real", "fake"):
                parts = [c.get(f"{s}.{cls}") for s in ("train", "val", "test")]
                if cls in c and all(p is not None for p in parts):
                    assert sum(parts) == c[cls], (name, x.source, cls)
            splits = [c.get(s) for s in ("train", "val", "test")]
            if all(v is not None for v in splits) and "real" in c and "fake" in c:
                assert sum(splits) == c["real"] + c["fake"], (name, x.source)
            if "total" in c and "real" in c and "fake" in c:
                assert c["total"] == c["real"] + c["fake"], (name, x.source)
    assert {n for n, e in cat.datasets.items() if e.faces == "shipped"} == {
        "df40",
        "df40-ff",
        "wilddeepfake",
    }
    assert set(cat.names("train")) == {n for n, e in cat.datasets.items() if e.samples}


def test_table_lists_every_dataset(cat):
    console = Console(record=True, width=250)
    console.print(catalogue_table(cat))
    text = console.export_text()
    for name, e in cat.datasets.items():
        assert name in text and e.role in text
    assert "derived: train, val, test" in text  # FakeAVCeleb has no official split


def _write(tmp_path, mutate) -> str:
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    mutate(data)
    p = tmp_path / "catalogue.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(p)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda d: d["datasets"]["df40"].update(role="test"),
            r"catalogue.yaml:\d+: dataset df40: role 'test' is not one of",
        ),
        (
            lambda d: d["datasets"]["dfdc"].update(adapter="dfdc2"),
            r"dataset dfdc: unknown adapter 'dfdc2'",
        ),
        (
            lambda d: d["datasets"]["celebdf"]["methods"].update({"x": "FE"}),
            r"dataset celebdf: method 'x' has category 'FE'",
        ),
        (
            lambda d: d["datasets"]["celebdf"].update(colour="red"),
            r"dataset celebdf: unknown key\(s\) colour",
        ),
        (lambda d: d["datasets"]["celebdf"].pop("adapter"), r"dataset celebdf: missing adapter"),
        (lambda d: d["datasets"]["celebdf"].update(derived=["dev"]), r"derived split 'dev'"),
        (
            lambda d: d["attribution"]["datasets"].remove("dfdc"),
            r"training dataset 'dfdc' has no attribution class",
        ),
        (
            lambda d: d["attribution"]["datasets"].append("df40"),
            r"names 'df40', which is not a dataset with role train",
        ),
        (lambda d: d["attribution"]["datasets"].append("ffpp"), r"lists a dataset twice"),
        (lambda d: d.update(extra=1), r"unknown top-level key\(s\) extra"),
        (
            lambda d: d["datasets"]["wilddeepfake"].update(faces="crop"),
            r"dataset wilddeepfake: faces 'crop' is not one of detect, shipped",
        ),
        (
            lambda d: d["datasets"]["dfdc"]["expected"][0].update({"train.all": 1}),
            r"dataset dfdc: expected\[0\]: unknown cell 'train.all'",
        ),
        (
            lambda d: d["datasets"]["dfdc"]["expected"][1].update(val=-4),
            r"dataset dfdc: expected\[1\].val: expected a count",
        ),
        (
            lambda d: d["datasets"]["dfdc"]["expected"][0].pop("source"),
            r"dataset dfdc: expected\[0\]: needs a `source`",
        ),
        (
            lambda d: d["datasets"]["dfdc"].update(expected={"train": 1}),
            r"dataset dfdc: expected: expected a list",
        ),
        (
            lambda d: d["datasets"]["ffpp"]["samples"].update(FS=3),
            r"dataset ffpp: samples must map real / fake",
        ),
    ],
)
def test_bad_catalogues_name_the_culprit(tmp_path, mutate, match):
    with pytest.raises(ConfigError, match=match):
        load_catalogue(_write(tmp_path, mutate))


def test_missing_or_broken_catalogue(tmp_path):
    with pytest.raises(ConfigError, match="dataset catalogue not found"):
        load_catalogue(tmp_path / "none.yaml")
    (tmp_path / "c.yaml").write_text("datasets: [\n")
    with pytest.raises(ConfigError, match=r"c.yaml: not valid YAML"):
        load_catalogue(tmp_path / "c.yaml")


def test_an_in_house_dataset_is_one_entry(tmp_path):
    path = _write(
        tmp_path,
        lambda d: d["datasets"].update(
            lab={
                "title": "Lab recordings",
                "adapter": "folder",
                "role": "wild",
                "options": {"split": "test"},
            }
        ),
    )
    cat = load_catalogue(path)
    e = cat.entry("lab")
    root = tmp_path / "lab"
    touch(root / "real/a.mp4")
    touch(root / "fake/sub dir/b.mp4")
    rows = build_manifest(
        "lab", root, adapter=e.adapter, opts=AdapterOptions(options=cat.options_for("lab"))
    ).to_pylist()
    assert sorted((r["label"], r["split"], r["dataset"]) for r in rows) == [
        (0, "test", "lab"),
        (1, "test", "lab"),
    ]
    assert cat.get("nope") is None
    with pytest.raises(ConfigError, match="no dataset 'nope'"):
        cat.entry("nope")
