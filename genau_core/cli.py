"""`genau` command line: generate audio from text, train the VAE / the latent diffusion model.

    genau generate "a dog barks while rain falls" -o out.wav --model genau-tiny --seed 0
    genau generate "a steady pure sine tone at 440 hertz" -o tone.wav        # genau-tiny is the default
    genau generate "rain" -o r.wav --model genau-tiny --checkpoint random  # seed-0 random weights
    genau generate "rain" -o rain.wav --model genau-s --checkpoint /path/to/release-files
    genau train ldm --manifest demo.jsonl --out runs/tiny --steps 200
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

RELEASE_FILES = {
    "ckpt": "genau-full-{size}.ckpt",
    "yaml": "genau-full-{size}.yaml",
    "vae_ckpt": "1dvae_64_344999.ckpt",
    "hifigan_ckpt": "hifigan_16k_64bins.ckpt",
    "hifigan_json": "hifigan_16k_64bins.json",
    "clap_ckpt": "clap_htsat_tiny.pt",
    "t5_dir": "flan-t5-large",
    "roberta_dir": "roberta-base",
}


def load_model(name: str, checkpoint: str | None, device: str):
    """genau-tiny: the shipped weights (`--checkpoint random`: seed-0 random weights; a folder from save_pretrained);
    genau-s / genau-l: a folder of release files."""
    from genau_core.genau import GENAU_TINY, build_genau, load_pretrained

    if name == "genau-tiny":
        from genau_core.genau.model import WEIGHTS_NAME
        from genau_core.genau.tiny_weights import WEIGHTS_DIR

        if checkpoint == "random":
            return build_genau(GENAU_TINY, device=device)
        folder = Path(checkpoint).expanduser() if checkpoint else WEIGHTS_DIR
        if not (folder / WEIGHTS_NAME).exists():
            hint = "rebuild the shipped weights with `python -m genau_core.genau.tiny_weights`" if not checkpoint else "a folder written by save_pretrained"
            raise SystemExit(f"genau-tiny: {folder / WEIGHTS_NAME} not found ({hint})")
        return load_pretrained(folder, device=device)
    if name in ("genau-s", "genau-l"):
        from genau_core.genau.official import OfficialFiles, load_official_genau

        if not checkpoint:
            raise SystemExit(f"{name}: pass --checkpoint FOLDER holding {', '.join(v.format(size=name[-1]) for v in RELEASE_FILES.values())}")
        folder = Path(checkpoint).expanduser()
        paths = {k: folder / v.format(size=name[-1]) for k, v in RELEASE_FILES.items()}
        missing = [str(p) for p in paths.values() if not p.exists()]
        if missing:
            raise SystemExit(f"{name}: missing {', '.join(missing)}")
        return load_official_genau(OfficialFiles(**paths), name=name, device=device)
    folder = Path(name).expanduser()
    if (folder / "genau_config.json").exists():
        return load_pretrained(folder, device=device)
    raise SystemExit(f"unknown model {name!r}: genau-tiny, genau-s, genau-l or a folder written by save_pretrained")


def cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np
    import soundfile as sf

    from genau_core.genau import GenAuPipeline

    model = load_model(args.model, args.checkpoint, args.device)
    pipe = GenAuPipeline(model)
    prompts = list(args.prompt)
    outs = [Path(args.output)] if len(prompts) == 1 else [Path(args.output).with_name(f"{Path(args.output).stem}_{i}{Path(args.output).suffix or '.wav'}") for i in range(len(prompts))]
    waves = pipe(prompts, [args.seed + i for i in range(len(prompts))], steps=args.steps, guidance=args.guidance, duration_s=args.duration)
    for path, w in zip(outs, waves):
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), np.asarray(w, dtype=np.float32), model.cfg.mel.sample_rate, subtype="PCM_16")
        print(path)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import json
    import os

    from genau_core.genau.train import config_from_args, train

    metrics = train(config_from_args(args))
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(metrics))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from genau_core.genau.train import build_parser as train_parser

    p = argparse.ArgumentParser(prog="genau", description="GenAu text-to-audio: generate and train.")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="text -> 16 kHz wav")
    g.add_argument("prompt", nargs="+")
    g.add_argument("-o", "--output", required=True, help="wav path (several prompts: _0, _1, ... suffixes)")
    g.add_argument("--model", default="genau-tiny")
    g.add_argument("--checkpoint", default=None, help="genau-tiny: a saved folder or 'random'; genau-s/-l: the release-file folder")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the model config's)")
    g.add_argument("--guidance", type=float, default=None)
    g.add_argument("--duration", type=float, default=10.0)
    g.add_argument("--device", default="cpu")
    g.set_defaults(func=cmd_generate)
    t = sub.add_parser("train", help="train the 1D-VAE or the latent diffusion model")
    train_parser(t)
    t.set_defaults(func=cmd_train)

    from genau_core.recap.cli import add_parser as add_recap_parser

    add_recap_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
