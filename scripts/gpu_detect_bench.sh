#!/usr/bin/env bash
# Issue 26 (RetinaFace on the GPU), part A's figures, in one run on the GPU host.
#
# 1. Here, on the development machine, in the repository root (once per checkout; needs pip and
#    the network): the wheels of scripts/gpu_bench.sh into .whl/ (git ignores it). The torch port
#    of RetinaFace needs nothing beyond them (no onnx, no onnx2torch):
#
#        bash scripts/gpu_bench.sh --download
#
# 2. On the GPU host (an NVIDIA H200, 16 cores; nothing can be downloaded there), through the
#    device tool:
#
#        run(command="bash scripts/gpu_detect_bench.sh", carry=[".whl"], timeout_s=600)
#
#    About 5 minutes (8 at most; every step has its own time limit, so a step cut short still
#    leaves the others' figures). It writes under $OUT: detector.json / .txt (the detector alone),
#    decode.json (decode only on every core), machine.json / .txt (`dfprep bench --case machine`
#    on the same clips, CPU only), summary.txt (the frames/s lines below) and host.txt.
#
#    Printed, in frames/s (sampled frames, 1 fps of 1080p30 clips made there):
#      - decode only, one process per core;
#      - CPU extract (`dfprep bench --case machine`, default options: ONNX Runtime on the CPU);
#      - GPU extract: not measured yet; extract's GPU mode is part B of the issue, which adds it
#        here;
#      - the detector alone at batch 1, 32 and 128, 640x360 frames, torch on CUDA in fp32, tf32
#        and fp16, beside ONNX Runtime on the host's CPU cores, with the faces' agreement with
#        ONNX Runtime and the target (>= 2,000 frames/s).
#
# Without a GPU, `bash scripts/gpu_detect_bench.sh --tiny` runs the same steps at tiny sizes on
# the CPU (a few minutes on 2 cores), with the project's environment active (python3 with its
# packages). The exit status is 1 when a step failed or ran out of time.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
export PYTHONUNBUFFERED=1

if [ "${1:-}" = "--tiny" ]; then
  OUT=${OUT:-bench-out/detect-tiny}
  DEVICE=cpu
  TINY=--tiny
  CLIPS=2 SECONDS_PER_CLIP=2 T_DETECT=300 T_DECODE=300 T_MACHINE=600
  export PYTHONPATH=$PWD/pipeline:$PWD/trainer${PYTHONPATH:+:$PYTHONPATH}
elif [ -n "${1:-}" ]; then
  echo "usage: bash scripts/gpu_detect_bench.sh [--tiny]" >&2
  exit 2
else
  OUT=${OUT:-bench-out/detect-gpu}
  DEVICE=cuda
  TINY=
  CLIPS=16 SECONDS_PER_CLIP=20 T_DETECT=200 T_DECODE=90 T_MACHINE=240
  n=$(ls .whl/*.whl 2>/dev/null | wc -l)
  [ "$n" -gt 0 ] || { echo "error: no wheels in .whl/ (run 'bash scripts/gpu_bench.sh --download' here, then carry .whl)" >&2; exit 2; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 2
  export PYTHONPATH=/tmp/site:$PWD/pipeline:$PWD/trainer
fi
mkdir -p "$OUT"
WORK=${WORK:-/tmp/dfprep-detect-bench}
mkdir -p "$WORK"
{
  date -u; nproc; free -g
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  python3 -c "import torch, av, onnxruntime; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'av', av.__version__, 'onnxruntime', onnxruntime.__version__)"
} >"$OUT/host.txt" 2>&1
cat "$OUT/host.txt"

echo "== 1/3 the detector alone ($DEVICE)"
failed=0
timeout "$T_DETECT" python3 -m dfprep.bench.detector --device "$DEVICE" $TINY \
  --json "$OUT/detector.json" --work-dir "$WORK" 2>&1 | tee "$OUT/detector.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed=1

echo "== 2/3 decode only, every core ($CLIPS clips of ${SECONDS_PER_CLIP} s, 1080p30, made in parallel)"
timeout "$T_DECODE" python3 -m dfprep.bench.detector --decode-only "$WORK/clips" \
  --n "$CLIPS" --seconds "$SECONDS_PER_CLIP" --json "$OUT/decode.json" 2>&1 | tee "$OUT/decode.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed=1

echo "== 3/3 dfprep bench --case machine on the same clips (CPU only)"
# shellcheck disable=SC2046
timeout "$T_MACHINE" python3 -c 'from dfprep.cli import app; app(prog_name="dfprep")' bench \
  --case machine --no-naive --json "$OUT/machine.json" --work-dir "$WORK/machine" \
  $(ls "$WORK"/clips/clip_*_"${SECONDS_PER_CLIP}"s.mp4) 2>&1 | tee "$OUT/machine.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed=1

OUT="$OUT" python3 - <<'EOF' | tee "$OUT/summary.txt"
import json, os
from pathlib import Path

out = Path(os.environ["OUT"])

def load(name):
    p = out / name
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None

print("== summary (frames/s of sampled frames)")
decode = load("decode.json")
print(f"decode only, {decode['processes']} processes: {decode['fps']:.1f}" if decode else "decode only: no figure (step 2 failed or timed out)")
machine = load("machine.json")
if machine:
    m = machine[0]
    sec = m["timings"].get("dfprep extract, default options")
    print(f"CPU extract (default options, {m['cores']} cores): {m['frames_sampled'] / sec:.1f}" if sec else "CPU extract: no figure")
else:
    print("CPU extract: no figure (step 3 failed or timed out)")
print("GPU extract: not measured (extract's GPU mode is part B of issue 26)")
det = load("detector.json")
if det:
    w, h = det["frame_size"]
    for f in det["figures"]:
        if f["what"] == "detector":
            print(f"detector alone, {f['engine']} {f['precision']}, batch {f['batch']}, {w}x{h}: {f['fps']:.1f}")
    for precision, a in det["agreement"].items():
        print(f"agreement with onnxruntime-cpu, {precision}: {json.dumps(a)}")
    if det["target"]:
        print(f"target: {json.dumps(det['target'])}")
else:
    print("detector alone: no figure (step 1 failed or timed out)")
EOF
exit $failed
