#!/usr/bin/env bash
# Build the two oracle venvs of passt_parity.py and openl3_parity.py (outside the repository).
#
#   PaSST  : $ORACLES/passt-venv  torch 2.13.0 CPU + hear21passt 0.0.26, timm, torchaudio (all --no-deps)
#   OpenL3 : $ORACLES/openl3-venv torch 2.13.0 CPU + torchopenl3 1.0.1 (--no-deps), resampy, julius, librosa
# Both also get librosa, soxr, pyloudnorm: the stable-audio-metrics code they run imports them.
#
# Two things do not install as published beside the CPU torch 2.13 build:
# - torchaudio: the only wheel (2.11) links CUDA libraries (libc10_cuda.so). hear21passt needs only its
#   pure-Python parts (compliance.kaldi.get_mel_banks, transforms.FrequencyMasking / TimeMasking), which
#   torchaudio loads without the compiled extension when lib/*.so are absent (its "pex" deployment
#   path): the .so files are renamed to *.so.cuda-disabled.
# - torchvision (imported by timm at module level; hear21passt imports timm for download_cached_file)
#   fails to import beside the CPU torch: a catch-all stand-in (benchmarks/parity/standins_passt) is
#   put on the PaSST venv's sys.path; any image API used raises NotImplementedError.
# Idempotent. Usage: bash benchmarks/parity/setup_passt_openl3_oracles.sh  [ORACLES=/work/oracles]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ORACLES="${ORACLES:-/work/oracles}"
PY="${PYTHON:-python3.11}"
COMMON=("torch==2.13.0" numpy scipy librosa soundfile soxr pyloudnorm tqdm)
log() { printf '[setup_passt_openl3_oracles] %s\n' "$*" >&2; }
mkdir -p "$ORACLES"

venv() {  # name -> path of its python, created if needed
  local v="$ORACLES/$1"
  [ -x "$v/bin/python" ] || { log "creating $v"; "$PY" -m venv "$v"; }
  echo "$v/bin/python"
}

# --- PaSST ---------------------------------------------------------------------------------
P="$(venv passt-venv)"
"$P" -m pip install -q --disable-pip-version-check "${COMMON[@]}" pyyaml huggingface_hub safetensors pillow
"$P" -m pip install -q --disable-pip-version-check --no-deps "hear21passt==0.0.26" timm torchaudio
SITE="$("$P" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
for so in "$SITE"/torchaudio/lib/*.so; do [ -e "$so" ] && mv "$so" "$so.cuda-disabled"; done
echo "$ROOT/benchmarks/parity/standins_passt" > "$SITE/passt_standins.pth"
HF_HUB_OFFLINE=1 "$P" -c 'import torchaudio, timm, hear21passt.base; from torchaudio.compliance.kaldi import get_mel_banks; print("passt oracle imports ok: hear21passt", hear21passt.__version__, "timm", timm.__version__, "torchaudio", torchaudio.__version__)'

# --- OpenL3 (torchopenl3) ------------------------------------------------------------------
O="$(venv openl3-venv)"
"$O" -m pip install -q --disable-pip-version-check "${COMMON[@]}" six julius resampy
"$O" -m pip install -q --disable-pip-version-check --no-deps "torchopenl3==1.0.1"
"$O" -c 'import torchopenl3, resampy; print("openl3 oracle imports ok: torchopenl3", torchopenl3.__version__, "resampy", resampy.__version__)'
log "done: $P, $O"
