"""Full suite vs the reference tools run one after another: same clips, same weights, one run.

Reference side (oracle venv, benchmarks/parity/reference_timing.py): what a researcher runs
today - audioldm_eval `EvaluationHelper(16000).main(gen, ref)` (Cnn14 16 kHz: FD, IS, KL, KID;
its VGGish FAD), then laion_clap (librosa.load 48 kHz + get_audio_embedding_from_data +
get_text_embedding) for CLAP_LAION, then msclap 2023 (get_audio_embeddings(files) +
get_text_embeddings) for CLAP_MS; each tool decodes and resamples the files itself.

Our side (our venv, this script with --side ours): `bench score --gen G --ref R --prompts P
--checkpoint NAME=PATH ...` run in-process through bench.cli.main, official-weights mode on the
very checkpoint files the parity oracle saved (benchmarks/.work/parity/ckpt/), a cold embedding
cache (GENAU_BENCH_CACHE = fresh temp dir, so the checkpoint sha256 memo is cold too), bootstrap
off (the reference tools compute no intervals) and, on a separate line, our default bootstrap 100.
Our run computes FD, IS, KL (softmax+sigmoid), KAD, FAD, CLAP_LAION, CLAP_MS; the reference
computes FD, IS, KL (softmax+sigmoid), KID, FAD, CLAP_LAION, CLAP_MS.

Each side runs in its own subprocess; the wall clock is the whole subprocess (interpreter start,
imports, model building, checkpoint loading, decoding, resampling, forwards, metrics), with the
same thread count (OMP_NUM_THREADS = MKL_NUM_THREADS = torch.set_num_threads = --threads).
Peak RSS per side comes from os.wait4's rusage of that child. The two sides run back to back
--rounds times, alternating which goes first (the machine is shared).

Clips: --n per side, 10 s, deterministic (benchmarks/parity/make_fixture.py's synthesiser):
generated clips at 16 kHz (the protocol's rate), references at --ref-rate (default 32 kHz, as
AudioCaps references are commonly stored; exercises each tool's resampler), PCM-16 WAV, paired
by name, one caption per generated clip.

    .venv/bin/python benchmarks/bench_vs_reference.py [--n 16] [--rounds 2] [--profile]

Needs the oracle venv and checkpoints: benchmarks/parity/README.md steps 1-3a.
Writes benchmarks/RESULTS.reference.md and benchmarks/.work/bench_ref/results.json.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import csv  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work" / "bench_ref"
CKPT = HERE / ".work" / "parity" / "ckpt"
ORACLE_PY = REPO / ".oracle-venv" / "bin" / "python"
OUR_PY = REPO / ".venv" / "bin" / "python"
NOTES_MARKER = "<!-- analysis below: written by hand, kept when the script rewrites the file -->"
CHECKPOINTS = {
    "panns-cnn14-16k": "Cnn14_16k_mAP=0.438.pth",
    "vggish": "vggish-10086976.pth",
    "laion-clap-htsat-base": "music_speech_audioset_epoch_15_esc_89.98.pt",
    "ms-clap-2023": "CLAP_weights_2023.pth",
}


# ============================================================================ fixture


def _cpu_s(side: dict) -> float:
    """user + system CPU seconds of one side of a round."""
    return side["user_s"] + side["sys_s"]


def make_clips(root: Path, n: int, ref_rate: int, seed: int = 2024) -> dict:
    """n generated clips (16 kHz) + n references (ref_rate), 10 s each, same names, captions."""
    sys.path.insert(0, str(HERE / "parity"))
    import soundfile as sf
    from make_fixture import caption, clip_params, synth  # the parity fixture's synthesiser

    spec = {"n": n, "ref_rate": ref_rate, "seed": seed, "seconds": 10.0}
    marker = root / "fixture.json"
    if marker.exists() and json.loads(marker.read_text()).get("spec") == spec:
        return json.loads(marker.read_text())
    shutil.rmtree(root / "gen", ignore_errors=True)
    shutil.rmtree(root / "ref", ignore_errors=True)
    (root / "gen").mkdir(parents=True)
    (root / "ref").mkdir(parents=True)
    caps = {}
    for i in range(n):
        name = f"clip_{i:02d}.wav"
        pg = {**clip_params(i, "gen", seed), "duration": 10.0}
        pr = {**clip_params(i, "ref", seed), "duration": 10.0}
        sf.write(str(root / "gen" / name), synth(pg, 16000), 16000, subtype="PCM_16")
        sf.write(str(root / "ref" / name), synth(pr, ref_rate), ref_rate, subtype="PCM_16")
        caps[name] = caption(pg)
    assert not any("!" in c for c in caps.values())  # msclap's GPT-2 pad id 0 is '!'
    (root / "captions.json").write_text(json.dumps(caps, indent=1))
    with open(root / "prompts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "caption"])
        for name, c in caps.items():
            w.writerow([Path(name).stem, c])
    info = {"spec": spec, "gen_rate": 16000}
    marker.write_text(json.dumps(info, indent=1))
    return info


def write_keeping_notes(results: Path, text: str) -> None:
    """Write a generated RESULTS file, keeping the hand-written analysis after NOTES_MARKER."""
    if results.exists() and NOTES_MARKER in results.read_text():
        text += "\n" + NOTES_MARKER + results.read_text().split(NOTES_MARKER, 1)[1]
    results.write_text(text)


# ============================================================================ our side (child)
class _Stages:
    """Exclusive wall time per stage (time spent in a nested timed call is not counted twice)."""

    def __init__(self):
        self.t: dict[str, float] = {}
        self.stack: list[list] = []

    def wrap(self, name, fn):
        def wrapper(*a, **k):
            label = name(*a) if callable(name) else name
            self.stack.append([label, 0.0])
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                dt = time.perf_counter() - t0
                _, child = self.stack.pop()
                self.t[label] = self.t.get(label, 0.0) + dt - child
                if self.stack:
                    self.stack[-1][1] += dt

        return wrapper


def instrument_suite(st: _Stages) -> None:
    """Wrap the scoring suite's internals (bench.metrics.suite, the embedding cache) in `st`'s stage timers,
    exclusive of each other: checkpoint hashing, building, decoding, every derived input (the shared
    derive_input and a backbone's own derive_native), forwards, metric computation, cache writes."""
    import bench.metrics.cache as C
    import bench.metrics.suite as S

    for fn in ("sha256_file", "sha256_files"):
        setattr(S, fn, st.wrap("sha256 of checkpoint files (cold memo)", getattr(S, fn)))
    S.build_backbone = st.wrap(lambda name, cfg, *x: f"build + load checkpoint: {name}", S.build_backbone)
    S.read_audio_channels = st.wrap("decode (soundfile, once per clip)", S.read_audio_channels)
    S.content_hash = st.wrap("content hash of audio files", S.content_hash)
    S._Embedder._input = st.wrap("derive inputs (each tool's channels + resampler)", S._Embedder._input)
    spec_of = S.metric_spec  # each metric's compute function (bootstrap included), from the registry
    S.metric_spec = lambda name: dataclasses.replace(spec_of(name), compute=st.wrap("metrics", spec_of(name).compute))
    S.LazyBackbone.embed = st.wrap(lambda self, w: f"forward audio: {self.name}", S.LazyBackbone.embed)
    S.LazyBackbone.embed_text = st.wrap(lambda self, t, c: f"forward text: {self.name}", S.LazyBackbone.embed_text)
    S.LazyBackbone.prepare = st.wrap("prepare (crop/pad/normalise)", S.LazyBackbone.prepare)
    C.EmbeddingCache.put = st.wrap("cache write", C.EmbeddingCache.put)


IMPORT_STAGE = "import torch + bench"
CLI_STAGE = "CLI + other (records, tokenizers, ...)"


def start_ours(threads: int) -> _Stages:
    """Our side's child, first step: import torch and bench (one timed stage), set the thread count, and wrap the
    suite's internals in stage timers (`instrument_suite`)."""
    st = _Stages()
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(threads)
    import bench.cli  # noqa: F401
    import bench.metrics.suite  # noqa: F401  (timed as an import)

    st.t[IMPORT_STAGE] = time.perf_counter() - t0
    instrument_suite(st)
    return st


def run_cli_timed(st: _Stages, argv: list[str], profile_to: Path | None = None) -> tuple[int, str]:
    """`bench.cli.main(argv)` with its stdout captured (and under cProfile, dumped to `profile_to`, if given).
    The time that no wrapped stage took goes to CLI_STAGE. Returns (exit code, stdout)."""
    import contextlib
    import io

    import bench.cli

    log = io.StringIO()
    t1 = time.perf_counter()
    prof = None
    if profile_to is not None:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    with contextlib.redirect_stdout(log):
        rc = bench.cli.main(argv)
    if prof is not None:
        prof.disable()
        prof.dump_stats(str(profile_to))
    st.t[CLI_STAGE] = (time.perf_counter() - t1) - sum(v for k, v in st.t.items() if k != IMPORT_STAGE)
    return rc, log.getvalue()


def finish_ours(out: Path, result: dict, st: _Stages, stdout: str, t_start: float) -> None:
    """Write our child's JSON (`result` plus the stages, threads, peak RSS and the stdout tail) and end the way the
    `bench` executable ends after `bench score` (bench.cli.console_main): no module teardown, unless
    GENAU_BENCH_FAST_EXIT=0."""
    import resource

    import torch

    import bench.cli

    result = {
        "side": "ours",
        **result,
        "seconds_in_process": time.perf_counter() - t_start,
        "stages": st.t,
        "threads": torch.get_num_threads(),
        "peak_rss_mb_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "stdout": stdout[-4000:],
    }
    out.write_text(json.dumps(result, indent=1))
    if os.environ.get("GENAU_BENCH_FAST_EXIT", "1") != "0":
        bench.cli.exit_without_teardown(0)


def run_ours(a) -> None:
    """bench score, in-process, with stage timers wrapped around the suite's internals."""
    st = start_ours(a.threads)
    rec_path = Path(a.out).with_suffix(".record.json")
    argv = ["score", "--gen", a.gen, "--ref", a.ref, "--prompts", a.prompts, "--bootstrap", str(a.bootstrap),
            "--out", str(rec_path)]  # fmt: skip
    for name, fname in CHECKPOINTS.items():
        argv += ["--checkpoint", f"{name}={Path(a.ckpt_dir) / fname}"]
    rc, stdout = run_cli_timed(st, argv, Path(a.out).with_suffix(".pstats") if a.profile else None)
    rec = json.loads(rec_path.read_text())
    result = {"rc": rc, "metrics": {m["column"]: m["value"] for m in rec["metrics"]}, "n_failed": rec["n_failed"]}
    finish_ours(Path(a.out), {**result, "cache": rec["cache"]}, st, stdout, T_START)


# ============================================================================ driver
# glibc's environment equivalent of bench.allocator (what `bench score` sets with mallopt), for
# the extra reference row that shows how much of our lead a reference-tool user gets by
# exporting two variables.
GLIBC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def child_env(threads: int, **extra: str) -> dict:
    """The environment of every timed child, ours or a reference tool's: the same thread count for OpenMP / MKL
    (torch reads them), hub access off (everything is local), and `extra` on top."""
    return dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        **extra,
    )


