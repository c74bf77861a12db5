"""Latency per 10 s clip: AutoCap with the Q-Former (256 tokens into BART) vs the same model
feeding all 1024 time-aligned HTSAT tokens into BART (issue 5, deliverable 7; paper: the
Q-Former's 4x fewer tokens make AutoCap fast, 0.28 s per clip on GPU).

Both models are the full-size architecture (HTSAT-tiny geometry at 32 kHz, LAION-CLAP
HTSAT-base at 48 kHz, bart-base dimensions and vocabulary, Q-Former 256 x 256, 8 heads, 2
layers) with random weights; they share their frozen encoders and differ only in
`audio_tokens`. Random weights do not change the arithmetic; to make decoding cost equal and
independent of what a random model emits, both decode exactly `--tokens` tokens (min_length =
max_length) with the official beam search (2 beams, no-repeat-3-grams). The vocabulary is a
synthetic 50265-entry word-level tokenizer (bart-base's size: the LM head dominates decoding).

    python benchmarks/bench_autocap_qformer.py                 # batch 1, 3 timed runs
    python benchmarks/bench_autocap_qformer.py --batch 8 --runs 2 --device cuda

Prints a markdown block for benchmarks/RESULTS.md: per stage and in total, seconds per clip for
both variants and the ratio (all tokens / Q-Former).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time

import numpy as np
import torch

from genau_core.autocap.configs import AUTOCAP_PAPER, GenerationSettings
from genau_core.autocap.model import AutoCapModel, build_autocap


def timing_tokenizer(cfg):
    """A word-level tokenizer with bart-base's vocabulary size and special ids (timing only)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    vocab = {t: i for i, t in enumerate(specials)}
    vocab.update({f"w{i}": i for i in range(len(specials), cfg.bart.vocab_size)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.add_special_tokens({"additional_special_tokens": list(cfg.delimiter_tokens)})
    return fast


def build_pair(device: str) -> tuple[AutoCapModel, AutoCapModel]:
    cfg_q = AUTOCAP_PAPER
    cfg_all = dataclasses.replace(
        cfg_q,
        name="autocap-all-tokens",
        audio_tokens="all",
        bart=dataclasses.replace(cfg_q.bart, max_position_embeddings=1160),
    )
    tok = timing_tokenizer(cfg_q)
    q = build_autocap(cfg_q, seed=0, tokenizer=tok)
    a = build_autocap(cfg_all, seed=0, tokenizer=tok)
    # the same model otherwise: share the frozen encoders, copy every common weight
    a.htsat, a.clap = q.htsat, q.clap
    common = {k: v for k, v in q.state_dict().items() if k in a.state_dict() and a.state_dict()[k].shape == v.shape}
    a.load_state_dict(common, strict=False)
    return q.to(device).eval(), a.to(device).eval()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.inference_mode()
def time_once(model: AutoCapModel, clips, settings: GenerationSettings, n_tokens: int, device: str) -> dict[str, float]:
    t0 = time.perf_counter()
    batch = model.prepare(clips).to(device)  # numpy: normalise, resample 32 -> 48 kHz, tokenise
    _sync(device)
    t1 = time.perf_counter()
    batch.features = model.frozen_features(batch.waveform, batch.clap_waveform)  # HTSAT + CLAP
    _sync(device)
    t2 = time.perf_counter()
    enc_in = model.encoder_input(batch)  # bridge (Q-Former or projection) + layout
    model.bart.get_encoder()(inputs_embeds=enc_in.embeds, attention_mask=enc_in.mask)
    _sync(device)
    t3 = time.perf_counter()
    ids = model.generate_ids(batch, settings, min_length=n_tokens, max_length=n_tokens)  # encoder again + beam search
    _sync(device)
    t4 = time.perf_counter()
    assert ids.shape[1] == n_tokens, ids.shape
    return {
        "prepare": t1 - t0,
        "encoders": t2 - t1,
        "bart_encoder": t3 - t2,
        "generate": t4 - t3,
        "total": (t1 - t0) + (t2 - t1) + (t4 - t3),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=1, help="clips per call (latency per clip = time / batch)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--tokens", type=int, default=30, help="decoded tokens per caption (the official max_length)")
    p.add_argument("--beams", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    q, a = build_pair(args.device)
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(32000 * 10)).astype(np.float32) for _ in range(args.batch)]
    settings = dataclasses.replace(GenerationSettings(), num_beams=args.beams)
    results: dict[str, list[dict]] = {"qformer": [], "all_tokens": []}
    for name, model in (("qformer", q), ("all_tokens", a)):
        time_once(model, clips, settings, args.tokens, args.device)  # warm-up
    for _ in range(args.runs):  # interleaved, so load changes hit both variants alike
        for name, model in (("qformer", q), ("all_tokens", a)):
            results[name].append(time_once(model, clips, settings, args.tokens, args.device))
    stages = ("prepare", "encoders", "bart_encoder", "generate", "total")
    # fastest run per stage: on a shared machine other tenants only ever add time
    med = {n: {s: min(r[s] for r in runs) / args.batch for s in stages} for n, runs in results.items()}
    paired = [a_["total"] / q_["total"] for q_, a_ in zip(results["qformer"], results["all_tokens"])]
    n_q = q.cfg.max_encoder_tokens - q.cfg.max_prompt_tokens
    n_a = a.cfg.max_encoder_tokens - a.cfg.max_prompt_tokens
    device = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    )
    lines = [
        f"### AutoCap: Q-Former vs all HTSAT tokens (seconds per 10 s clip, fastest of {args.runs} interleaved runs, "
        f"batch {args.batch})",
        "",
        f"Device: {device}; torch {torch.__version__}; random full-size weights; {args.tokens} tokens decoded, beam "
        f"{args.beams}.",
        "",
        "| stage | Q-Former (%d tokens into BART) | all HTSAT tokens (%d) | ratio |" % (n_q, n_a),
        "|---|---|---|---|",
    ]
    for s in stages:
        ratio = med["all_tokens"][s] / med["qformer"][s] if med["qformer"][s] > 0 else float("nan")
        lines.append(f"| {s} | {med['qformer'][s]:.3f} | {med['all_tokens'][s]:.3f} | {ratio:.2f}x |")
    bart_q = med["qformer"]["generate"]
    bart_a = med["all_tokens"]["generate"]
    lines += [
        "",
        f"Total speed-up from the Q-Former: {med['all_tokens']['total'] / med['qformer']['total']:.2f}x "
        f"(BART part, encoder + beam search: {bart_a / bart_q:.2f}x; the frozen encoders cost the same in both); "
        f"per-run paired total ratios: {', '.join(f'{r:.2f}' for r in paired)} (median "
        f"{statistics.median(paired):.2f}x).",
        "stages: prepare = normalisation, 32->48 kHz resampling, tokenising; encoders = HTSAT + CLAP; "
        "bart_encoder = bridge + BART encoder alone (shown separately; `generate` runs it again) ; "
        "generate = bridge + BART encoder + beam search; total = prepare + encoders + generate.",
    ]
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"per_clip_median_s": med, "runs": results, "args": vars(args), "device": device}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
