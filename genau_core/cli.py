"""`genau` command line: generate audio from text, train the VAE / the latent diffusion model.

genau generate "a dog barks while rain falls" -o out.wav --model genau-tiny --seed 0
genau generate "a steady pure sine tone at 440 hertz" -o tone.wav        # genau-tiny is the default
genau generate "rain" -o r.wav --model genau-tiny --checkpoint random  # seed-0 random weights
genau generate "rain" -o rain.wav --model genau-s --checkpoint /path/to/release-files
genau generate "rain" -o rain.wav --model genau-l-full-hq-data --checkpoint /path/to/release-files --weights ema
genau train ldm --manifest demo.jsonl --out runs/tiny --steps 200
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from genau_core.errors import GenauBenchError, UsageError, one_line

# model name -> release file stem (HF mali6/autocap; the official download_manager.py names)
RELEASE_STEMS = {"genau-s": "genau-full-s", "genau-l": "genau-full-l", "genau-l-full-hq-data": "genau-l-full-hq-data"}
# genau-l-full-hq-data is the default model of the official scripts/text_to_audio.py, whose own
# defaults (100 DDIM steps, guidance 4.0) it takes here; genau-s / genau-l take their yaml's
# evaluation_params (scripts/generate_and_eval.py).
SCRIPT_DEFAULTS = {"genau-l-full-hq-data": (100, 4.0)}
RELEASE_FILES = {
    "ckpt": "{stem}.ckpt",
    "yaml": "{stem}.yaml",
    "vae_ckpt": "1dvae_64_344999.ckpt",
    "hifigan_ckpt": "hifigan_16k_64bins.ckpt",
    "hifigan_json": "hifigan_16k_64bins.json",
    "clap_ckpt": "clap_htsat_tiny.pt",
    "t5_dir": "flan-t5-large",
    "roberta_dir": "roberta-base",
}


def load_model(name: str, checkpoint: str | None, device: str, weights: str | None = None):
    """genau-tiny: the shipped weights (`--checkpoint random`: seed-0 random weights; a folder from save_pretrained);
    genau-s / genau-l / genau-l-full-hq-data: a folder of release files, `weights` "raw" (default, as the
    official generate_and_eval.py) or "ema" (the checkpoint's model_ema.* copy)."""
    from genau_core.genau import GENAU_TINY, build_genau, load_pretrained

    if name == "genau-tiny":
        from genau_core.genau.model import WEIGHTS_NAME
        from genau_core.genau.tiny_weights import WEIGHTS_DIR

        if checkpoint == "random":
            return build_genau(GENAU_TINY, device=device)
        folder = Path(checkpoint).expanduser() if checkpoint else WEIGHTS_DIR
        if not (folder / WEIGHTS_NAME).exists():
            hint = (
                "rebuild the shipped weights with `python -m bench.tiny_genau`"
                if not checkpoint
                else "a folder written by save_pretrained"
            )
            raise SystemExit(f"genau-tiny: {folder / WEIGHTS_NAME} not found ({hint})")
        return load_pretrained(folder, device=device)
    if weights is not None and name not in RELEASE_STEMS:
        known = ", ".join(RELEASE_STEMS)
        raise SystemExit(f"--weights {weights}: only the release models ({known}) have a weight choice")
    if name in RELEASE_STEMS:
        from dataclasses import replace

        from genau_core.genau.official import DEFAULT_WEIGHTS, OfficialFiles, load_official_genau

        stem = RELEASE_STEMS[name]
        if not checkpoint:
            needed = ", ".join(v.format(stem=stem) for v in RELEASE_FILES.values())
            raise SystemExit(f"{name}: pass --checkpoint FOLDER holding {needed}")
        folder = Path(checkpoint).expanduser()
        paths = {k: folder / v.format(stem=stem) for k, v in RELEASE_FILES.items()}
        missing = [str(p) for p in paths.values() if not p.exists()]
        if missing:
            raise SystemExit(f"{name}: missing {', '.join(missing)}")
        files = OfficialFiles(**paths)
        model = load_official_genau(files, name=name, device=device, weights=weights or DEFAULT_WEIGHTS)
        if name in SCRIPT_DEFAULTS:
            steps, guidance = SCRIPT_DEFAULTS[name]
            model.cfg = model.cfg.replace(diffusion=replace(model.cfg.diffusion, steps=steps, guidance=guidance))
        return model
    folder = Path(name).expanduser()
    if (folder / "genau_config.json").exists():
        return load_pretrained(folder, device=device)
    known = ", ".join(RELEASE_STEMS)
    raise SystemExit(f"unknown model {name!r}: genau-tiny, {known} or a folder written by save_pretrained")


def cmd_generate(args: argparse.Namespace) -> int:
    import time

    import numpy as np
    import soundfile as sf

    from genau_core.genau import GenAuPipeline

    # Progress on stderr (stdout keeps one written path per line): loading takes seconds to a minute,
    # each denoising step a forward pass of the backbone over all prompts.
    start = time.perf_counter()
    print(f"loading {args.model} on {args.device} ...", file=sys.stderr, flush=True)
    model = load_model(args.model, args.checkpoint, args.device, args.weights)
    print(f"loaded {args.model} in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    pipe = GenAuPipeline(model)
    if args.duration > pipe.clip_duration_s:
        limit = pipe.clip_duration_s
        raise UsageError(f"--duration {args.duration:g}: {args.model} generates clips of up to {limit:g} s")
    prompts = list(args.prompt)
    outs = (
        [Path(args.output)]
        if len(prompts) == 1
        else [
            Path(args.output).with_name(f"{Path(args.output).stem}_{i}{Path(args.output).suffix or '.wav'}")
            for i in range(len(prompts))
        ]
    )
    steps = args.steps if args.steps is not None else model.cfg.diffusion.steps
    desc = f"denoising {len(prompts)} prompt{'s' if len(prompts) != 1 else ''}"
    with denoising_progress(model.backbone, steps, desc):
        waves = pipe(
            prompts,
            [args.seed + i for i in range(len(prompts))],
            steps=steps,
            guidance=args.guidance,
            duration_s=args.duration,
        )
    for path, w in zip(outs, waves):
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), np.asarray(w, dtype=np.float32), model.cfg.mel.sample_rate, subtype="PCM_16")
        print(path)
    return 0


