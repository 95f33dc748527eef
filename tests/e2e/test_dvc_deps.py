"""Every stage of both DVC pipelines depends on all the code it runs, so that `dvc repro` redoes a
stage whenever its code changes. A stage's code is the import closure of its command: the imports
of the command's function in the CLI (and of the CLI helpers it calls, and the CLI's own imports),
then every dfprep/dftrain import of every module reached, at any depth, function-level imports
and the registries' "module:name" strings included. The CLI modules themselves are left out: a thin
layer every stage shares, which would otherwise redo every stage for any command's change."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SOURCES = {"dfprep": REPO / "pipeline", "dftrain": REPO / "trainer"}
PIPELINES = [REPO / "dvc.yaml", REPO / "experiments" / "paper" / "dvc.yaml"]
MODULE_STRING = re.compile(r"^(dfprep|dftrain)(\.\w+)+(:\w+)?$")  # e.g. the detector registry's


def module_file(name: str) -> Path | None:
    top = name.split(".")[0]
    if top not in SOURCES:
        return None
    base = SOURCES[top].joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported(tree: ast.AST):
    """Names of the modules TREE may import (a `from M import N` gives M and M.N: N may be one)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Constant) and MODULE_STRING.match(str(node.value)):
            yield node.value.split(":")[0]


def closure(roots) -> set[Path]:
    """The files of ROOTS' modules and of everything they import (their packages included); the
    CLI modules themselves are left out (see the module docstring)."""
    seen: set[Path] = set()
    todo = [r for r in roots if not is_cli(r)]
    while todo:
        parts = todo.pop().split(".")
        for k in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            path = module_file(".".join(parts[:k]))
            if path is not None and path not in seen:
                seen.add(path)
                todo += [m for m in imported(ast.parse(path.read_text())) if not is_cli(m)]
    return seen


def is_cli(module: str) -> bool:
    return module.split(".")[1:2] == ["cli"]


def cli_modules(tool: str) -> list[ast.Module]:
    """The parsed CLI of TOOL: cli.py, or every module of a cli/ package."""
    base = SOURCES[tool] / tool / "cli"
    files = sorted(base.glob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    return [ast.parse(f.read_text()) for f in files]


def command_roots(tool: str, command: str) -> list[str]:
    """What the CLI imports to run `TOOL COMMAND`: the imports of the module that defines it and
    of the functions it calls there."""
    for tree in cli_modules(tool):
        defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        commands = {}
        for fn in defs.values():
            for d in fn.decorator_list:
                if isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "command":
                    commands[d.args[0].value if d.args else fn.name.replace("_", "-")] = fn
        if command in commands:
            break
    else:
        raise AssertionError(f"{tool} has no command {command!r}")
    roots = [
        m for n in tree.body if isinstance(n, ast.ImportFrom | ast.Import) for m in imported(n)
    ]
    todo, done = [commands[command]], set()
    while todo:
        fn = todo.pop()
        if fn.name not in done:
            done.add(fn.name)
            roots += imported(fn)
            todo += [
                defs[c.func.id]
                for c in ast.walk(fn)
                if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in defs
            ]
    return roots


def stages(dvc_yaml: Path):
    """(name, tool, command, resolved deps) of every stage (a foreach stage's `do`)."""
    for name, stage in yaml.safe_load(dvc_yaml.read_text())["stages"].items():
        stage = stage.get("do", stage)
        tool, command = stage["cmd"].split()[:2]
        deps = [(dvc_yaml.parent / d).resolve() for d in stage.get("deps", []) if "${" not in d]
        yield name, tool, command, deps


def uncovered(files: set[Path], deps: list[Path]) -> list[str]:
    return sorted(
        str(f.relative_to(REPO)) for f in files if not any(f == d or d in f.parents for d in deps)
    )


@pytest.mark.parametrize("dvc_yaml", PIPELINES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_stage_depends_on_all_the_code_it_imports(dvc_yaml):
    seen = set()
    for name, tool, command, deps in stages(dvc_yaml):
        code = closure(command_roots(tool, command))
        seen.add(command)
        assert module_file(f"{tool}.__init__") in code  # the scan found the package, at least
        missing = uncovered(code, deps)
        assert not missing, f"{dvc_yaml.name}: stage {name} ({tool} {command}) runs {missing}"
    assert {"extract", "balance", "run", "eval"} <= seen


def test_the_closure_reaches_the_code_a_command_runs_and_the_rule_bites():
    code = closure(command_roots("dfprep", "extract"))
    for module in ("dfprep.extract.video", "dfprep.pairing.select", "dfprep.shards.write"):
        assert module_file(module) in code, module
    # the detector backends, named by string in the registry and imported on first use
    assert module_file("dfprep.detectors.retinaface_mnet") in code
    # extract's deps as they were (one file at a time) miss most of it
    old = [REPO / "pipeline" / "dfprep" / f for f in ("decode.py", "detect.py", "crop.py")]
    assert {"pipeline/dfprep/sampling.py", "pipeline/dfprep/schema.py"} <= set(uncovered(code, old))
