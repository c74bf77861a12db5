#!/usr/bin/env bash
# Wheels the GPU machine's image lacks (its python3 is 3.12 with torch, transformers,
# tokenizers, scipy, numba, ...; no registry is reachable from it). Run here, in the
# repository root, before a GPU session; `.whl/` is git-ignored and travels with `carry`.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl \
  diffusers==0.42.1 librosa==0.11.0 pooch==1.9.0 decorator==5.3.1 audioread==3.1.0 soxr==1.1.0 \
  soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 platformdirs==4.14.8 importlib_metadata==10.2.0 zipp==4.1.2
ls .whl
