"""Offline stand-ins for `bench score --impl reference` on machines without network access.

A testing hook, not part of a real run: the reference driver (bench/metrics/_reference_driver.py)
imports this file first when $GENAU_BENCH_REFERENCE_SHIMS names it:

    GENAU_BENCH_REFERENCE_SHIMS=benchmarks/parity/reference_shims.py \
        .venv/bin/python -m bench.cli score --impl reference --reference-python .oracle-venv/bin/python ...

It applies the parity oracle's own neutralisations (imported from oracle_side.py, not copied):
  * sockets refuse to connect, `os.system("wget ...")` is refused;
  * `torch.hub.load("harritaylor/torchvggish", "vggish")` -> the scratch torchvggish copy
    (benchmarks/.work/torchvggish); `torch.hub.load_state_dict_from_url(<release url>)` -> the
    file of that name in the folder torch is asked to look in (the driver's link to
    --checkpoint vggish=...), else in the checkpoint folder below (the PCA file);
  * `from_pretrained(<hub id>)` of RoBERTa / GPT-2 / BERT models -> the published config with
    random weights (the CLAP checkpoint then overwrites them, as it overwrites downloaded
    weights in a real run); tokenizers -> the tiny vocabularies under <ckpt>/tokenizers.

The checkpoint folder is $GENAU_BENCH_REFERENCE_SHIM_CKPT, default benchmarks/.work/parity/ckpt
(written by oracle_side.py). Runs in the reference (oracle) interpreter only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from oracle_side import DEFAULT_ROOT, _no_network, patch_hf, patch_torch_hub  # noqa: E402

CKPT_DIR = Path(os.environ.get("GENAU_BENCH_REFERENCE_SHIM_CKPT", DEFAULT_ROOT / "ckpt")).resolve()
TOKENIZER_DIRS = {family: {"dir": str(CKPT_DIR / "tokenizers" / family)} for family in ("roberta", "gpt2", "bert")}


def _load_state_dict_offline(url: str, model_dir: str | None = None, *args, **kwargs):
    """The release file from `model_dir` when it is there (what torch's cache lookup does),
    else from the oracle's checkpoint folder; never a download."""
    name = url.rsplit("/", 1)[-1]
    folder = Path(model_dir) if model_dir and (Path(model_dir) / name).exists() else CKPT_DIR
    return torch.load(folder / name, map_location=kwargs.get("map_location") or "cpu", weights_only=False)


def install() -> None:
    for family, info in TOKENIZER_DIRS.items():
        if not Path(info["dir"]).is_dir():
            raise FileNotFoundError(f"{info['dir']}: no {family} tokenizer; run benchmarks/parity/oracle_side.py first")
    _no_network()
    patch_torch_hub(CKPT_DIR)
    torch.hub.load_state_dict_from_url = _load_state_dict_offline
    patch_hf(TOKENIZER_DIRS)


install()
