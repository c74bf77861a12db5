"""Named AutoCap models and where their weights come from.

- `autocap`: the released model (`autocap-full.ckpt` + `.yaml` from HF `mali6/autocap`, a local
  `facebook/bart-base` folder), loaded through the explicit key mapping of `official.py`. Files
  are looked for in `--checkpoint FOLDER`, $GENAU_BENCH_CHECKPOINTS, ~/.cache/genau-bench/checkpoints.
- `autocap-tiny`: shipped with the package in `genau_core/autocap/weights/autocap-tiny/`
  (config json, safetensors ~2 MB, tokenizer json): the `autocap-tiny` configuration (random,
  frozen tiny HTSAT / CLAP encoders; tiny BART; 32 Q-Former queries) trained by our own
  `autocap train` on the 10 clips of the `demo` split, so captioning runs offline and its
  captions on demo clips name the sound. Reproduce it (about 2 minutes on 2 CPU cores) with:

      autocap train --stage 1 --manifest demo --model autocap-tiny --out runs/autocap-tiny-s1 \\
          --steps 100 --batch-size 5 --lr 3e-3 --label-smoothing 0 --cache-features --seed 0
      autocap train --stage 2 --manifest demo --init-from runs/autocap-tiny-s1/final --out runs/autocap-tiny-s2 \\
          --steps 800 --batch-size 5 --lr 3e-3 --label-smoothing 0 --cache-features --seed 0
      cp -r runs/autocap-tiny-s2/final/. genau_core/autocap/weights/autocap-tiny/

  Stage 1 barely moves the loss for this model: its BART is random, and a frozen random decoder
  cannot be steered by the bridge alone (the real model's stage 1 relies on pretrained
  bart-base). Stage 2 then fits the demo captions (loss < 0.01).
- any folder written by `save_pretrained` (e.g. `runs/x/final`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from genau_core.autocap.model import AutoCapModel, is_pretrained_folder, load_pretrained

MODEL_NAMES = ("autocap", "autocap-tiny")
TINY_DIR = Path(__file__).parent / "weights" / "autocap-tiny"


def load_autocap(
    name: str = "autocap-tiny",
    *,
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    allow_pickle: bool = False,
) -> AutoCapModel:
    """`name` is `autocap`, `autocap-tiny` or a save_pretrained folder. For `autocap`,
    `checkpoint` is the folder of release files; for `autocap-tiny`, another trained folder."""
    if name == "autocap-tiny":
        folder = Path(checkpoint) if checkpoint is not None else TINY_DIR
        if not is_pretrained_folder(folder):
            raise FileNotFoundError(
                f"autocap-tiny: {folder} holds no trained model (autocap_config.json); see "
                "genau_core/autocap/pretrained.py to rebuild it"
            )
        return load_pretrained(folder, device=device)
    if name == "autocap":
        from genau_core.autocap.official import find_official_files, load_official_autocap

        return load_official_autocap(find_official_files(checkpoint), device=device, allow_pickle=allow_pickle)
    if is_pretrained_folder(name):
        return load_pretrained(name, device=device)
    raise ValueError(
        f"unknown AutoCap model {name!r}: use {' or '.join(MODEL_NAMES)}, or a folder written by save_pretrained"
    )
