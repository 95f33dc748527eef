#!/usr/bin/env bash
# Side-by-side regression check of `dfprep bench --case stages` against an earlier commit:
#   bash scripts/bench_vs.sh REV [REPS] [WORK]
# Checks REV out into a temporary worktree, then runs the bench of REV and of this tree
# alternately REPS times (default 3) on the same generated videos, and prints the median of each
# figure for both and their ratio (this / REV; above 1 = slower now). Run it on an idle machine.
set -euo pipefail
rev=${1:?usage: bench_vs.sh REV [REPS] [WORK]}
reps=${2:-3}
work=${3:-$(mktemp -d -t dfprep-bench-vs-XXXX)}
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
old="$work/old-tree"
[ -d "$old" ] || git -C "$here" worktree add -q --detach "$old" "$rev"
mkdir -p "$work/videos"
"$py" -c "import sys; sys.path.insert(0, '$here/pipeline')
from pathlib import Path; from dfprep.bench import make_bench_videos
make_bench_videos(Path('$work/videos'), n=4, seconds=20.0)"
videos=$(ls "$work"/videos/*.mp4)
bench() {  # TREE NAME I
  PYTHONPATH="$1/pipeline:$1/trainer" "$py" -c "from dfprep.cli import app; app()" bench \
    --no-naive --work-dir "$work/run-$2" --json "$work/$2-$3.json" $videos >/dev/null
}
for i in $(seq "$reps"); do
  bench "$old" old "$i"
  bench "$here" new "$i"
  echo "rep $i of $reps done" >&2
done
"$py" - "$work" "$rev" <<'PY'
import json, statistics, sys
from pathlib import Path
work, rev = Path(sys.argv[1]), sys.argv[2]
def runs(name):
    return [json.loads(p.read_text()) for p in sorted(work.glob(f"{name}-*.json"))]
old, new = runs("old"), runs("new")
print(f"dfprep bench --case stages, {len(new)} alternating runs each; medians (s); this tree vs {rev}")
# the figures by role (their names changed over time): decode, detect, full, then the Dask runs
def roles(r):
    t = r["timings"]
    pick = lambda *words: next(k for k in t if all(w in k.lower() for w in words))
    out = {"decode only": pick("decode"), "detect only": pick("detect"), "full, 1 process": pick("full")}
    for w in (1, 2):
        out[f"Dask extract, {w} worker(s)"] = next(
            k for k in t if k == f"dask_{w}w" or (k.startswith("Dask") and f"{w} worker" in k))
    return {role: t[k] for role, k in out.items()}
old, new = [roles(r) for r in old], [roles(r) for r in new]
print(f"| figure | {rev} | this tree | this / {rev} | runs ({rev}) | runs (this) |")
print("|---|---|---|---|---|---|")
fmt = lambda xs: ", ".join(f"{x:.2f}" for x in xs)
for key in new[0]:
    a, b = [r[key] for r in old], [r[key] for r in new]
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"| {key} | {ma:.2f} | {mb:.2f} | {mb / ma:.3f} | {fmt(a)} | {fmt(b)} |")
PY
