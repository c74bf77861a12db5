"""GenAu-S sampling time per 10 s clip on a GPU (random weights; the release checkpoints are not needed).

The full genau-s model (FIT 493M, FLAN-T5-large encoder, LAION-CLAP RoBERTa text tower, 1D-VAE,
HiFi-GAN 16 kHz / 64 bins) is built directly on the GPU with seed-0 random weights and run
through `GenAuPipeline` with the official evaluation settings: DDIM 200 steps, guidance 3.5
(classifier-free guidance doubles the backbone batch), eta 1.0, 10.24 s window cut to 10 s.
Weights do not change the arithmetic, so the time is that of the real model. The real
tokenizers are folders we do not have offline: the in-process tiny tokenizers stand in (they
split words into characters, so prompts are longer in tokens than with FLAN-T5's; the text
encoders run once per clip, a small part of the total either way).

Reported, per batch size: seconds per clip = wall time of text encoding + DDIM loop + VAE
decode + HiFi-GAN for the batch, divided by the batch size (median of `--repeats`, after one
2-step warm-up call, `torch.cuda.synchronize()` around each timed part); the share of text
encoding + DDIM loop in it (the rest is VAE decode + HiFi-GAN); peak GPU memory.

Usage:
    python benchmarks/bench_genau_gpu_sampling.py [--batch-sizes 1 4] [--steps 200] [--dtype fp32|tf32|bf16] [--repeats
    2]
On a machine without CUDA it prints that and exits 0. `--device cpu --config genau-tiny --steps 2`
runs the same code path on the CPU with the tiny configuration (a smoke test, not a benchmark).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

PROMPTS = [
    "a dog barks while rain falls",
    "a man speaks and a car engine revs then accelerates away",
    "birds chirp and wind blows through the trees",
    "a crowd cheers and claps loudly in a stadium",
]


def build_model(name: str, device: torch.device, dtype: torch.dtype):
    """Seed-0 random weights, initialised directly on `device` (no CPU copy of the large model)."""
    from genau_core.genau import get_config
    from genau_core.genau.model import GenAuModel
    from genau_core.genau.tokenizers import tiny_roberta_tokenizer, tiny_t5_tokenizer

    cfg = get_config(name)
    t5_tok = tiny_t5_tokenizer(int(cfg.conditioning.t5["vocab_size"]))
    clap_tok = tiny_roberta_tokenizer(int(cfg.conditioning.clap_text["vocab_size"]), cfg.conditioning.clap_max_length)
    torch.manual_seed(0)
    with torch.device(device):
        model = GenAuModel(cfg, t5_tok, clap_tok)
    return model.to(device=device, dtype=dtype).eval()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--guidance", type=float, default=3.5)
    p.add_argument(
        "--dtype",
        choices=["fp32", "tf32", "bf16"],
        default="fp32",
        help="fp32 (strict), tf32 (fp32 weights, TF32 matmuls and convolutions), bf16 (weights and activations)",
    )
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--config", choices=["genau-s", "genau-l", "genau-tiny"], default="genau-s")
    p.add_argument("--device", default="cuda")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "bench_genau_gpu_sampling: no CUDA GPU on this machine (torch.cuda.is_available() is False); "
            "nothing measured. Run it on a GPU machine to record genau-s seconds per clip."
        )
        return 0
    from genau_core.genau import GenAuPipeline

    tf32 = args.dtype == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    where = torch.cuda.get_device_name(device) if gpu else "cpu"
    dtype = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    t0 = time.perf_counter()
    model = build_model(args.config, device, dtype)
    print(
        f"built {args.config} on {where} in {time.perf_counter() - t0:.1f} s; "
        f"backbone {sum(p.numel() for p in model.backbone.parameters()) / 1e6:.1f}M params, "
        f"total {model.parameter_count() / 1e6:.1f}M; dtype {args.dtype}; torch {torch.__version__}"
    )
    pipe = GenAuPipeline(model)
    rows = []
    for bs in args.batch_sizes:
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(bs)]
        seeds = list(range(bs))
        pipe(prompts, seeds, steps=2, guidance=args.guidance)  # warm-up (kernels, allocator)
        _sync(device)
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        totals, loops = [], []
        for _ in range(args.repeats):
            _sync(device)
            t0 = time.perf_counter()
            z = pipe.sample_latents(prompts, seeds, steps=args.steps, guidance=args.guidance)
            _sync(device)
            t1 = time.perf_counter()
            with torch.no_grad():
                wav = model.mel_to_waveform(model.decode_latents(z))
            _sync(device)
            t2 = time.perf_counter()
            if not torch.isfinite(wav.float()).all():
                raise RuntimeError("non-finite samples")
            totals.append(t2 - t0)
            loops.append(t1 - t0)
        total, loop = statistics.median(totals), statistics.median(loops)
        mem = torch.cuda.max_memory_allocated() / 2**30 if gpu else float("nan")
        rows.append((bs, total / bs, loop / bs, mem))
        print(
            f"batch {bs}: {total / bs:.2f} s per clip ({args.steps} DDIM steps, guidance {args.guidance}); "
            f"text encoding + DDIM loop {loop / total:.0%} of it" + (f"; peak memory {mem:.1f} GiB" if gpu else "")
        )
    print()
    print("| config | device | dtype | batch | steps | s / clip | text + DDIM share | peak GiB |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for bs, per_clip, loop, mem in rows:
        peak = f"{mem:.1f}" if gpu else "-"
        print(
            f"| {args.config} | {where} | {args.dtype} | {bs} | {args.steps} | {per_clip:.2f} | {loop / per_clip:.0%} "
            f"| {peak} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
