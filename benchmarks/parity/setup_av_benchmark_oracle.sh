#!/usr/bin/env bash
# Build the av-benchmark oracle venv of protocols_reference_timing.py (outside the repository), and extract
# hkchengrex/av-benchmark's code from its mirror into benchmarks/.work/av-benchmark (git-ignored, never committed).
#
#   av-benchmark : $ORACLES/avb-venv  torch 2.13.0 CPU + what av_bench/extract.py, evaluate.py and extract_text.py
#                  import: laion-clap 1.1.7, hear21passt 0.0.26, msclap 1.3.4 (all --no-deps), timm, torchlibrosa
#                  0.1.0, transformers 4.57.6, librosa < 0.11, resampy, colorlog, omegaconf, pandas, torchaudio 2.11.1
#                  and torchvision 0.28.0 (--no-deps)
#
# av-benchmark's pyproject asks for git forks (hkchengrex/CLAP, hkchengrex/passt_hear21, hkchengrex/MS-CLAP,
# hkchengrex/ImageBind); they are not on PyPI. The closest installable releases stand in for them: laion-clap 1.1.7,
# hear21passt 0.0.26, msclap 1.3.4 (the versions the other oracle venvs use). ImageBind and pytorchvideo are not
# installed: av-benchmark imports them at module level for its video metrics only; protocols_reference_timing.py
# runs with skip_video_related and registers inert in-process stand-in modules for them (`_avb_standins`).
#
# As in setup_clap_fusion_aesthetics_oracles.sh, the torchaudio / torchvision wheels link CUDA libraries: their
# compiled extensions are renamed to *.so.cuda-disabled; the Python code av-benchmark runs
# (torchaudio.transforms.Resample, torchvision.transforms.v2 imported) works on plain torch, and torchvision imports
# once the two op schemas it registers fake kernels for exist (torchvision_cpu_schemas.pth). torchaudio 2.11 has no
# `load` without torchcodec: the runner binds torchaudio.load to libsndfile (the float32 samples torchaudio returns).
# Idempotent. Usage: bash benchmarks/parity/setup_av_benchmark_oracle.sh  [ORACLES=/work/oracles]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ORACLES="${ORACLES:-/work/oracles}"
PY="${PYTHON:-python3.11}"
MIRROR="${AVB_MIRROR:-/work/.mirror/hkchengrex+av-benchmark/repo}"
CHECKOUT="$ROOT/benchmarks/.work/av-benchmark"
log() { printf '[setup_av_benchmark_oracle] %s\n' "$*" >&2; }
# shellcheck source=_oracle_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/_oracle_venv.sh"  # disable_so, torchvision_cpu_schemas
mkdir -p "$ORACLES"

V="$ORACLES/avb-venv"
[ -x "$V/bin/python" ] || { log "creating $V"; "$PY" -m venv "$V"; }
A="$V/bin/python"
"$A" -m pip install -q --disable-pip-version-check "torch==2.13.0" numpy scipy "librosa<0.11" soundfile soxr \
  resampy tqdm pandas colorlog omegaconf "transformers==4.57.6" pyyaml h5py braceexpand webdataset ftfy regex \
  scikit-learn requests pillow safetensors huggingface_hub
"$A" -m pip install -q --disable-pip-version-check --no-deps "laion-clap==1.1.7" "hear21passt==0.0.26" \
  "msclap==1.3.4" timm "torchlibrosa==0.1.0" wget "torchaudio==2.11.1" "torchvision==0.28.0"
disable_so "$A" torchaudio >/dev/null
SITE="$(disable_so "$A" torchvision)"
torchvision_cpu_schemas "$SITE"

# av-benchmark's code, extracted from the mirror (read by the runner from there; git-ignored)
if [ ! -f "$CHECKOUT/COMMIT" ] || [ "$(cat "$CHECKOUT/COMMIT")" != "$(git --git-dir="$MIRROR" rev-parse HEAD)" ]; then
  rm -rf "$CHECKOUT"
  mkdir -p "$CHECKOUT"
  git --git-dir="$MIRROR" archive HEAD | tar -x -C "$CHECKOUT"
  git --git-dir="$MIRROR" rev-parse HEAD > "$CHECKOUT/COMMIT"
fi
# laion_clap.hook loads a BERT tokenizer from the hub at import: the runner patches that first (oracle_side.patch_hf)
HF_HUB_OFFLINE=1 "$A" -c 'import importlib.util, torchvision.transforms.v2, torchaudio, timm, hear21passt.base, colorlog, omegaconf, resampy, torchlibrosa; assert all(importlib.util.find_spec(m) for m in ("laion_clap", "msclap")); print("av-benchmark oracle imports ok: torchvision", torchvision.__version__, "torchaudio", torchaudio.__version__, "timm", timm.__version__)'
log "done: $A; av-benchmark $(cat "$CHECKOUT/COMMIT") in $CHECKOUT"
