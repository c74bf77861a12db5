#!/usr/bin/env bash
# The GPU figures of issues 4 and 5, in one run (about 5 minutes on an H100):
#   genau-s sampling time per 10 s clip (DDIM 200, guidance 3.5; batch 1 and 4; fp32 and bf16)
#   AutoCap latency per clip, Q-Former vs all HTSAT tokens (batch 1 and 8)
# On the device machine (repository root, `.whl` carried; see fetch_wheels.sh):
#   bash benchmarks/gpu/run_gpu_benchmarks.sh            # writes $OUT/*.txt
# Here, as a smoke test of the same commands on the CPU with tiny settings:
#   SMOKE=1 PY=.venv/bin/python OUT=/tmp/gpu-smoke bash benchmarks/gpu/run_gpu_benchmarks.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
OUT=${OUT:-benchmarks/.work/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
if [ -d .whl ] && [ -z "${SMOKE:-}" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0
step() {  # name, timeout (s), command...
  local name=$1 limit=$2; shift 2
  echo "== $name: $*" | tee "$OUT/$name.txt"
  timeout "$limit" "$@" 2>&1 | tee -a "$OUT/$name.txt" || { echo "== $name FAILED (rc $?)" | tee -a "$OUT/$name.txt"; status=1; }
}
if [ -n "${SMOKE:-}" ]; then
  step genau_sampling 300 "$PY" benchmarks/bench_genau_gpu_sampling.py --device cpu --config genau-tiny --steps 2 --batch-sizes 1 --repeats 1
  step autocap_b1 300 "$PY" benchmarks/bench_autocap_qformer.py --device cpu --batch 1 --runs 1 --tokens 3
  exit $status
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
step genau_sampling_fp32 240 "$PY" benchmarks/bench_genau_gpu_sampling.py --batch-sizes 1 4 --steps 200 --repeats 2 --dtype fp32
step genau_sampling_bf16 150 "$PY" benchmarks/bench_genau_gpu_sampling.py --batch-sizes 1 4 --steps 200 --repeats 2 --dtype bf16
step autocap_b1 90 "$PY" benchmarks/bench_autocap_qformer.py --device cuda --batch 1 --runs 3
step autocap_b8 90 "$PY" benchmarks/bench_autocap_qformer.py --device cuda --batch 8 --runs 3
exit $status
