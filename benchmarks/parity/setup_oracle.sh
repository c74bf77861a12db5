#!/usr/bin/env bash
# Build the parity-oracle virtualenv (/work/main/.oracle-venv by default; git-ignored).
#
# The four reference packages do not co-install with our modern stack and reach the network
# (shared/REFERENCE.md, "Dependency facts"); they go into this separate venv:
#   torch 2.13.0 CPU, transformers 4.57.6, diffusers 0.39.0, librosa < 0.11,
#   audioldm-eval / laion-clap / msclap / frechet-audio-distance with --no-deps,
#   plus the few real packages their imports need, plus local stand-ins for torchaudio,
#   torchvision and ssr_eval (benchmarks/parity/standins, put on sys.path by a .pth file).
# torchvggish (VGGish reference) is not on PyPI in a usable form: a scratch copy of the public
# harritaylor/torchvggish repository is placed in benchmarks/.work/torchvggish (never committed).
#
# Idempotent: re-running only installs what is missing. Prints what is installed.
# Usage: bash benchmarks/parity/setup_oracle.sh  [ORACLE_VENV=/path]  [TORCHVGGISH_SRC=/path]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${ORACLE_VENV:-$ROOT/.oracle-venv}"
PY="${PYTHON:-python3.11}"
STANDINS="$ROOT/benchmarks/parity/standins"
WORK="$ROOT/benchmarks/.work"

log() { printf '[setup_oracle] %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

# 1. the base stack, pinned as REFERENCE.md measured it
BASE=(
  "torch==2.13.0" "transformers==4.57.6" "diffusers==0.39.0" "librosa<0.11"
  "numpy" "scipy" "soundfile" "tqdm" "pyyaml" "pandas" "scikit-learn" "packaging"
  # imported at module level by the reference packages
  "resampy"          # audioldm_eval.metrics.fad, torchvggish, frechet_audio_distance
  "scikit-image"     # audioldm_eval.eval (psnr/ssim imports)
  "h5py" "braceexpand" "webdataset" "pillow" "ftfy" "regex"  # laion_clap.training.data / tokenizer
  "einops"           # encodec (imported by frechet_audio_distance)
)
# 2. installed without their declared dependencies (those pull torchaudio/torchvision, old
#    transformers, MySQL-python, ...); exact versions of the reference tools
NODEPS=(
  "torchlibrosa==0.1.0"
  "audioldm-eval==0.0.3"
  "laion-clap==1.1.7"
  "msclap==1.3.4"
  "frechet-audio-distance==0.3.4"
  "encodec==0.1.1"
  "wget==3.2"
)

need_install() {  # args: requirement strings; succeed if any is not satisfied
  "$VENV/bin/python" - "$@" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
from packaging.requirements import Requirement
missing = []
for r in sys.argv[1:]:
    req = Requirement(r)
    try:
        v = version(req.name)
    except PackageNotFoundError:
        missing.append(r); continue
    if req.specifier and not req.specifier.contains(v, prereleases=True):
        missing.append(r)
print(" ".join(missing))
sys.exit(0 if missing else 1)
PY
}

"${PIP[@]}" install -q packaging >/dev/null
if miss=$(need_install "${BASE[@]}"); then
  log "installing base: $miss"
  "${PIP[@]}" install -q "${BASE[@]}"
else
  log "base stack already installed"
fi
if miss=$(need_install "${NODEPS[@]}"); then
  log "installing with --no-deps: $miss"
  "${PIP[@]}" install -q --no-deps "${NODEPS[@]}"
else
  log "reference packages already installed"
fi

# 3. stand-ins (torchaudio, torchvision, ssr_eval) on sys.path of this venv only
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$STANDINS" > "$SITE/genau_parity_standins.pth"
log "stand-ins on sys.path via $SITE/genau_parity_standins.pth -> $STANDINS"

# 4. torchvggish scratch copy (public repo, read-only use; git-ignored folder)
TV="$WORK/torchvggish"
if [ ! -f "$TV/torchvggish/vggish.py" ]; then
  SRC="${TORCHVGGISH_SRC:-/work/.mirror/harritaylor+torchvggish/repo}"
  mkdir -p "$TV"
  if [ -d "$SRC/torchvggish" ]; then
    cp -r "$SRC/torchvggish" "$SRC/hubconf.py" "$TV/"
  elif git --git-dir="$SRC" rev-parse HEAD >/dev/null 2>&1; then
    git --git-dir="$SRC" archive HEAD hubconf.py torchvggish | tar -x -C "$TV"
    git --git-dir="$SRC" rev-parse HEAD > "$TV/COMMIT"
  else
    log "WARNING: no torchvggish source at $SRC: VGGish/FAD parity will be skipped."
    log "         Put a copy of github.com/harritaylor/torchvggish there (TORCHVGGISH_SRC=...)."
  fi
fi
[ -f "$TV/torchvggish/vggish.py" ] && log "torchvggish scratch copy: $TV ($(cat "$TV/COMMIT" 2>/dev/null || echo 'commit unknown'))"

# 5. report + import smoke test (offline)
log "installed in $VENV:"
"${PIP[@]}" list --format=freeze 2>/dev/null | grep -i -E '^(torch|transformers|diffusers|librosa|numpy|scipy|audioldm|laion|msclap|frechet|torchlibrosa|resampy|encodec|scikit-image|soundfile)' | sed 's/^/    /'
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$VENV/bin/python" - <<'PY'
import importlib
for m in ["torchaudio", "torchvision", "torchlibrosa", "audioldm_eval.metrics.fid",
          "audioldm_eval.feature_extractors.panns.models", "msclap.models.clap",
          "laion_clap.clap_module.htsat"]:
    try:
        importlib.import_module(m)
        print(f"    import {m}: ok")
    except Exception as e:  # the top-level laion_clap/msclap need the patches in oracle_side.py
        print(f"    import {m}: FAILED {type(e).__name__}: {e}")
PY
log "done"
