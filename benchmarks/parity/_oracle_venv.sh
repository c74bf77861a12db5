# Helpers shared by the oracle setup scripts (sourced, not run): venvs whose torchaudio / torchvision wheels link
# CUDA libraries this machine does not have.

# disable_so PYTHON PACKAGE: rename the package's compiled extensions to *.so.cuda-disabled (idempotent); prints
# the venv's site-packages directory.
disable_so() {
  local site
  site="$("$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  for so in "$site/$2"/*.so "$site/$2"/lib/*.so; do [ -e "$so" ] && mv "$so" "$so.cuda-disabled"; done
  echo "$site"
}

# torchvision_cpu_schemas SITE: with its compiled ops disabled, torchvision imports once the two op schemas that
# torchvision/_meta_registrations.py registers fake kernels for exist; a .pth file defines them at start-up.
torchvision_cpu_schemas() {
  cat > "$1/torchvision_cpu_schemas.py" <<'EOF'
"""Oracle venvs only (benchmarks/parity/_oracle_venv.sh): the op schemas torchvision/_meta_registrations.py
registers fake kernels for at import; its compiled ops (CUDA-linked) are disabled. No op gets a kernel."""
import torch

_lib = torch.library.Library("torchvision", "DEF")
_lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
EOF
  echo "import torchvision_cpu_schemas" > "$1/torchvision_cpu_schemas.pth"
}
