"""Every parameter is validated when loaded: each field of each section is walked through hostile
values, straight from the dataclasses, so a field added later cannot slip through."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml

from dfprep.config import Params, load_params
from dfprep.core.config import (
    Bool,
    Caps,
    Checked,
    Choice,
    Float,
    Int,
    OrAuto,
    Seq,
    Text,
    override,
    rule_of,
    section_fields,
)
from dfprep.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
dftrain_config = pytest.importorskip("dftrain.config")
TrainConfig, EvalConfig = dftrain_config.TrainConfig, dftrain_config.EvalConfig

# each top-level section of params.yaml: (root dataclass, its section in the file or None = top level, loader)
ROOTS = [
    (Params, None, load_params),
    (TrainConfig, "train", dftrain_config.load_train_params),
    (EvalConfig, "eval", lambda p: dftrain_config.load_eval_params(p)),
]

HUGE = 10**18
HOSTILE = [0, -1, -(10**9), HUGE, 1e18, math.nan, math.inf, -math.inf, True, "banana", [1, 2], None]


def _walk(cls: type, path: tuple[str, ...] = ()):
    """(dotted path inside the root, owning class, field) of every value field, recursively."""
    nested = {f.name for f in dataclasses.fields(cls)} - {f.name for f in section_fields(cls)}
    for f in dataclasses.fields(cls):
        if f.name in nested:
            sub = type(getattr(cls(), f.name))
            yield from _walk(sub, (*path, f.name))
        else:
            yield (*path, f.name), cls, f


FIELDS = [
    (root, section, loader, path, owner, f)
    for root, section, loader in ROOTS
    for path, owner, f in _walk(root)
]
IDS = [".".join(((s,) if s else ()) + p) for _, s, _, p, _, _ in FIELDS]


def test_every_section_is_checked_and_every_field_has_a_rule():
    owners = {owner for *_, owner, _ in FIELDS}
    assert all(issubclass(o, Checked) for o in owners), owners
    missing = [i for i, (*_, f) in zip(IDS, FIELDS, strict=True) if rule_of(f) is None]
    assert not missing, f"fields without a rule (param(default, Rule)): {missing}"
    assert len(FIELDS) > 90  # every section of params.yaml is walked


def test_every_params_yaml_section_is_walked():
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    walked = {f.name for f in dataclasses.fields(Params)} | {"train", "eval"}
    assert set(data) <= walked


def _must_refuse(rule, v) -> bool:
    """Values no field of this kind may accept (the rest may be valid, e.g. 0 = auto)."""
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    if isinstance(rule, OrAuto):  # "auto", or what its rule takes
        return v != "auto" and _must_refuse(rule.rule, v)
    if isinstance(rule, (Int, Float)):
        return (
            not number
            or not math.isfinite(v)
            or abs(v) >= HUGE
            or (isinstance(rule, Int) and isinstance(v, float))
        )
    if isinstance(rule, (Choice, Bool)):
        return True if isinstance(rule, Choice) else not isinstance(v, bool)
    if isinstance(rule, Text):
        return v is not None and not isinstance(v, str)
    if isinstance(rule, Seq):
        return not isinstance(v, list)
    if isinstance(rule, Caps):
        return v is not None
    raise AssertionError(f"no expectation for rule {rule!r}")


def _nest(section, path, value):
    d = value
    for part in reversed(path):
        d = {part: d}
    return {section: d} if section else d


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.mark.parametrize(("root", "section", "loader", "path", "owner", "f"), FIELDS, ids=IDS)
def test_hostile_values_are_refused_naming_the_key(scratch, root, section, loader, path, owner, f):
    key = ".".join(((section,) if section else ()) + path)
    rule = rule_of(f)
    for i, value in enumerate(HOSTILE):
        p = scratch / f"{key}-{i}.yaml"
        p.write_text(yaml.safe_dump(_nest(section, path, value)))
        try:
            cfg = loader(p)
        except ConfigError as e:
            msg = str(e)
            assert "\n" not in msg and msg.startswith(f"{p}: {key}: "), msg
            if isinstance(rule, (Int, Float, Bool)) or (isinstance(rule, Choice) and not rule.noun):
                assert rule.allowed in msg, msg  # the allowed range is in the line
            continue
        assert not _must_refuse(rule, value), f"{key}: {value!r} was accepted"
        got = cfg
        for part in path:
            got = getattr(got, part)
        assert got == rule(value), (key, value)  # accepted as the rule reads it (null -> "")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, 1e12])
def test_overrides_go_through_the_same_rules(bad):
    with pytest.raises(ConfigError, match=r"^options: train\.optim\.lr: .* is not in \[0, 1\]$"):
        override(TrainConfig(), {"optim.lr": bad})
    with pytest.raises(
        ConfigError, match=r"^options: unknown parameter train\.optim\.learning_rate$"
    ):
        override(TrainConfig(), {"optim.learning_rate": 1e-3})
    cfg = override(
        Params(), {"decode.fps": 2, "balance.dataset_caps": {"b": 1, "a": 2}, "crop.size": None}
    )
    assert cfg.decode.fps == 2.0 and isinstance(cfg.decode.fps, float)
    assert list(cfg.balance.dataset_caps) == ["a", "b"] and cfg.crop.size == 224


def test_sections_are_validated_however_they_are_made():
    from dfprep.config import CropConfig, ReportConfig, RunConfig

    with pytest.raises(ConfigError, match=r"^crop\.margin: -5 is not in \[0, 4\]$"):
        CropConfig(margin=-5)
    with pytest.raises(ConfigError, match=r"^crop\.jpeg_quality: 500 is not in \[1, 100\]$"):
        dataclasses.replace(CropConfig(), jpeg_quality=500)
    with pytest.raises(ConfigError, match=r"^report\.thumb: a 6 x 8 sheet of 4096 px"):
        ReportConfig(thumb=4096)  # each value within its range, the sheet too big for memory
    with pytest.raises(
        ConfigError, match=r"^train\.optim\.min_lr: 0\.01 is above train\.optim\.lr"
    ):
        dftrain_config.OptimConfig(lr=1e-3, min_lr=1e-2)
    for bad in ("banana", "tcp://", "tcp://host:99999", "http://host:1", ":8786"):
        with pytest.raises(ConfigError, match=r"^run\.scheduler: "):
            RunConfig(scheduler=bad)
    for good in ("", "inline", "tcp://10.0.0.1:8786", "scheduler:8786", "tls://[::1]:8786"):
        assert RunConfig(scheduler=good).scheduler == good
    with pytest.raises(ConfigError, match=r"^run\.dashboard: 'banana'"):
        RunConfig(dashboard="banana")
    with pytest.raises(ConfigError, match=r"^run\.memory_limit: 'banana'"):
        RunConfig(memory_limit="banana")
    assert RunConfig(memory_limit="4 GiB", dashboard=":8787").memory_limit == "4 GiB"
    with pytest.raises(ConfigError, match=r"^train\.aug\.auto_augment: 'banana' is not a timm"):
        dftrain_config.AugConfig(auto_augment="banana")
    assert (
        dftrain_config.AugConfig(auto_augment="augmix-m5-w4-d2").auto_augment == "augmix-m5-w4-d2"
    )
    with pytest.raises(ConfigError, match=r"^train\.optim\.betas: 2 is not in \[0, 1\)$"):
        dftrain_config.OptimConfig(betas=(2, 0.999))
    with pytest.raises(ConfigError, match=r"^train\.optim\.betas: \[0\.9\]: expected a list of 2"):
        dftrain_config.OptimConfig(betas=(0.9,))


def test_the_params_hash_is_unchanged_by_validation():
    # the same value given as an int or read from YAML hashes the same (fields are normalised)
    from dfprep.config import DecodeConfig, ExtractConfig

    a = ExtractConfig(decode=DecodeConfig(fps=1))
    assert a.decode.fps == 1.0 and isinstance(a.decode.fps, float)
    assert a.params_hash() == load_params(ROOT / "params.yaml").extract.params_hash()


def test_detector_backends_match_the_rule():
    from dfprep.config import DETECT_BACKENDS
    from dfprep.detect import BACKENDS

    assert set(DETECT_BACKENDS) == set(BACKENDS)


def test_dftrain_uses_only_public_dfprep_names():
    import ast

    for py in sorted((ROOT / "trainer" / "dftrain").rglob("*.py")):
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dfprep"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{py.name} imports private {private} from {node.module}"
    assert (
        "import yaml" not in (ROOT / "trainer" / "dftrain" / "config.py").read_text()
    )  # one loader


# What dftrain may use of dfprep: the shared core, the data format (schema; dfprep.shards: shard
# files, tar I/O, the sample codec, the tables) and, by name, the stage APIs it is meant to call
# (predict runs extract's own per-video code and detector; the params loader; the catalogue).
DFTRAIN_MAY_IMPORT = {
    "dfprep.core": None,  # None: any name (and any submodule of dfprep.core)
    "dfprep.schema": None,
    "dfprep.shards": None,
    "dfprep.catalogue": None,
    "dfprep.config": {"ExtractConfig", "Params", "ReportConfig", "replace", "load_params"},
    "dfprep.extract": {"VideoResult", "process_video", "resolve_threads", "local_detector"},
    "dfprep.detect": {"get_detector"},
    # the one H.264 writer and the balance layout's writer (dftrain bench's synthetic inputs)
    "dfprep.videoio": {"encode_video"},
    "dfprep.balance.layout": {"write_balanced"},
    # the crop geometry (SBI maps a crop's landmarks into it) and the contact sheet (SBI's sheet)
    "dfprep.crop": {"square_box", "box_in_crop", "crop_face"},
    "dfprep.balance.report": {"contact_sheet"},
}


def _dfprep_imports(tree):
    import ast

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "dfprep":
            for a in node.names:
                if node.module == "dfprep":  # from dfprep import catalogue
                    yield f"dfprep.{a.name}", None
                else:
                    yield node.module, a.name
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "dfprep":
                    yield a.name, None


def _allowed(module: str, name: str | None) -> bool:
    if module == "dfprep.core" or module.startswith("dfprep.core."):
        return True
    if module not in DFTRAIN_MAY_IMPORT:
        return False
    names = DFTRAIN_MAY_IMPORT[module]
    return names is None or name in names


def test_dftrain_imports_only_the_core_and_the_stage_apis_of_dfprep():
    import ast

    bad = [
        f"{py.name}: {module}.{name or ''}"
        for py in sorted((ROOT / "trainer" / "dftrain").rglob("*.py"))
        for module, name in _dfprep_imports(ast.parse(py.read_text()))
        if not _allowed(module, name)
    ]
    assert not bad, f"dftrain imports dfprep internals: {bad}"
    # the rule itself bites: a balance import (what testset used to do) is refused
    assert not _allowed("dfprep.balance.pool", "find_shards") and not _allowed(
        "dfprep.extract", "run_extract"
    )


def test_no_import_cycles_and_one_set_of_media_extensions():
    import ast

    pkg = ROOT / "pipeline" / "dfprep"
    for py in sorted((pkg / "detectors").glob("*.py")):  # backends stand on detectors.base only
        mods = [
            n.module for n in ast.walk(ast.parse(py.read_text())) if isinstance(n, ast.ImportFrom)
        ]
        assert "dfprep.detect" not in mods, f"detectors/{py.name} imports dfprep.detect"
    for py in sorted((pkg / "adapters").glob("*.py")):  # adapters stand on adapters.registry only
        if py.name != "__init__.py":
            mods = [
                n.module
                for n in ast.walk(ast.parse(py.read_text()))
                if isinstance(n, ast.ImportFrom)
            ]
            assert "dfprep.adapters" not in mods, f"adapters/{py.name} imports the adapters package"
    init = ast.parse((pkg / "adapters" / "__init__.py").read_text())  # nothing registered by import
    assert {n.module for n in ast.walk(init) if isinstance(n, ast.ImportFrom)} == {
        "dfprep.adapters.registry"
    }
    defined = [
        f"{py.relative_to(pkg)}: {t.id}"
        for py in sorted(pkg.rglob("*.py")) + sorted((ROOT / "trainer" / "dftrain").rglob("*.py"))
        for node in ast.walk(ast.parse(py.read_text()))
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name) and t.id.endswith("_EXTS")
    ]
    assert defined == [
        f"core/media.py: {n}" for n in ("VIDEO_EXTS", "IMAGE_EXTS", "ARCHIVE_EXTS", "OTHER_EXTS")
    ], defined
    from dfprep.adapters import ADAPTERS, get_adapter

    assert all(callable(get_adapter(name)) for name in ADAPTERS)  # every listed adapter resolves


ONE_PATH_PACKAGES = ("dfprep.extract", "dfprep.pairing", "dfprep.shards", "dfprep.verify")


def test_packages_are_imported_through_one_path():
    """Outside dfprep.extract, .pairing, .shards and .verify, their names come from the package
    itself, never from one of its modules: one import path for each name."""
    import ast

    files = sorted((ROOT / "pipeline" / "dfprep").rglob("*.py"))
    files += sorted((ROOT / "trainer" / "dftrain").glob("*.py"))
    bad = [
        f"{py.relative_to(ROOT)}: {module}"
        for py in files
        for module, _ in _dfprep_imports(ast.parse(py.read_text()))
        for pkg in ONE_PATH_PACKAGES
        if module.startswith(f"{pkg}.")
        and (ROOT / "pipeline" / pkg.replace(".", "/")) not in py.parents
    ]
    assert not bad, f"import these from the package: {bad}"
