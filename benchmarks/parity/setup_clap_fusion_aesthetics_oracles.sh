#!/usr/bin/env bash
# Build the two oracle venvs of clap_fusion_parity.py and aesthetics_parity.py (outside the repository).
#
#   CLAP fusion : $ORACLES/clap-venv  torch 2.13.0 CPU + laion-clap 1.1.4 (stable-audio-metrics' pin, --no-deps),
#                 torchlibrosa 0.1.0, transformers 4.57.6, numpy < 2 (the pin is 1.23.5: float32 * float64-scalar
#                 products stay float32, which the peak normalisation relies on), librosa < 0.11, pyloudnorm,
#                 torchaudio 2.11.1 and torchvision 0.28.0 (--no-deps)
#   aesthetics  : $ORACLES/aes-venv   torch 2.13.0 CPU + audiobox_aesthetics 0.0.4 (--no-deps) and its imports
#                 (submitit, huggingface_hub, requests, rich, safetensors, tqdm), torchaudio 2.11.1 (--no-deps)
#
# Two things do not install as published beside the CPU torch 2.13 build (as in setup_passt_openl3_oracles.sh):
# - torchaudio / torchvision wheels link CUDA libraries. Their compiled extensions are renamed to
#   *.so.cuda-disabled; the Python code the references use (torchaudio.transforms.MelSpectrogram /
#   AmplitudeToDB / functional.resample, torchvision.transforms.Resize) runs on plain torch. torchvision then
#   imports once the two op schemas it registers fake kernels for at import (torchvision::nms, ::qnms) exist:
#   a startup file (torchvision_cpu_schemas.pth) defines them, without kernels.
# - torchaudio 2.11 has no `load` / `info` without torchcodec: aesthetics_parity.py binds torchaudio.load to
#   libsndfile for the float32 WAV fixture (the samples torchaudio would return) so `infer.py::read_wav` runs.
# Idempotent. Usage: bash benchmarks/parity/setup_clap_fusion_aesthetics_oracles.sh  [ORACLES=/work/oracles]
set -euo pipefail

ORACLES="${ORACLES:-/work/oracles}"
PY="${PYTHON:-python3.11}"
log() { printf '[setup_clap_fusion_aesthetics_oracles] %s\n' "$*" >&2; }
mkdir -p "$ORACLES"

venv() {  # name -> path of its python, created if needed
  local v="$ORACLES/$1"
  [ -x "$v/bin/python" ] || { log "creating $v"; "$PY" -m venv "$v"; }
  echo "$v/bin/python"
}
# shellcheck source=_oracle_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/_oracle_venv.sh"  # disable_so, torchvision_cpu_schemas

# --- LAION-CLAP fusion -------------------------------------------------------------------------
C="$(venv clap-venv)"
"$C" -m pip install -q --disable-pip-version-check "torch==2.13.0" "numpy<2" scipy "librosa<0.11" soundfile soxr \
  pyloudnorm tqdm "pandas<2.3" pytz python-dateutil tzdata h5py braceexpand webdataset ftfy regex \
  "transformers==4.57.6" pyyaml scikit-learn requests pillow
"$C" -m pip install -q --disable-pip-version-check --no-deps "laion-clap==1.1.4" "torchlibrosa==0.1.0" wget \
  "torchaudio==2.11.1" "torchvision==0.28.0"
disable_so "$C" torchaudio >/dev/null
SITE="$(disable_so "$C" torchvision)"
torchvision_cpu_schemas "$SITE"
"$C" -c 'import numpy, torchvision, torchaudio, pyloudnorm; from torchvision.transforms import Resize; print("clap oracle imports ok: numpy", numpy.__version__, "torchvision", torchvision.__version__)'

# --- audiobox-aesthetics -------------------------------------------------------------------------
A="$(venv aes-venv)"
"$A" -m pip install -q --disable-pip-version-check "torch==2.13.0" numpy tqdm submitit huggingface_hub requests \
  "rich>=13.9.4" "safetensors>=0.5.3" soundfile
"$A" -m pip install -q --disable-pip-version-check --no-deps "audiobox_aesthetics==0.0.4" "torchaudio==2.11.1"
disable_so "$A" torchaudio >/dev/null
"$A" -c 'import torchaudio; from audiobox_aesthetics.infer import AesPredictor; print("aesthetics oracle imports ok: torchaudio", torchaudio.__version__)'
log "done: $C, $A"
