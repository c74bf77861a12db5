"""How far the protocols' two big networks are from this machine's float32 rate, and what its faster arithmetic
would cost in accuracy: the measurements behind issue 17 item 6's speed verdict (RESULTS.protocols_reference.md).

In `bench_protocols_vs_reference.py` our OpenL3 and PaSST forwards alone take more than a third of the reference
side's wall time, so a 3x lead needs them faster. This script measures, in one process on the same machine:

  gemm       float32 matrix products (4096 x 1024 x 1024) through MKL (torch.mm) and oneDNN (the fast path's
             linear): the machine's practical float32 rate, the yardstick for the rows below.
  openl3     OpenL3 mel256 as `bench` runs it (FoldedOpenL3AudioNet, the fast CPU kernels, the allocator policy), one
             batch of 16 windows: ms per window and GFLOP/s of each stage (FLOPs from the layer shapes).
  winograd   each OpenL3 3x3 layer by oneDNN's direct convolution (channels-last) and by our Winograd F(2x2, 3x3)
             over oneDNN matmuls (`_cpu_kernels.winograd_conv3x3`, which the fast path uses from 256 x 512
             channel pairs up): ms per window, and the two outputs' relative difference.
  frontend   OpenL3's STFT as the reference computes it (float32 conv1d with the stored DFT kernels, the rounding the
             parity depends on) against a float64 rFFT: ms per window, and each one's largest dB difference from a
             float64 evaluation of the same kernels on the fixture's 10-s clips (their near-silent upper band).
  passt      one PaSST-S forward of 2 windows (the CPU batch), split by the profiler into linear layers and
             attention (PyTorch's flash kernel), with GFLOP/s from the layer shapes.
  bf16       what this CPU's AMX could give instead: a 256 -> 256 OpenL3 layer and the GEMM above in bfloat16
             (inputs rounded, bfloat16 out; PyTorch has no CPU kernel with float32 out), and float32 in with
             oneDNN's bf16 math mode (float32 out), and the exact 3-term bfloat16 split (bf16x3) through that mode:
             time, and relative error against float64.

    .venv/bin/python benchmarks/bench_kernel_ceiling.py [--markdown]

Nothing here is a test: timings depend on the machine and its load; run it idle. Writes
benchmarks/RESULTS.kernel_ceiling.md with --markdown (the analysis after NOTES_MARKER is kept).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout, uninstalled
sys.path.insert(0, str(HERE))
from bench_vs_reference import write_keeping_notes  # noqa: E402  (same folder)

from bench.allocator import keep_large_blocks_in_heap  # noqa: E402
from bench.metrics.backbones._cpu_kernels import winograd_conv3x3, winograd_weight_transform  # noqa: E402

OPENL3_WINDOWS = 16  # the backbone's CPU batch
CLIPS = HERE / ".work" / "bench_protocols_ref" / "gen"  # 10-s 44.1 kHz stereo clips of bench_protocols_vs_reference


def best_of(fn, repeats: int = 3) -> float:
    """Best wall time of `repeats` calls after one warm-up call (seconds)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|."""
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------------------------------------------------- gemm
def gemm_rows() -> list[tuple]:
    rows = []
    for m, k, n in ((4096, 1024, 1024), (2048, 2048, 2048)):
        a, w = torch.randn(m, k), torch.randn(n, k)
        flop = 2 * m * k * n
        mkl = best_of(lambda: a @ w.t(), 5)
        onednn = best_of(lambda: torch.ops.mkldnn._linear_pointwise(a, w, None, "none", [], ""), 5)
        rows.append(("gemm", f"float32 {m}x{k}x{n}, MKL (torch.mm)", f"{mkl * 1e3:.1f} ms", f"{flop / mkl / 1e9:.0f}"))
        rows.append(
            (
                "gemm",
                f"float32 {m}x{k}x{n}, oneDNN (fast-path linear)",
                f"{onednn * 1e3:.1f} ms",
                f"{flop / onednn / 1e9:.0f}",
            )
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core's rate: times the core count, an upper bound for the machine
    try:
        one = best_of(lambda: a @ w.t(), 3)
    finally:
        torch.set_num_threads(threads)
    rows.append(("gemm", f"float32 {m}x{k}x{n}, MKL, 1 thread", f"{one * 1e3:.1f} ms", f"{flop / one / 1e9:.0f}"))
    return rows


# -------------------------------------------------------------------------------------------------------- openl3
def _openl3():
    from bench.metrics.backbones.openl3 import OpenL3Backbone

    return OpenL3Backbone().init_random(0).model


def openl3_rows(net) -> list[tuple]:
    c = net.config
    frames = 199
    conv_flop = {}
    ch, h, w = 1, c.n_mels, frames
    for i in range(1, 8):
        conv = getattr(net, f"conv2d_{i}")
        conv_flop[f"conv2d_{i}"] = 2 * conv.in_channels * conv.out_channels * 9 * h * w
        if i in (2, 4, 6):
            h, w = h // 2, w // 2
        ch = conv.out_channels
    conv_flop["audio_embedding_layer"] = 2 * ch * net.audio_embedding_layer.out_channels * 9 * h * w
    front_flop = 2 * frames * 2 * (c.n_fft // 2 + 1) * c.n_fft
    x = torch.randn(OPENL3_WINDOWS, 1, c.sample_rate) * 0.1
    stages: dict[str, float] = {}

    def timed(name, fn, *args):
        t0 = time.perf_counter()
        y = fn(*args)
        stages[name] = stages.get(name, 0.0) + time.perf_counter() - t0
        return y

    with torch.inference_mode():
        for rep in range(4):
            if rep == 1:
                stages.clear()  # the first pass builds the folded copies and the Winograd weights
            h = timed("front end (STFT conv1d, mel, dB) + BN", lambda v: net.batch_normalization_1(net.speclayer(v)), x)
            for i in range(1, 8):
                h = timed(f"conv2d_{i}", net.conv_block, i, h)
                if i in (2, 4, 6):
                    h = timed("2x2 max pooling (3)", net.pool, h)
            h = timed("audio_embedding_layer", net.audio_embedding_layer, h)
    rows = []
    per = 3 * OPENL3_WINDOWS
    for name, t in stages.items():
        flop = conv_flop.get(name, front_flop if name.startswith("front") else 0)
        rate = f"{flop / (t / per) / 1e9:.0f}" if flop else ""
        rows.append(("openl3", name, f"{t / per * 1e3:.2f} ms/window", rate))
    total = sum(stages.values()) / per
    rows.append(("openl3", "**all stages** (x 42 windows = one 10-s stereo file)", f"{total * 1e3:.1f} ms/window", ""))
    return rows


def winograd_rows(net) -> list[tuple]:
    rows = []
    h, w = net.config.n_mels, 199
    for i in range(1, 8):
        conv = getattr(net, f"conv2d_{i}")
        if conv.in_channels >= 64:
            rows.append(_winograd_row(f"conv2d_{i}", conv.in_channels, conv.out_channels, h, w))
        if i in (2, 4, 6):
            h, w = h // 2, w // 2
    emb = net.audio_embedding_layer
    rows.append(_winograd_row("audio_embedding_layer", emb.in_channels, emb.out_channels, h, w))
    return rows


def _winograd_row(name: str, cin: int, cout: int, h: int, w: int) -> tuple:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(OPENL3_WINDOWS, cin, h, w, generator=g).relu().contiguous(memory_format=torch.channels_last)
    weight = torch.randn(cout, cin, 3, 3, generator=g) / (3 * cin**0.5)
    u = winograd_weight_transform(weight)
    with torch.inference_mode():
        direct = best_of(lambda: F.conv2d(x, weight, padding=1))
        wino = best_of(lambda: winograd_conv3x3(x, u, None))
        diff = rel(winograd_conv3x3(x, u, None), F.conv2d(x, weight, padding=1))
    per = 1e3 / OPENL3_WINDOWS
    return (
        "winograd",
        f"{name} {cin}->{cout} on {h}x{w}",
        f"direct {direct * per:.2f} / Winograd {wino * per:.2f} ms/window",
        f"rel {diff:.1e}",
    )


def frontend_rows(net) -> list[tuple]:
    import soundfile as sf

    from bench.metrics.backbones.openl3 import stable_audio_metrics_openl3_input
    from genau_core.networks.openl3 import openl3_frames

    files = sorted(CLIPS.glob("*.wav"))[:2]
    if not files:
        return [("frontend", f"no clips in {CLIPS} (run bench_protocols_vs_reference.py first)", "", "")]
    windows = []
    for f in files:
        audio, sr = sf.read(f, dtype="float32", always_2d=True)
        windows.append(openl3_frames(stable_audio_metrics_openl3_input(audio, sr)[0], 0.5))
    x = torch.from_numpy(np.concatenate(windows)[:OPENL3_WINDOWS])[:, None]
    sl, c = net.speclayer, net.config

    def db_of(power: torch.Tensor, mel_basis: torch.Tensor) -> torch.Tensor:
        mel = torch.sqrt(torch.matmul(mel_basis, power))
        db = 10.0 * torch.log10(torch.clamp(mel, min=c.amin))
        db = db - torch.amax(db, dim=(1, 2), keepdim=True)
        return torch.clamp(db, min=-c.dynamic_range)

    def exact64(v):  # the stored float32 kernels, evaluated in float64
        k = torch.cat([sl.dft_real_kernels, sl.dft_imag_kernels]).double()
        spec = F.conv1d(F.pad(v, sl.same_padding()).double(), k, stride=c.hop_length)
        bins = sl.dft_real_kernels.shape[0]
        return db_of(spec[:, :bins].square() + spec[:, bins:].square(), sl.mel_basis.double())

    window = torch.from_numpy(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(c.n_fft) / c.n_fft))

    def fft64(v):
        frames = F.pad(v, sl.same_padding())[:, 0].double().unfold(-1, c.n_fft, c.hop_length)
        spec = torch.fft.rfft(frames * window, dim=-1)
        power = (spec.real.square() + spec.imag.square()).float().transpose(1, 2)
        return db_of(power, sl.mel_basis)

    with torch.inference_mode():
        t_conv, t_fft = best_of(lambda: sl(x)), best_of(lambda: fft64(x))
        truth, conv, fft = exact64(x), sl(x)[:, 0], fft64(x)
    per = 1e3 / len(x)
    return [
        ("frontend", "float32 conv1d (the reference's arithmetic)", f"{t_conv * per:.2f} ms/window",
         f"max dB diff from float64 {(conv.double() - truth).abs().max():.2e}"),
        ("frontend", "float64 rFFT, float32 mel", f"{t_fft * per:.2f} ms/window",
         f"max dB diff from float64 {(fft.double() - truth).abs().max():.2e}; from the conv1d "
         f"{(fft - conv).abs().max():.2e}"),
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------------------- passt
def passt_rows() -> list[tuple]:
    from torch.profiler import ProfilerActivity, profile

    from bench.metrics.backbones.passt import PasstAvBenchmark

    bb = PasstAvBenchmark().init_random(0)
    net, cfg = bb.model, bb.config
    x = torch.randn(bb.batch_size, 320000) * 0.1
    with torch.inference_mode():
        wall = best_of(lambda: net(x), 2)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            net(x)
    self_ms = {}
    for ev in prof.key_averages():
        self_ms[ev.key] = self_ms.get(ev.key, 0.0) + ev.self_cpu_time_total / 1e3
    lin = self_ms.get("mkldnn::_linear_pointwise", 0.0) + self_ms.get("aten::addmm", 0.0)
    att = sum(v for k, v in self_ms.items() if "scaled_dot_product" in k)
    total = sum(self_ms.values())
    d, depth = cfg.embed_dim, cfg.depth
    fp, tp = cfg.grid_size
    tokens = 2 + fp * tp  # 10-s windows fill the (12, 99) grid; + cls and distillation tokens
    n = bb.batch_size
    lin_flop = n * depth * 2 * tokens * (4 * d * d + 2 * d * cfg.mlp_ratio * d)
    att_flop = n * depth * 4 * tokens * tokens * d
    # the profiled pass runs slower than the best unprofiled one: its shares, applied to the best wall time
    per_window = wall / n
    lin_s, att_s = per_window * lin / total, per_window * att / total
    return [
        ("passt", f"forward, {n} windows of 10 s ({tokens} tokens)", f"{per_window * 1e3:.0f} ms/window", ""),
        ("passt", "linear layers (profiler share of the wall time)", f"{lin_s * 1e3:.0f} ms/window ({lin / total:.0%})",
         f"{lin_flop / n / lin_s / 1e9:.0f}"),
        ("passt", "attention, flash kernel (profiler share)", f"{att_s * 1e3:.0f} ms/window ({att / total:.0%})",
         f"{att_flop / n / att_s / 1e9:.0f}"),
    ]  # fmt: skip


def attention_rows() -> list[tuple]:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 12, 1190, 64, generator=g) for _ in range(3))
    with torch.inference_mode():
        flash = best_of(lambda: F.scaled_dot_product_attention(q, k, v))
        with sdpa_kernel(SDPBackend.MATH):
            math = best_of(lambda: F.scaled_dot_product_attention(q, k, v))
    return [
        ("passt", "one attention layer, 2 windows: flash / math kernel", f"{flash * 1e3:.0f} / {math * 1e3:.0f} ms", "")
    ]


# ---------------------------------------------------------------------------------------------------------- bf16
def _split(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    hi = t.to(torch.bfloat16).float()
    return hi, (t - hi).to(torch.bfloat16).float()


def bf16_rows() -> list[tuple]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(OPENL3_WINDOWS, 256, 64, 49, generator=g).relu().contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3, generator=g) / 48
    conv = {}
    rows = []
    conv_ref = F.conv2d(x.double(), w.double(), padding=1)
    mode = torch.backends.mkldnn.conv
    before = mode.fp32_precision
    with torch.inference_mode():
        conv["float32"] = (best_of(lambda: F.conv2d(x, w, padding=1)), F.conv2d(x, w, padding=1))
        xb, wb = x.to(torch.bfloat16), w.to(torch.bfloat16)
        conv["bfloat16 in, bfloat16 out (AMX)"] = (
            best_of(lambda: F.conv2d(xb, wb, padding=1)),
            F.conv2d(xb, wb, padding=1),
        )
        (xh, xl), (wh, wl) = _split(x), _split(w)
        x3 = torch.cat([xh, xh, xl], 1).contiguous(memory_format=torch.channels_last)
        w3 = torch.cat([wh, wl, wh], 1)
        try:
            mode.fp32_precision = "bf16"
            conv["float32 in and out, oneDNN bf16 math mode"] = (
                best_of(lambda: F.conv2d(x, w, padding=1)),
                F.conv2d(x, w, padding=1),
            )
            conv["bf16x3 (exact hi/lo split) in that mode"] = (
                best_of(lambda: F.conv2d(x3, w3, padding=1)),
                F.conv2d(x3, w3, padding=1),
            )
        finally:
            mode.fp32_precision = before
    for name, (t, y) in conv.items():
        rows.append(("bf16", f"conv 256->256 on 64x49, {OPENL3_WINDOWS} windows: {name}", f"{t * 1e3:.0f} ms",
                     f"rel err {rel(y, conv_ref):.1e}"))  # fmt: skip
    a, b = torch.randn(4096, 1024, generator=g), torch.randn(1024, 1024, generator=g)
    ref = a.double() @ b.double()
    with torch.inference_mode():
        t32 = best_of(lambda: a @ b, 5)
        ab, bb = a.to(torch.bfloat16), b.to(torch.bfloat16)
        t16 = best_of(lambda: ab @ bb, 5)
        err16 = rel(ab @ bb, ref)
    flop = 2 * 4096 * 1024 * 1024
    rows.append(
        (
            "bf16",
            "GEMM 4096x1024x1024 float32",
            f"{t32 * 1e3:.1f} ms",
            f"{flop / t32 / 1e9:.0f} GFLOP/s, rel err {rel(a @ b, ref):.1e}",
        )
    )
    rows.append(
        (
            "bf16",
            "GEMM 4096x1024x1024 bfloat16 (AMX)",
            f"{t16 * 1e3:.1f} ms",
            f"{flop / t16 / 1e9:.0f} GFLOP/s, rel err {err16:.1e}",
        )
    )
    try:
        torch.mm(ab, bb, out_dtype=torch.float32)
        out = "available"
    except (RuntimeError, NotImplementedError, TypeError) as e:
        out = f"not available on CPU ({str(e).splitlines()[0][:60]}...)"
    rows.append(("bf16", "bfloat16 in, float32 out (torch.mm out_dtype)", out, ""))
    return rows  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--markdown", action="store_true", help="write benchmarks/RESULTS.kernel_ceiling.md")
    ap.add_argument("--results", default=str(HERE / "RESULTS.kernel_ceiling.md"))
    args = ap.parse_args()
    print(keep_large_blocks_in_heap(), file=sys.stderr)
    torch.manual_seed(0)
    net = _openl3()
    sections = [gemm_rows, lambda: openl3_rows(net), lambda: winograd_rows(net), lambda: frontend_rows(net),
                passt_rows, attention_rows, bf16_rows]  # fmt: skip
    rows = []
    for section in sections:
        got = section()
        for r in got:
            print(" | ".join(r), flush=True)
        rows += got
    lines = [
        "# The protocols' networks against this machine's float32 rate",
        "",
        "Generated by `benchmarks/bench_kernel_ceiling.py`; do not edit the table by hand. What each row measures: the",
        "script's docstring.",
        "",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; CPU capability {torch.backends.cpu.get_cpu_capability()}.",
        "",
        "| part | what | time | GFLOP/s or accuracy |",
        "|---|---|---|---|",
        *(f"| {' | '.join(r)} |" for r in rows),
        "",
    ]
    if args.markdown:
        write_keeping_notes(Path(args.results), "\n".join(lines))
        print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