@contextmanager
def denoising_progress(backbone, steps: int, desc: str) -> Iterator[None]:
    """A tqdm bar (stderr) advanced by each forward pass of the denoising backbone (one per sampler
    step, classifier-free guidance included), then a line while the latents are decoded to audio."""
    from tqdm.auto import tqdm

    bar = tqdm(total=steps, desc=desc, unit="step", file=sys.stderr)

    def step_done(*_) -> None:
        bar.update(1)
        if bar.n == steps:
            bar.close()
            print("decoding latents to audio (VAE + vocoder) ...", file=sys.stderr, flush=True)

    handle = backbone.register_forward_hook(step_done)
    try:
        yield
    finally:
        handle.remove()
        bar.close()


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
    g.add_argument("prompt", nargs="+", help="text prompt(s); one wav per prompt")
    g.add_argument("-o", "--output", required=True, help="wav path (several prompts: _0, _1, ... suffixes)")
    g.add_argument(
        "--model",
        default="genau-tiny",
        help="genau-tiny (default, shipped), genau-s, genau-l, genau-l-full-hq-data, "
        "or a folder written by save_pretrained",
    )
    g.add_argument(
        "--checkpoint",
        default=None,
        help="genau-tiny: a saved folder or 'random'; "
        "genau-s / genau-l / genau-l-full-hq-data: the release-file folder",
    )
    g.add_argument(
        "--weights",
        choices=("raw", "ema"),
        default=None,
        help="release models: raw weights (default, as the official generate_and_eval.py) "
        "or the checkpoint's EMA copy (model_ema.*, as inference_file.py and the Gradio demo)",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of the first prompt; prompt i gets seed + i (default: 0)")
    g.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help="DDIM steps (default: the model config's; genau-l-full-hq-data: 100, as text_to_audio.py)",
    )
    g.add_argument(
        "--guidance", type=float, default=None, help="classifier-free guidance scale (default: the model config's)"
    )
    g.add_argument(
        "--duration", type=_positive_float, default=10.0, help="seconds of audio per prompt (default: %(default)s)"
    )
    g.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:N, mps")
    g.set_defaults(func=cmd_generate)
    t = sub.add_parser("train", help="train the 1D-VAE or the latent diffusion model")
    train_parser(t)
    t.set_defaults(func=cmd_train)

    from genau_core.recap.cli import add_parser as add_recap_parser

    add_recap_parser(sub)
    return p


def _positive_int(text: str) -> int:
    if not text.lstrip("+").isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GenauBenchError as e:  # a user-fixable error: one line, exit status 1
        raise SystemExit(f"error: {one_line(e)}") from None


if __name__ == "__main__":
    sys.exit(main())
