"""What `dftrain gpu-bench` reports: the targets computed from the measured numbers, the table
(printed, and OUT/bench.md for docs/performance.md) and OUT/bench.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dfprep.core import atomic


def _model_at(result: dict, batch: int) -> dict | None:
    return next((m for m in result.get("model", []) if m["batch"] == batch), None)


def targets(result: dict) -> list[dict[str, Any]]:
    """The performance targets, each computed from the measured numbers (None where one is
    missing)."""
    out = []
    m64 = _model_at(result, result["sizes"]["run_batch"])
    out.append({
        "what": f"our step / bare loop at batch {result['sizes']['run_batch']}",
        "target": ">= 0.90", "measured": m64["ratio"] if m64 else None,
        "met": (m64["ratio"] >= 0.90) if m64 else None,
    })  # fmt: skip
    loader = {r["workers"]: r for r in result.get("loader", [])}
    d = loader.get(result.get("loader_default_workers"))
    ratio = d["samples_per_s"] / m64["ours_img_per_s"] if d and m64 else None
    out.append({
        "what": f"loader at the default {result.get('loader_default_workers')} workers / what our "
                "step consumes",
        "target": ">= 1.5", "measured": ratio, "met": (ratio >= 1.5) if ratio is not None else None,
    })  # fmt: skip
    run = result.get("run")
    r = run["img_per_s"] / m64["ours_img_per_s"] if run and m64 else None
    out.append({
        "what": "whole `dftrain run` img/s / our step alone (below ~0.9: the GPU waits on the loader)",
        "target": "~1", "measured": r, "met": None,
    })  # fmt: skip
    p = result.get("predict")
    out.append({
        "what": "`dftrain predict`: seconds per second of video", "target": "< 1 (real time)",
        "measured": p["s_per_s"] if p else None, "met": (p["s_per_s"] < 1) if p else None,
    })  # fmt: skip
    return out


def _f(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def rows(result: dict) -> list[tuple[str, str, str]]:
    """(measurement, value, note) rows, shared by the printed table and bench.md."""
    prec = result["precision"]
    name = result["sizes"]["model"]["name"]
    size = result["sizes"]["model"]["img_size"]
    out: list[tuple[str, str, str]] = []
    for m in result.get("model", []):
        out.append((f"bare timm fwd+bwd+fused AdamW, {name} @{size}, batch {m['batch']}, {prec}",
                    f"{_f(m['bare_img_per_s'])} img/s", "random tensors"))  # fmt: skip
        out.append((f"our training step, batch {m['batch']}", f"{_f(m['ours_img_per_s'])} img/s",
                    f"{m['ratio']:.3f} of bare"))  # fmt: skip
    c = result.get("compile")
    if c:
        out.append((f"our step, torch.compile ({c['backend']}), batch {c['batch']}",
                    f"{_f(c['compiled_img_per_s'])} img/s",
                    f"{c['speedup']:.3f}x eager ({_f(c['eager_img_per_s'])}); compile "
                    f"{c['compile_s']:.1f} s"))  # fmt: skip
    for r in result.get("loader", []):
        out.append((f"input pipeline alone, {r['workers']} worker(s), batch "
                    f"{result['sizes']['run_batch']}", f"{_f(r['samples_per_s'])} samples/s",
                    f"{_f(r['per_worker'])} per worker"))  # fmt: skip
    run = result.get("run")
    if run:
        util = "n/a" if run["gpu_util_mean"] is None else f"{run['gpu_util_mean']:.0f} %"
        out.append((f"whole `dftrain run`, {run['steps']} steps of {run['batch']}",
                    f"{run['steps_per_s']:.2f} steps/s ({_f(run['img_per_s'])} img/s)",
                    f"GPU utilisation {util}; wall {run['wall_s']:.1f} s"))  # fmt: skip
    e = result.get("eval")
    if e:
        out.append((f"`dftrain eval`, {e['crops']} crops, batch {e['batch_size']}",
                    f"{_f(e['crops_per_s'])} crops/s", f"wall {e['wall_s']:.1f} s"))  # fmt: skip
    p = result.get("predict")
    if p:
        out.append((f"`dftrain predict`, {p['video']}",
                    f"{p['s_per_s']:.3f} s per s of video",
                    f"decode {p['decode_s_per_s']:.3f} + detect {p['detect_s_per_s']:.3f} + model "
                    f"{p['model_s_per_s']:.3f}; {p['x_real_time']:.1f}x real time"))  # fmt: skip
    for name_, err in result.get("errors", {}).items():
        out.append((f"{name_}", "FAILED", err))
    return out


def _target_rows(result: dict) -> list[tuple[str, str, str, str]]:
    out = []
    for t in result["targets"]:
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        out.append((t["what"], t["target"], _f(t["measured"], 3), met))
    return out


def to_markdown(result: dict) -> str:
    h = result["host"]
    head = (
        f"Measured {result['date']} on {h['device_name']} ({h['cores']} cores), torch {h['torch']}, "
        f"timm {h['timm']}, {result['precision']}; suite total {result['total_s']} s"
        + (" — **tiny smoke test (CPU sizes): not a result**" if result["tiny"] else "")
    )
    lines = [head, "", "| measurement | value | note |", "|---|---:|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows(result)]
    lines += ["", "| target | wanted | measured | met? |", "|---|---|---:|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _target_rows(result)]
    return "\n".join(lines) + "\n"


def print_tables(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    title = f"dftrain gpu-bench: {result['host']['device_name']}, {result['precision']}"
    if result["tiny"]:
        title += " (tiny smoke test: not a result)"
    t = Table(title=title)
    for col, justify in (("measurement", "left"), ("value", "right"), ("note", "left")):
        t.add_column(col, justify=justify, overflow="fold")
    for r in rows(result):
        t.add_row(*r)
    g = Table(title="targets")
    for col in ("target", "wanted", "measured", "met?"):
        g.add_column(col, overflow="fold")
    for r in _target_rows(result):
        g.add_row(*(c.replace("**", "") for c in r))
    console = Console()
    console.print(t)
    console.print(g)


def write_json(result: dict, out: Path) -> Path:
    """OUT/bench.json, atomically (also called after every measurement, `complete` false)."""
    out.mkdir(parents=True, exist_ok=True)
    j = out / "bench.json"
    return atomic.write_json(j, result)


def write_outputs(result: dict, out: Path) -> tuple[Path, Path]:
    j, m = write_json(result, out), out / "bench.md"
    atomic.write_text(m, to_markdown(result))
    return j, m
