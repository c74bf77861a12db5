"""Every registered metric backbone, seed-0 random weights, on fixed clips: all outputs into one .npz, so a
refactor can be shown to move no number (compare two snapshots bit for bit with --compare).

    python benchmarks/parity/backbone_snapshot.py /tmp/before.npz          # on the old tree
    python benchmarks/parity/backbone_snapshot.py /tmp/after.npz --compare /tmp/before.npz

Clips: a 3.1 s and a 9.5 s mix of tones and seeded noise at each backbone's own rate (mono), so every
network's input path past decoding runs (padding, repeat-pad, cropping, windows); CLAP text towers embed
two captions with the in-process test tokenizer. Wall time on 2 CPU cores: ~3 min (OpenL3 dominates).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

CAPTIONS = ["a dog barks while rain falls", "an engine idles with a low hum"]


def clip(seconds: float, rate: int, seed: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    x = (
        0.3 * np.sin(2 * np.pi * 440 * t)
        + 0.2 * np.sin(2 * np.pi * 1234 * t * (1 + 0.1 * t))
        + 0.05 * rng.standard_normal(t.size)
    )
    return x.astype(np.float32)


def test_tokenizer():
    try:
        from genau_core.tokenizers import bpe_roberta_tokenizer
    except ImportError:  # trees before the layer move (issue 16)
        from bench.metrics.backbones._tokenizers import build_test_roberta_tokenizer as bpe_roberta_tokenizer
    return bpe_roberta_tokenizer()


def snapshot() -> dict[str, np.ndarray]:
    from bench.metrics.backbones import BACKBONES, backbone_class

    out: dict[str, np.ndarray] = {}
    for name in BACKBONES:
        t0 = time.perf_counter()
        cls = backbone_class(name)
        if name.startswith("laion-clap"):
            bb = cls(tokenizer=test_tokenizer())
        elif name.startswith("ms-clap"):
            bb = cls(tokenizer=_ms_tokenizer(name))
        else:
            bb = cls()
        bb.init_random(0)
        clips = [clip(3.1, bb.sample_rate, 1), clip(9.5, bb.sample_rate, 2)]
        for i, result in enumerate(bb.embed(clips)):
            for key, value in result.items():
                out[f"{name}/{i}/{key}"] = np.asarray(value)
        if hasattr(bb, "embed_text"):
            out[f"{name}/text"] = np.asarray(bb.embed_text(CAPTIONS))
        print(f"{name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return out


def _ms_tokenizer(name: str):
    try:
        from genau_core.tokenizers import bpe_gpt2_tokenizer, wordpiece_bert_tokenizer
    except ImportError:  # trees before the layer move (issue 16)
        from bench.metrics.backbones._tokenizers import build_test_bert_tokenizer as wordpiece_bert_tokenizer
        from bench.metrics.backbones._tokenizers import build_test_gpt2_tokenizer as bpe_gpt2_tokenizer
    return wordpiece_bert_tokenizer() if name == "ms-clap-2022" else bpe_gpt2_tokenizer()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--compare", help="an earlier snapshot: every array must be equal, bit for bit")
    args = p.parse_args()
    arrays = snapshot()
    np.savez(args.out, **arrays)
    print(f"{len(arrays)} arrays from {len({k.split('/')[0] for k in arrays})} backbones -> {args.out}")
    if args.compare:
        before = dict(np.load(args.compare))
        differ = [
            k
            for k in sorted(set(before) | set(arrays))
            if k not in before or k not in arrays or not np.array_equal(before[k], arrays[k])
        ]
        print(
            f"compared {len(before)} arrays with {args.compare}: {len(differ)} differ"
            + (f": {differ[:10]}" if differ else "")
        )
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