def launch(side: str, args, tag: str, bootstrap: int = 0, profile: bool = False, extra_env: dict | None = None) -> dict:
    out = WORK / f"{tag}.json"
    env = child_env(args.threads, PYTHONDONTWRITEBYTECODE="0", **(extra_env or {}))
    tmp = Path(tempfile.mkdtemp(prefix=f"benchref_{tag}_"))
    if side == "reference":
        cmd = [
            str(ORACLE_PY),
            str(HERE / "parity" / "reference_timing.py"),
            "--gen",
            str(WORK / "gen"),
            "--ref",
            str(WORK / "ref"),
            "--captions",
            str(WORK / "captions.json"),
            "--ckpt-dir",
            str(CKPT),
            "--out",
            str(out),
            "--threads",
            str(args.threads),
            "--laion-batch",
            str(args.laion_batch),
        ]
        cwd = REPO
    else:
        # cold: fresh embedding cache AND fresh sha256 memo; the hub tokenizer ids resolve to the
        # oracle's tokenizer folders through local directories of the same name in the cwd
        env["GENAU_BENCH_CACHE"] = str(tmp / "cache")
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        cwd = tmp / "cwd"
        cwd.mkdir()
        (cwd / "roberta-base").symlink_to(CKPT / "tokenizers" / "roberta")
        (cwd / "gpt2").symlink_to(CKPT / "tokenizers" / "gpt2")
        cmd = [
            str(OUR_PY),
            str(Path(__file__).resolve()),
            "--side",
            "ours",
            "--gen",
            str(WORK / "gen"),
            "--ref",
            str(WORK / "ref"),
            "--prompts",
            str(WORK / "prompts.csv"),
            "--ckpt-dir",
            str(CKPT),
            "--out",
            str(out),
            "--threads",
            str(args.threads),
            "--bootstrap",
            str(bootstrap),
        ]
        if profile:
            cmd.append("--profile")
    print(f"[bench_vs_reference] {tag}: {side} (bootstrap {bootstrap}) ...", flush=True)
    try:
        return spawn_timed(cmd, cwd, env, WORK / f"{tag}.log", out, tag, "bench_vs_reference")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def spawn_timed(cmd: list[str], cwd: Path, env: dict, log_path: Path, out: Path, tag: str, who: str) -> dict:
    """Run one side as a child process; -> the JSON it wrote to `out` plus the child's wall time, peak RSS and
    CPU times (os.wait4's rusage of that child alone). A failure ends the benchmark with the log's tail."""
    out.unlink(missing_ok=True)
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0 or not out.exists():
        raise SystemExit(f"{tag} failed (rc {rc}); log tail:\n{log_path.read_text()[-5000:]}")
    res = json.loads(out.read_text())
    res.update(wall_s=wall, peak_rss_mb=ru.ru_maxrss / 1024, user_s=ru.ru_utime, sys_s=ru.ru_stime, tag=tag)
    print(f"[{who}] {tag}: {wall:.1f} s wall, peak RSS {res['peak_rss_mb']:.0f} MB", flush=True)
    return res


