"""FIT (GenAu's backbone) against a DiT of equal width and depth over the same 256 latent tokens.

What is compared, per configuration (`genau-s`, `genau-l`, and a width-256 "small" twin of
genau-s used for CPU timing). The genau-s / genau-l sizes are genau_core's GENAU_S / GENAU_L,
FITTED to the paper's parameter counts (493M, 1.25B) because the release yamls
`genau-full-{s,l}.yaml` are not in the official repository; every FLOP and parameter figure here
inherits that fit. A real release yaml is the authority: `--release-yaml genau-s=genau-full-s.yaml`
(and/or genau-l=...) builds that configuration's backbone from the yaml instead, and the output
names the source of each configuration's sizes.
- FIT: `genau_core.genau.fit.FITBackbone` exactly as configured (patch size 1 over the 256
  VAE latent frames, groups of 32, 256 latent tokens, N x (local + global) blocks + one
  local-only block, context cross-attention, read / write cross-attention).
- DiT (Peebles & Xie 2023): the same 256 tokens (patch size 1 over the same (64, 256) VAE
  latents), the FIT's width (patch channels = latent channels for genau-s; genau-l has
  1024-d patches and 1536-d latents, so the DiT gets 1024 and 1536 in two variants), and the
  FIT's depth counted in self-attention layers (local + global: 26 for genau-s, 38 for
  genau-l), each layer attending over all 256 tokens. Each block is pre-norm self-attention +
  GELU MLP (x4) with adaLN-Zero modulation from one conditioning vector; that vector is the
  sum of the FIT's own three context tokens (summary text embedding, Fourier time, dataset
  id), built by the same module, so the conditioning inputs are identical. The attention and
  MLP modules are the FIT's own (`Attention`, `FeedForward`: same kernels, no biases in q/k/v).

Measured:
- parameters of each backbone (instantiated on the meta device);
- FLOPs of one denoising step = one forward at batch 1, and the classifier-free-guidance step
  (batch 2) is twice that; counted by `torch.utils.flop_counter.FlopCounterMode` on meta
  tensors: linear layers and the attention products (element-wise ops are not counted by
  FlopCounterMode; on real CPU tensors the fused attention kernel is not counted either, on
  meta tensors attention runs as bmm and is: tests/genau_core/genau/test_genau_benchmarks.py checks the
  difference against a hand count);
- CPU latency of one CFG step (batch 2, fp32, no grad): FIT and DiT of the "small" twin are
  run side by side in one process, alternating, median of `--repeats` after `--warmup`, and the
  ratio DiT / FIT is reported (`--latency genau-s` times the full-size pair instead; slow).

Usage:
    OMP_NUM_THREADS=1 python benchmarks/bench_genau_fit_vs_dit.py [--repeats 7] [--latency small|genau-s]
        [--release-yaml genau-s=PATH] [--release-yaml genau-l=PATH] [--markdown RESULTS_SECTION.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from genau_core.genau.configs import GENAU_L, GENAU_S, AttentionSpec, FITConfig  # noqa: E402
from genau_core.genau.fit import Attention, FeedForward, FITBackbone, FourierTime  # noqa: E402


class DiTBlock(nn.Module):
    """Pre-norm self-attention + MLP, both gated and modulated by adaLN-Zero (shift, scale, gate) x 2."""

    def __init__(self, dim: int, spec: AttentionSpec, ff_mult: int, cond_dim: int):
        super().__init__()
        self.attn = Attention(dim, spec)
        self.ff = FeedForward(dim, ff_mult, 0.0)
        # the modules' own pre-norms are replaced: affine-free LayerNorm, then adaLN scale and shift
        self.attn.norm = nn.Identity()
        self.ff.norm = nn.Identity()
        self.attn_norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.ff_norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        s1, b1, g1, s2, b2, g2 = self.ada(c)[:, None].chunk(6, dim=-1)
        x = x + g1 * self.attn(self.attn_norm(x) * (1 + s1) + b1)
        return x + g2 * self.ff(self.ff_norm(x) * (1 + s2) + b2)


class FITConditioning(nn.Module):
    """The FIT's conditioning embeddings (same modules and shapes as in FITBackbone).

    `FITBackbone.build_context` / `patchify` / `unpatchify` only read these attributes and
    `cfg`, so they are called on this module unchanged.
    """

    def __init__(self, cfg: FITConfig):
        super().__init__()
        self.cfg = cfg
        ctx, hidden = cfg.context_channels, 4 * cfg.patch_channels
        self.time_embed = nn.Sequential(
            FourierTime(cfg.time_fourier_dim),
            nn.Linear(cfg.time_fourier_dim + 1, hidden),
            nn.GELU(),
            nn.Linear(hidden, ctx),
        )
        self.dataset_embed = nn.Linear(cfg.dataset_ids_count, ctx) if cfg.use_dataset_id else None
        self.summary_proj = nn.Linear(cfg.summary_channels, ctx, bias=False)


class DiTBackbone(nn.Module):
    """Same inputs and outputs as FITBackbone: (x (B, C, T), t, summary, dataset ids) -> (eps, tokens)."""

    def __init__(self, fit_cfg: FITConfig, *, width: int, depth: int, heads: AttentionSpec):
        super().__init__()
        self.cfg = fit_cfg
        ctx = fit_cfg.context_channels
        self.embed = FITConditioning(fit_cfg)
        self.patch_in = nn.Linear(fit_cfg.input_channels * fit_cfg.patch_size, width)
        self.pos = nn.Parameter(torch.zeros(fit_cfg.patches, width))
        self.blocks = nn.ModuleList(DiTBlock(width, heads, fit_cfg.ff_mult, ctx) for _ in range(depth))
        self.out_norm = nn.LayerNorm(width, elementwise_affine=False)
        self.out_ada = nn.Sequential(nn.SiLU(), nn.Linear(ctx, 2 * width))
        self.patch_out = nn.Linear(width, fit_cfg.input_channels * fit_cfg.patch_size)

    def forward(self, x, timesteps, summary, dataset_ids=None, prev_latents=None):
        c = FITBackbone.build_context(self.embed, timesteps, summary, dataset_ids).sum(dim=1)
        tokens = FITBackbone.patchify(self.embed, x)
        h = self.patch_in(tokens) + self.pos
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.out_ada(c)[:, None].chunk(2, dim=-1)
        out = self.patch_out(self.out_norm(h) * (1 + scale) + shift)
        return FITBackbone.unpatchify(self.embed, out), h


def fit_depth(cfg: FITConfig) -> int:
    """Self-attention layers of a FIT: local layers of all blocks (incl. the local-only one) + global layers."""
    return (cfg.blocks + 1) * cfg.local_layers_per_block + cfg.blocks * cfg.global_layers_per_block


def small_twin(cfg: FITConfig, width: int = 256) -> FITConfig:
    """genau-s layout (depths, tokens, groups) at a smaller width, for CPU timing."""
    heads = AttentionSpec(width // 64, 64)
    return dataclasses.replace(
        cfg,
        patch_channels=width,
        latent_channels=width,
        context_channels=width,
        local_attention=heads,
        global_attention=heads,
        read_attention=heads,
        write_attention=heads,
        context_attention=heads,
    )


def dit_for(cfg: FITConfig, width: int) -> DiTBackbone:
    return DiTBackbone(cfg, width=width, depth=fit_depth(cfg), heads=AttentionSpec(width // 64, 64))


def _inputs(cfg: FITConfig, batch: int, device: str):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cfg.input_channels, cfg.input_length, generator=g).to(device)
    t = torch.full((batch,), 500, dtype=torch.long, device=device)
    s = torch.randn(batch, cfg.summary_channels, generator=g).to(device)
    d = torch.zeros(batch, dtype=torch.long, device=device)
    return x, t, s, d


def params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def count_flops(model: nn.Module, cfg: FITConfig, batch: int = 1) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    model.requires_grad_(False)
    with FlopCounterMode(display=False) as counter:
        model(*_meta_inputs(cfg, batch))
    return int(counter.get_total_flops())


def _meta_inputs(cfg: FITConfig, batch: int):
    return (
        torch.empty(batch, cfg.input_channels, cfg.input_length, device="meta"),
        torch.zeros(batch, dtype=torch.long, device="meta"),
        torch.empty(batch, cfg.summary_channels, device="meta"),
        torch.zeros(batch, dtype=torch.long, device="meta"),
    )


def on_meta(build):
    with torch.device("meta"):
        return build()


FITTED = (
    "fitted to the paper's parameter count (genau_core GENAU_S / GENAU_L; the release yaml is not in the official repo)"
)


def fit_configs(release_yamls: dict[str, str] | None = None) -> dict[str, tuple[FITConfig, str]]:
    """name -> (FIT config, where its sizes come from): a given release yaml (the authority),
    else our fitted GENAU_S / GENAU_L."""
    from genau_core.genau.official import fit_config_from_official_yaml, read_release_yaml

    release_yamls = dict(release_yamls or {})
    unknown = sorted(set(release_yamls) - {"genau-s", "genau-l"})
    if unknown:
        raise SystemExit(f"--release-yaml {unknown[0]}=...: expected genau-s=PATH or genau-l=PATH")
    out = {}
    for name, fitted in (("genau-s", GENAU_S.fit), ("genau-l", GENAU_L.fit)):
        if name in release_yamls:
            path = release_yamls[name]
            out[name] = (fit_config_from_official_yaml(read_release_yaml(path)), f"release yaml {path}")
        else:
            out[name] = (fitted, FITTED)
    return out


def static_rows(configs: dict[str, tuple[FITConfig, str]] | None = None) -> list[dict]:
    configs = configs or fit_configs()
    rows = []
    named = [(n, c) for n, (c, _) in configs.items()]
    for name, cfg in (*named, ("small (width 256)", small_twin(configs["genau-s"][0]))):
        fit = on_meta(lambda: FITBackbone(cfg))
        widths = sorted({cfg.patch_channels, cfg.latent_channels})
        rows.append(
            dict(
                config=name,
                model="FIT",
                width="/".join(map(str, (cfg.patch_channels, cfg.latent_channels))),
                depth=f"{fit_depth(cfg)} self-attn ({(cfg.blocks + 1) * cfg.local_layers_per_block} local + "
                f"{cfg.blocks * cfg.global_layers_per_block} global)",
                params=params(fit),
                flops=count_flops(fit, cfg),
            )
        )
        for w in widths:
            dit = on_meta(lambda: dit_for(cfg, w))
            rows.append(
                dict(
                    config=name,
                    model="DiT",
                    width=str(w),
                    depth=f"{fit_depth(cfg)} blocks",
                    params=params(dit),
                    flops=count_flops(dit, cfg),
                )
            )
    return rows


@torch.no_grad()
def latency(cfg: FITConfig, width: int, repeats: int, warmup: int) -> dict:
    torch.manual_seed(0)
    fit = FITBackbone(cfg).eval()
    dit = dit_for(cfg, width).eval()
    inputs = _inputs(cfg, 2, "cpu")  # one classifier-free-guidance step: conditional + unconditional
    times = {"FIT": [], "DiT": []}
    for i in range(warmup + repeats):
        for name, m in (("FIT", fit), ("DiT", dit)) if i % 2 == 0 else (("DiT", dit), ("FIT", fit)):
            t0 = time.perf_counter()
            m(*inputs)
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "fit_s": med["FIT"],
        "dit_s": med["DiT"],
        "ratio_dit_over_fit": med["DiT"] / med["FIT"],
        "repeats": repeats,
        "fit_params": params(fit),
        "dit_params": params(dit),
    }


def fmt_g(x: int) -> str:
    return f"{x / 1e9:.1f}"


def markdown(rows: list[dict], lat: dict, lat_name: str, sources: dict[str, str] | None = None) -> str:
    fit_by = {r["config"]: r for r in rows if r["model"] == "FIT"}
    sources = sources or {n: s for n, (_, s) in fit_configs().items()}
    out = [
        "## GenAu: FIT vs DiT (benchmarks/bench_genau_fit_vs_dit.py)",
        "",
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        "thread(s). "
        "FLOPs of one backbone forward at batch 1 (one denoising step without guidance; a classifier-free-guidance "
        "step "
        "is 2x), counted by `torch.utils.flop_counter.FlopCounterMode` on meta tensors (matmuls + attention). "
        "DiT = adaLN-Zero DiT blocks over the same 256 tokens, width as given, depth = the FIT's number of "
        "self-attention layers.",
        "",
        "",
        *[f"Sizes of {n}: {src}." for n, src in sources.items()],
        "",
        "| config | backbone | width | depth | params | GFLOPs / step | vs FIT |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        base = fit_by[r["config"]]
        rel = (
            "1.00"
            if r["model"] == "FIT"
            else f"{r['flops'] / base['flops']:.2f}x FLOPs, {r['params'] / base['params']:.2f}x params"
        )
        out.append(
            f"| {r['config']} | {r['model']} | {r['width']} | {r['depth']} | {r['params'] / 1e6:.1f}M | "
            f"{fmt_g(r['flops'])} | {rel} |"
        )
    out += [
        "",
        f"CPU latency of one CFG step (batch 2, fp32), {lat_name}, measured side by side in one process "
        f"(alternating, median of {lat['repeats']}): FIT {lat['fit_s'] * 1e3:.1f} ms, DiT {lat['dit_s'] * 1e3:.1f} ms, "
        f"**DiT / FIT = {lat['ratio_dit_over_fit']:.2f}**.",
        "",
    ]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--latency", choices=["small", "genau-s"], default="small")
    p.add_argument("--markdown", default=None, help="also write the markdown section to this file")
    p.add_argument(
        "--release-yaml",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="genau-s=PATH / genau-l=PATH: build that backbone from a real release yaml (the authority) "
        "instead of our sizes fitted to the paper's parameter counts",
    )
    args = p.parse_args(argv)
    pairs = [a.split("=", 1) for a in args.release_yaml]
    if any(len(kv) != 2 for kv in pairs):
        raise SystemExit("--release-yaml expects NAME=PATH, e.g. genau-s=/data/genau-full-s.yaml")
    configs = fit_configs(dict(pairs))
    for name, (_, src) in configs.items():
        print(f"{name}: sizes {src}")
    rows = static_rows(configs)
    for r in rows:
        print(
            f"{r['config']:>18} {r['model']:>4} width {r['width']:>9} depth {r['depth']:<34} params "
            f"{r['params'] / 1e6:9.2f}M "
            f"GFLOPs/step {r['flops'] / 1e9:8.2f}"
        )
    cfg = configs["genau-s"][0] if args.latency == "genau-s" else small_twin(configs["genau-s"][0])
    lat_name = (
        "genau-s (full size)"
        if args.latency == "genau-s"
        else "small twin of genau-s (width 256, same depth and tokens)"
    )
    lat = latency(cfg, cfg.patch_channels, args.repeats, args.warmup)
    print(
        f"CPU latency, {lat_name}: FIT {lat['fit_s'] * 1e3:.1f} ms  DiT {lat['dit_s'] * 1e3:.1f} ms  "
        f"DiT/FIT {lat['ratio_dit_over_fit']:.3f}  (median of {lat['repeats']}, batch 2)"
    )
    md = markdown(rows, lat, lat_name, {n: src for n, (_, src) in configs.items()})
    if args.markdown:
        Path(args.markdown).write_text(md)
    print()
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
