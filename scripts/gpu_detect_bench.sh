#!/usr/bin/env bash
# Issue 26 (RetinaFace on the GPU): the detector and extract's GPU mode, measured in one run on the
# GPU host.
#
# 1. Here, on the development machine, in the repository root (once per checkout; needs pip and
#    the network): the wheels of scripts/gpu_bench.sh into .whl/ (git ignores it). The torch port
#    of RetinaFace and the GPU mode need nothing beyond them:
#
#        bash scripts/gpu_bench.sh --download
#
# 2. On the GPU host (an NVIDIA H200, 16 cores; nothing can be downloaded there), through the
#    device tool:
#
#        run(command="bash scripts/gpu_detect_bench.sh", carry=[".whl"], timeout_s=600)
#
#    About 5 minutes (9 at most: each step has its own time limit, so a step cut short still
#    leaves the others' figures). It writes under $OUT: detector.json / .txt (`dfprep bench
#    --case detector`), gpu.json / .txt (`dfprep bench --case gpu`), summary.txt (the lines
#    below) and host.txt.
#
#    Printed, in frames/s (sampled frames, 1 fps of 16 generated 1080p30 clips of 20 s, each
#    extracted 4 times under other names):
#      - decode only, one process per core;
#      - CPU extract (default options: every worker decodes and detects with ONNX Runtime);
#      - GPU extract (run.detect_device: cuda: the workers decode, a detector process per GPU
#        detects), with the detector process's mean frames per forward;
#      - the detector alone at batch 1, 32 and 128, 640x360 frames, torch on CUDA in fp32, tf32
#        and fp16, beside ONNX Runtime on the host's CPU cores, with the faces' agreement with
#        ONNX Runtime and whether a frame's faces depend on its batch;
#      - the targets: GPU extract <= 1.15 x decode only's time and >= 1.3 x the CPU extract's
#        speed; the detector alone >= 2,000 frames/s at 640 px;
#      - the paper-scale ESTIMATE: about 2.3M sampled frames at the GPU extract's rate.
#
# Without a GPU, `bash scripts/gpu_detect_bench.sh --tiny` runs the same steps at tiny sizes on
# the CPU (about 3 minutes on 2 cores; the GPU mode's detector process runs on the CPU), with the
# project's environment active (python3 with its packages). The exit status is 1 when a step
# failed or ran out of time.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
export PYTHONUNBUFFERED=1

if [ "${1:-}" = "--tiny" ]; then
  OUT=${OUT:-bench-out/detect-tiny}
  DEVICE=cpu
  DETECTOR_OPTS=(--size 384x216 --batches 1,4,8 --measure 0.3 --threads 1)
  GPU_OPTS=(--n 2 --seconds 2 --size 384x216 --repeat 2)
  T_DETECT=300 T_GPU=600
  export PYTHONPATH=$PWD/pipeline:$PWD/trainer${PYTHONPATH:+:$PYTHONPATH}
elif [ -n "${1:-}" ]; then
  echo "usage: bash scripts/gpu_detect_bench.sh [--tiny]" >&2
  exit 2
else
  OUT=${OUT:-bench-out/detect-gpu}
  DEVICE=cuda
  DETECTOR_OPTS=()
  GPU_OPTS=(--n 16 --seconds 20 --repeat 4)
  T_DETECT=200 T_GPU=330
  n=$(ls .whl/*.whl 2>/dev/null | wc -l)
  [ "$n" -gt 0 ] || { echo "error: no wheels in .whl/ (run 'bash scripts/gpu_bench.sh --download' here, then carry .whl)" >&2; exit 2; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 2
  export PYTHONPATH=/tmp/site:$PWD/pipeline:$PWD/trainer
fi
mkdir -p "$OUT"
WORK=${WORK:-/tmp/dfprep-detect-bench}
mkdir -p "$WORK"
DFPREP=(python3 -c 'from dfprep.cli import app; app(prog_name="dfprep")')
{
  date -u; nproc; free -g
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  python3 -c "import torch, av, onnxruntime; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'av', av.__version__, 'onnxruntime', onnxruntime.__version__)"
} >"$OUT/host.txt" 2>&1
cat "$OUT/host.txt"

failed=0
echo "== 1/2 the detector alone ($DEVICE)"
timeout "$T_DETECT" "${DFPREP[@]}" bench --case detector --device "$DEVICE" "${DETECTOR_OPTS[@]}" \
  --json "$OUT/detector.json" --work-dir "$WORK/detector" 2>&1 | tee "$OUT/detector.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed=1

echo "== 2/2 decode only, CPU extract and GPU extract on every core ($DEVICE)"
timeout "$T_GPU" "${DFPREP[@]}" bench --case gpu --device "$DEVICE" "${GPU_OPTS[@]}" \
  --json "$OUT/gpu.json" --work-dir "$WORK/gpu" 2>&1 | tee "$OUT/gpu.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed=1

OUT="$OUT" python3 - <<'EOF' | tee "$OUT/summary.txt"
import json, os
from pathlib import Path

out = Path(os.environ["OUT"])

def load(name):
    try:
        return json.loads((out / name).read_text())
    except (OSError, ValueError):
        return None

print("== summary (frames/s of sampled frames)")
gpu = load("gpu.json")
if gpu:
    on = f"detector process on {gpu['device']}"
    print(f"clips: {gpu['clips']} ({gpu['seconds_of_video']:.0f} s of generated 30 fps video), {gpu['frames_sampled']} sampled frames, {gpu['cores']} cores")
    for run, fps in gpu["fps"].items():
        print(f"{run}{' (' + on + ')' if run == 'GPU extract' else ''}: {fps:.1f}")
    if gpu["detector"]:
        print(f"detector processes during the GPU extract: {json.dumps(gpu['detector'])}")
    for name, t in gpu["targets"].items():
        print(f"target {name}: {t['measured']} (target {t['target']}): {'met' if t['met'] else 'NOT MET'}")
    e = gpu["estimate"] or {"sampled_frames": 0, "frames_per_s": "-", "hours": "-", "goal": "-", "met": False}
    print(f"paper-scale ESTIMATE (not a measurement): {e['sampled_frames']:,} sampled frames at {e['frames_per_s']} frames/s = {e['hours']} h on one such host (goal {e['goal']}: {'met' if e['met'] else 'NOT met'})")
    for note in gpu["notes"]:
        print(f"note: {note}")
else:
    print("decode only, CPU extract, GPU extract: no figure (step 2 failed or timed out)")
det = load("detector.json")
if det:
    w, h = det["frame_size"]
    for f in det["figures"]:
        if f["what"] == "detector":
            print(f"detector alone, {f['engine']} {f['precision']}, batch {f['batch']}, {w}x{h}: {f['fps']:.1f}")
    for precision, same in det["batch_invariant"].items():
        print(f"faces independent of the batch, {precision}: {'yes' if same else 'NO'}")
    for precision, a in det["agreement"].items():
        print(f"agreement with onnxruntime-cpu, {precision}: {json.dumps(a)}")
    if det["target"]:
        t = det["target"]
        print(f"target detector alone {t['target']}: fp32 best {t['fp32_best_fps']:.0f} ({'met' if t['fp32_met'] else 'NOT MET'}); best {t['best']['precision']} batch {t['best']['batch']} {t['best']['fps']:.0f} ({'met' if t['best_met'] else 'NOT MET'})")
    for precision, error in det["errors"].items():
        print(f"FAILED ({precision}): {error}")
else:
    print("detector alone: no figure (step 1 failed or timed out)")
EOF
exit $failed