def load_avg() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def stage_table(res: dict) -> list[str]:
    rows = sorted(res["stages"].items(), key=lambda kv: -kv[1])
    return [f"| {k} | {v:.1f} |" for k, v in rows if v >= 0.05]


def profile_summary(pstats_path: Path, top: int = 25) -> str:
    import io
    import pstats

    s = io.StringIO()
    p = pstats.Stats(str(pstats_path), stream=s)
    p.sort_stats("tottime").print_stats(top)
    return s.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=16, help="clips per side (10 s each)")
    ap.add_argument("--ref-rate", type=int, default=32000)
    ap.add_argument("--rounds", type=int, default=2, help="back-to-back pairs, alternating which side goes first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--laion-batch", type=int, default=16)
    ap.add_argument("--no-bootstrap-line", action="store_true", help="skip the extra run of ours with bootstrap 100")
    ap.add_argument("--profile", action="store_true", help="one more run of ours under cProfile (not timed)")
    ap.add_argument(
        "--reference-glibc-env",
        action="store_true",
        help="one more reference run with MALLOC_MMAP/TRIM_THRESHOLD_=1 GiB (ours sets these itself)",
    )
    ap.add_argument("--results", default=str(HERE / "RESULTS.reference.md"))
    # child mode (our side)
    ap.add_argument("--side", choices=["ours"], help=argparse.SUPPRESS)
    ap.add_argument("--gen", help=argparse.SUPPRESS)
    ap.add_argument("--ref", help=argparse.SUPPRESS)
    ap.add_argument("--prompts", help=argparse.SUPPRESS)
    ap.add_argument("--ckpt-dir", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side == "ours":
        run_ours(args)
        return 0

    missing = [f for f in CHECKPOINTS.values() if not (CKPT / f).exists()] + (
        [] if (CKPT / "tokenizers" / "roberta").is_dir() else ["tokenizers/"]
    )
    if missing or not ORACLE_PY.exists():
        raise SystemExit(f"need the oracle venv and {CKPT}/{missing}: run benchmarks/parity/README.md steps 1-3a")
    WORK.mkdir(parents=True, exist_ok=True)
    make_clips(WORK, args.n, args.ref_rate)
    print(f"[bench_vs_reference] {args.n} clips per side in {WORK}; load average {load_avg()}", flush=True)

    runs: list[tuple[dict, dict]] = []
    for r in range(args.rounds):
        order = ["reference", "ours"] if r % 2 == 0 else ["ours", "reference"]
        got = {s: launch(s, args, f"round{r + 1}_{s}", bootstrap=0) for s in order}
        got["order"] = order
        got["load_after"] = load_avg()
        runs.append(got)
    boot = None if args.no_bootstrap_line else launch("ours", args, "ours_bootstrap100", bootstrap=100)
    prof = launch("ours", args, "ours_profile", bootstrap=0, profile=True) if args.profile else None
    ref_glibc = (
        launch("reference", args, "reference_glibc_env", extra_env=GLIBC_ENV) if args.reference_glibc_env else None
    )

    # ------------------------------------------------------------------ report
    env = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "threads": args.threads,
    }
    summary = {
        "n": args.n,
        "ref_rate": args.ref_rate,
        "env": env,
        "rounds": runs,
        "bootstrap100": boot,
        "profile": prof,
        "reference_glibc_env": ref_glibc,
    }
    (WORK / "results.json").write_text(json.dumps(summary, indent=1, default=str))

    L: list[str] = []
    L.append("## Full suite vs the reference tools (benchmarks/bench_vs_reference.py)\n")
    L.append(
        f"Same {args.n} generated clips (10 s, 16 kHz PCM-16) and {args.n} references (10 s, "
        f"{args.ref_rate / 1000:g} kHz PCM-16, paired by name), same checkpoint files "
        f"(`benchmarks/.work/parity/ckpt/`: the parity oracle's fixed-seed weights in the official formats "
        f"and file names), each side in its own subprocess with {args.threads} threads "
        f"(OMP/MKL/torch), wall clock of the whole process (interpreter start, imports, model building, "
        f"checkpoint loading, decoding, resampling, forwards, metrics). Machine: {os.cpu_count()} CPU cores "
        f"shared with other jobs (load average given per round).\n"
    )
    L.append(
        "- **Reference** = audioldm_eval 0.0.3 `EvaluationHelper(16000).main` (Cnn14 16 kHz: FD, IS, KL, KID; "
        "VGGish FAD), then laion_clap 1.1.7 (`librosa.load(sr=48000)`, `get_audio_embedding_from_data` in "
        f"chunks of {args.laion_batch}, `get_text_embedding`), then msclap 1.3.4 2023 "
        "(`get_audio_embeddings(files)`, `get_text_embeddings`); each tool decodes and resamples itself; "
        "the oracle's offline neutralisations (`oracle_side.py`, imported). LSD/PSNR/SSIM skipped."
    )
    L.append(
        "- **Ours** = `bench score --gen --ref --prompts --checkpoint NAME=PATH x4` (official-weights mode), "
        "cold: fresh embedding cache and fresh checkpoint-hash memo (so ours also sha256-hashes ~2 GB of "
        "checkpoints, which the reference never does). FD, IS, KL softmax+sigmoid, KAD, FAD, CLAP_LAION, CLAP_MS."
    )
    L.append(
        "- **Bootstrap off** in the headline rows: the reference tools compute no confidence intervals. "
        "The last row is our default (`--bootstrap 100`, 95% intervals for every metric) for transparency.\n"
    )
    L.append(
        "| round | order | N clips/side | reference s | ours s | ratio (ref/ours) | peak RSS ref MB | peak RSS ours "
        "MB | load avg after (1/5/15 min) |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|")
    for i, g in enumerate(runs):
        rf, ou = g["reference"], g["ours"]
        L.append(
            f"| {i + 1} | {' then '.join(g['order'])} | {args.n} | {rf['wall_s']:.1f} | {ou['wall_s']:.1f} | "
            f"**{rf['wall_s'] / ou['wall_s']:.2f}x** | {rf['peak_rss_mb']:.0f} | {ou['peak_rss_mb']:.0f} | "
            f"{g['load_after']} |"
        )
    if boot is not None:
        ref_mean = sum(g["reference"]["wall_s"] for g in runs) / len(runs)
        L.append(
            f"| ours, bootstrap 100 | alone | {args.n} | ({ref_mean:.1f}, mean of the reference rows) | "
            f"{boot['wall_s']:.1f} | {ref_mean / boot['wall_s']:.2f}x | - | {boot['peak_rss_mb']:.0f} | - |"
        )
    if ref_glibc is not None:
        ours_mean = sum(g["ours"]["wall_s"] for g in runs) / len(runs)
        L.append(
            f"| reference with MALLOC_MMAP/TRIM_THRESHOLD_=1 GiB | alone | {args.n} | {ref_glibc['wall_s']:.1f} | "
            f"({ours_mean:.1f}, mean of the ours rows) | {ref_glibc['wall_s'] / ours_mean:.2f}x | "
            f"{ref_glibc['peak_rss_mb']:.0f} | - | - |"
        )
    L.append("")
    L.append(
        "CPU time (user+sys) per side, same rounds (less sensitive to other jobs than wall time): "
        + "; ".join(
            f"round {i + 1}: reference {_cpu_s(g['reference']):.0f} s, ours "
            f"{_cpu_s(g['ours']):.0f} s "
            f"({_cpu_s(g['reference']) / _cpu_s(g['ours']):.2f}x)"
            for i, g in enumerate(runs)
        )
        + ".\n"
    )

    last = runs[-1]
    L.append(f"### Per-stage wall time, round {len(runs)} (s)\n")
    L.append("| reference stage | s |\n|---|---|")
    L += stage_table(last["reference"])
    L.append(
        "| *(interpreter start + unaccounted)* | "
        f"{last['reference']['wall_s'] - sum(last['reference']['stages'].values()):.1f} |"
    )
    L.append("")
    L.append("| our stage (exclusive) | s |\n|---|---|")
    L += stage_table(last["ours"])
    L.append(
        f"| *(interpreter start + unaccounted)* | {last['ours']['wall_s'] - sum(last['ours']['stages'].values()):.1f} |"
    )
    L.append("")
    L.append("### Metric values (sanity, not parity)\n")
    L.append(
        "Not expected to match to 1e-4 here: the references are at "
        f"{args.ref_rate / 1000:g} kHz, so each tool's resampler enters (audioldm_eval: torchaudio sinc + mean "
        "removal; VGGish: resampy; msclap: torchaudio sinc 16 -> 44.1 kHz; laion: librosa soxr_hq; ours since "
        "protocol gb-2: each tool's own path, except VGGish = audioldm_eval main's WaveDataset). Parity on "
        "native-rate files is in `parity/RESULTS.partial.md`.\n"
    )
    rm, om = last["reference"]["metrics"], last["ours"]["metrics"]

    def ours_col(prefix):
        return next((v for k, v in om.items() if k.startswith(prefix)), float("nan"))

    pairs = [
        ("FD", "frechet_distance", "FD_"),
        ("IS", "inception_score_mean", "IS_"),
        ("KL softmax", "kullback_leibler_divergence_softmax", "KL_softmax_"),
        ("KL sigmoid", "kullback_leibler_divergence_sigmoid", "KL_sigmoid_"),
        ("FAD", "frechet_audio_distance", "FAD_"),
        ("CLAP_LAION", "clap_laion", "CLAP_LAION_"),
        ("CLAP_MS", "clap_ms", "CLAP_MS_"),
    ]
    L.append("| metric | reference | ours |\n|---|---|---|")
    for label, rk, ok in pairs:
        L.append(f"| {label} | {rm.get(rk, float('nan')):.6g} | {ours_col(ok):.6g} |")
    L.append("")
    if prof is not None:
        L.append("### Profile of ours (cProfile, separate run, top functions by own time)\n")
        L.append("```\n" + profile_summary(WORK / "ours_profile.pstats").strip()[-6000:] + "\n```\n")
    L.append(
        f"Command: `.venv/bin/python benchmarks/bench_vs_reference.py --n {args.n} --ref-rate {args.ref_rate} "
        f"--rounds {args.rounds}{' --profile' if args.profile else ''}"
        f"{' --reference-glibc-env' if args.reference_glibc_env else ''}`; raw numbers in "
        "`benchmarks/.work/bench_ref/results.json`; total driver time "
        f"{time.perf_counter() - T_START:.0f} s."
    )
    text = "\n".join(L) + "\n"
    write_keeping_notes(Path(args.results), text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
