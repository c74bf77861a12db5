"""Three protocols from one decode vs the three reference toolkits run one after another: same clips, same weights.

Issue 17 item 6 (second half): `bench score --protocols stable-audio,av-benchmark,aesthetics` against what a
researcher runs today to get the same numbers - stable-audio-metrics, then av-benchmark, then audiobox-aesthetics,
each in its own environment, each decoding and resampling every file itself.

Reference side (benchmarks/parity/protocols_reference_timing.py, one subprocess per tool in its oracle venv, run one
after another; the side's wall time is the sum, its peak RSS the largest of the five):
  1. stable-audio-metrics (mirror HEAD `src/`), its audiocaps settings, as three processes because its three metrics
     need three oracle venvs here: `openl3_fd` (openl3-venv; torchopenl3 1.0.1 is a STAND-IN for TensorFlow openl3
     0.4.2, which does not install here), `passt_kld` (passt-venv, hear21passt 0.0.26), `clap_score` (clap-venv,
     laion_clap 1.1.4, 630k-audioset-fusion-best). One process would import torch twice less (the per-tool rows show
     each process's import time).
  2. av-benchmark (avb-venv, its own code from the mirror): `extract_text.py` then `evaluate.py`'s main with
     --audio_length 10 --skip_video_related, num_workers 0, its default batch sizes; PyPI laion-clap 1.1.7 /
     hear21passt 0.0.26 / msclap 1.3.4 stand in for its git forks; ImageBind / pytorchvideo / Synchformer are inert
     stand-ins (a real run builds ImageBind-huge and Synchformer even with --skip_video_related: not paid here).
  3. audiobox-aesthetics 0.0.4 (aes-venv): `infer.main_predict` (its `audio-aes` CLI), batch size --aes-batch.

Our side (our venv, this script with --side ours): `bench score --gen G --ref R --prompts P --protocols
stable-audio,av-benchmark,aesthetics --bootstrap 0 --checkpoint NAME=PATH ... --tokenizer NAME=DIR ...` run
in-process through bench.cli.main (official-weights mode), cold: GENAU_BENCH_CACHE = a fresh temp dir (embedding
cache and checkpoint sha256 memo). A separate line runs all four protocols (genau included).

Weights: the parity scripts' fixed-seed files in the official formats, loaded by both sides:
benchmarks/.work/parity/ckpt (Cnn14, VGGish, LAION-CLAP HTSAT-base, MS-CLAP 2023, tokenizers; oracle_side.py),
parity_passt/ckpt, parity_openl3/ckpt, parity_clap_fusion/ckpt, parity_aesthetics/ckpt (the four *_parity.py).

Each side in its own subprocess(es), wall clock of the whole subprocess (interpreter start, imports, model building,
checkpoint loading, decoding, resampling, forwards, metrics), the same thread count (OMP/MKL/torch = --threads),
peak RSS from os.wait4's rusage; the sides alternate which goes first over --rounds (the machine is shared).
Clips: --n generated + --n reference clips, paired by name, one caption per clip. --clips stereo44 (default): 10 s,
44.1 kHz stereo float32 (benchmarks/_clips.py make_stereo_clips, as a native-rate run of Stable Audio Open stores
them). --clips mono16: 10 s, 16 kHz mono (make_clips, as today's 16 kHz mono models store them; every tool converts
them itself, and stable-audio-metrics fakes stereo for OpenL3 by embedding the one channel twice).

    bash benchmarks/parity/setup_oracle.sh && bash benchmarks/parity/setup_passt_openl3_oracles.sh
    bash benchmarks/parity/setup_clap_fusion_aesthetics_oracles.sh
    bash benchmarks/parity/setup_av_benchmark_oracle.sh
    .venv/bin/python benchmarks/parity/make_fixture.py && .oracle-venv/bin/python benchmarks/parity/oracle_side.py
    .venv/bin/python benchmarks/parity/{passt,openl3,clap_fusion,aesthetics}_parity.py   # (one by one) the weights
    .venv/bin/python benchmarks/bench_protocols_vs_reference.py [--n 16] [--rounds 2] [--four-rounds 1] [--clips mono16]

Writes benchmarks/RESULTS.protocols_reference.md (RESULTS.protocols_reference.mono16.md for --clips mono16; the
hand-written analysis after NOTES_MARKER is kept) and results.json in the clips' folder under benchmarks/.work/.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work" / "bench_protocols_ref"  # --clips stereo44; main() points it at the chosen kind's folder
# --clips: what the two sides score. stereo44 is what a native-rate run of Stable Audio Open / TangoFlux stores;
# mono16 what today's 16 kHz mono models store (AudioLDM, Tango, GenAU, ...), which every reference tool upmixes or
# resamples itself. (description, work folder, RESULTS file)
CLIP_KINDS = {
    "stereo44": ("10 s, 44.1 kHz stereo float32", WORK, HERE / "RESULTS.protocols_reference.md"),
    "mono16": (
        "10 s, 16 kHz mono float32",
        HERE / ".work" / "bench_protocols_ref_mono16",
        HERE / "RESULTS.protocols_reference.mono16.md",
    ),
}
W = HERE / ".work"
OUR_PY = REPO / ".venv" / "bin" / "python"
ORACLES = Path(os.environ.get("ORACLES", "/work/oracles"))
RUNNER = HERE / "parity" / "protocols_reference_timing.py"
from bench_vs_reference import (  # noqa: E402  (same folder)
    child_env,
    finish_ours,
    run_cli_timed,
    spawn_timed,
    start_ours,
    write_keeping_notes,
)

THREE = "stable-audio,av-benchmark,aesthetics"
FOUR = "genau,stable-audio,av-benchmark,aesthetics"

# the shared weight files (written by the parity scripts)
FILES = {
    "cnn14": W / "parity" / "ckpt" / "Cnn14_16k_mAP=0.438.pth",
    "vggish": W / "parity" / "ckpt" / "vggish-10086976.pth",
    "laion": W / "parity" / "ckpt" / "music_speech_audioset_epoch_15_esc_89.98.pt",
    "msclap": W / "parity" / "ckpt" / "CLAP_weights_2023.pth",
    "passt": W / "parity_passt" / "ckpt" / "passt-s-f128-p16-s10-ap.476-swa.pt",
    "openl3": W / "parity_openl3" / "ckpt" / "torchopenl3_mel256_env_512.pth.tar",
    "clap_fusion": W / "parity_clap_fusion" / "ckpt" / "630k-audioset-fusion-best.pt",
    "aes": W / "parity_aesthetics" / "ckpt" / "checkpoint.pt",
}
TOKENIZERS = W / "parity" / "ckpt" / "tokenizers"
# our backbone name -> shared file; tokenizer folders for the text towers
OUR_CHECKPOINTS = {
    "openl3-mel256-env-512-stable-audio": "openl3",
    "passt-s-ap476-stable-audio": "passt",
    "laion-clap-htsat-tiny-fusion-stable-audio": "clap_fusion",
    "passt-s-ap476-av-benchmark": "passt",
    "panns-cnn14-16k-av-benchmark": "cnn14",
    "vggish-av-benchmark": "vggish",
    "laion-clap-htsat-base-av-benchmark": "laion",
    "ms-clap-2023": "msclap",
    "audiobox-aesthetics": "aes",
    "panns-cnn14-16k": "cnn14",
    "vggish": "vggish",
    "laion-clap-htsat-base": "laion",
}
OUR_TOKENIZERS = {
    "laion-clap-htsat-tiny-fusion-stable-audio": "roberta",
    "laion-clap-htsat-base-av-benchmark": "roberta",
    "laion-clap-htsat-base": "roberta",
    "ms-clap-2023": "gpt2",
}
GENAU_ONLY = {"panns-cnn14-16k", "vggish", "laion-clap-htsat-base"}
# reference tool -> (venv, label, the shared files it reads)
TOOLS = {
    "sam-openl3": ("openl3-venv", "stable-audio-metrics openl3_fd (torchopenl3 stand-in)", ("openl3",)),
    "sam-passt": ("passt-venv", "stable-audio-metrics passt_kld", ("passt",)),
    "sam-clap": ("clap-venv", "stable-audio-metrics clap_score (fusion)", ("clap_fusion",)),
    "avb": ("avb-venv", "av-benchmark extract_text.py + evaluate.py", ("cnn14", "vggish", "laion", "msclap", "passt")),
    "aes": ("aes-venv", "audiobox-aesthetics main_predict", ("aes",)),
}
SAM = "stable-audio-metrics"
TOOLKIT_OF = {"sam-openl3": SAM, "sam-passt": SAM, "sam-clap": SAM, "avb": "av-benchmark", "aes": "audiobox-aesthetics"}
# (protocol, label, reference tool, reference key, our column prefix)
PAIRS = [
    ("stable-audio", "FD OpenL3", "sam-openl3", "FD_openl3", "FD_"),
    ("stable-audio", "KL PaSST (sam)", "sam-passt", "KL_passt", "KL_sam_"),
    ("stable-audio", "CLAP fusion", "sam-clap", "CLAP_fusion", "CLAP_LAION_"),
    ("av-benchmark", "FD PaSST", "avb", "FD-PASST", "FD_passt"),
    ("av-benchmark", "FD PANNs", "avb", "FD-PANN", "FD_panns"),
    ("av-benchmark", "FD VGGish", "avb", "FD-VGG", "FAD_vggish"),
    ("av-benchmark", "KL PaSST softmax", "avb", "KL-PASST-softmax", "KL_softmax_passt"),
    ("av-benchmark", "KL PANNs softmax", "avb", "KL-PANNS-softmax", "KL_softmax_panns"),
    ("av-benchmark", "IS PaSST", "avb", "ISC-PASST-mean", "IS_passt"),
    ("av-benchmark", "IS PANNs", "avb", "ISC-PANNS-mean", "IS_panns"),
    ("av-benchmark", "LAION-CLAP", "avb", "LAION-CLAP-Score", "CLAP_LAION_"),
    ("av-benchmark", "MS-CLAP", "avb", "MS-CLAP-Score", "CLAP_MS_"),
    ("aesthetics", "PQ", "aes", "PQ", "PQ_"),
    ("aesthetics", "PC", "aes", "PC", "PC_"),
    ("aesthetics", "CE", "aes", "CE", "CE_"),
    ("aesthetics", "CU", "aes", "CU", "CU_"),
]


# ============================================================================ fixture
def make_clips(root: Path, n: int, kind: str = "stereo44") -> dict:
    """n generated + n reference clips of `kind` (CLIP_KINDS), same names; one caption per clip."""
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(REPO))
    from _clips import make_clips as make_mono_clips
    from _clips import make_stereo_clips, prompts_for

    if kind == "mono16":
        spec = {"n": n, "seconds": 10.0, "sr": 16000, "channels": 1, "seeds": [1, 2]}
        make = make_mono_clips
    else:
        spec = {"n": n, "seconds": 10.0, "sr": 44100, "channels": 2, "seeds": [1, 2]}
        make = make_stereo_clips
    marker = root / "fixture.json"
    if marker.exists() and json.loads(marker.read_text()).get("spec") == spec:
        return json.loads(marker.read_text())
    for d in ("gen", "ref"):
        shutil.rmtree(root / d, ignore_errors=True)
    gen = make(root / "gen", n, seed=1, seconds=10.0)
    make(root / "ref", n, seed=2, seconds=10.0)
    for d in ("gen", "ref"):
        shutil.rmtree(root / d / ".mono", ignore_errors=True)  # make_stereo_clips' mono sources: not scored
    caps = prompts_for(gen)
    assert not any("!" in c for c in caps.values())  # msclap's GPT-2 pad id 0 is '!'
    (root / "captions.json").write_text(json.dumps({f"{k}.wav": v for k, v in caps.items()}, indent=1))
    with open(root / "prompts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "caption"])
        for k, v in caps.items():
            w.writerow([k, v])
    info = {"spec": spec}
    marker.write_text(json.dumps(info, indent=1))
    return info


# ============================================================================ our side (child)
def run_ours(a) -> None:
    """bench score --protocols ..., in-process, with stage timers around the suite's internals."""
    st = start_ours(a.threads)
    protocols = a.protocols.split(",")
    rec_path = Path(a.out).with_suffix(".record.json")
    argv = ["score", "--gen", a.gen, "--ref", a.ref, "--prompts", a.prompts, "--protocols", a.protocols,
            "--bootstrap", "0", "--out", str(rec_path)]  # fmt: skip
    for name, key in OUR_CHECKPOINTS.items():
        if name in GENAU_ONLY and "genau" not in protocols:
            continue
        argv += ["--checkpoint", f"{name}={FILES[key]}"]
    for name, tok in OUR_TOKENIZERS.items():
        if name in GENAU_ONLY and "genau" not in protocols:
            continue
        argv += ["--tokenizer", f"{name}={TOKENIZERS / tok}"]
    rc, stdout = run_cli_timed(st, argv)
    data = json.loads(rec_path.read_text())
    records = data.get("records", [data])
    result = {
        "rc": rc,
        "protocols": a.protocols,
        "metrics": {r["protocol"]["name"]: {m["column"]: m["value"] for m in r["metrics"]} for r in records},
        "n_failed": sum(r["n_failed"] for r in records),
    }
    finish_ours(Path(a.out), result, st, stdout, T_START)


# ============================================================================ driver
def _spawn(cmd: list[str], cwd: Path, env: dict, tag: str, out: Path) -> dict:
    return spawn_timed(cmd, cwd, env, WORK / f"{tag}.log", out, tag, "bench_protocols_vs_reference")


def launch_ours(args, protocols: str, tag: str) -> dict:
    env = child_env(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix=f"protoref_{tag}_"))
    env["GENAU_BENCH_CACHE"] = str(tmp / "cache")  # cold: embedding cache and checkpoint hash memo
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    (tmp / "cwd").mkdir()
    out = WORK / f"{tag}.json"
    cmd = [str(OUR_PY), str(Path(__file__).resolve()), "--side", "ours", "--gen", str(WORK / "gen"),
           "--ref", str(WORK / "ref"), "--prompts", str(WORK / "prompts.csv"), "--protocols", protocols,
           "--out", str(out), "--threads", str(args.threads)]  # fmt: skip
    print(f"[bench_protocols_vs_reference] {tag}: ours --protocols {protocols} ...", flush=True)
    try:
        return _spawn(cmd, tmp / "cwd", env, tag, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def launch_reference(args, tag: str) -> dict:
    """The three toolkits one after another (five processes); wall = sum, peak RSS = the largest."""
    tools = {}
    for tool, (venv, _, keys) in TOOLS.items():
        out = WORK / f"{tag}_{tool}.json"
        cmd = [str(ORACLES / venv / "bin" / "python"), str(RUNNER), "--tool", tool, "--gen", str(WORK / "gen"),
               "--ref", str(WORK / "ref"), "--captions", str(WORK / "captions.json"), "--tokenizers", str(TOKENIZERS),
               "--out", str(out), "--threads", str(args.threads), "--aes-batch", str(args.aes_batch)]  # fmt: skip
        for k in keys:
            cmd += ["--ckpt", f"{k}={FILES[k]}"]
        cwd = Path(tempfile.mkdtemp(prefix=f"protoref_{tag}_{tool}_"))
        print(f"[bench_protocols_vs_reference] {tag}: {tool} ...", flush=True)
        try:
            tools[tool] = _spawn(cmd, cwd, child_env(args.threads), f"{tag}_{tool}", out)
        finally:
            shutil.rmtree(cwd, ignore_errors=True)
    return {
        "tools": tools,
        "wall_s": sum(t["wall_s"] for t in tools.values()),
        "peak_rss_mb": max(t["peak_rss_mb"] for t in tools.values()),
        "user_s": sum(t["user_s"] for t in tools.values()),
        "sys_s": sum(t["sys_s"] for t in tools.values()),
    }


def load_avg() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _cpu(side: dict) -> float:
    return side["user_s"] + side["sys_s"]


def _ours_value(metrics: dict, protocol: str, prefix: str) -> float:
    cols = metrics.get(protocol, {})
    hit = [v for k, v in cols.items() if k.startswith(prefix)]
    return float("nan") if len(hit) != 1 or hit[0] is None else float(hit[0])


def _rel(a: float, b: float) -> str:
    if any(math.isnan(x) for x in (a, b)):
        return "-"
    return f"{abs(a - b) / max(abs(b), 1e-12):.1e}"


def _stages(res: dict) -> list[str]:
    rows = sorted(res["stages"].items(), key=lambda kv: -kv[1])
    return [f"| {k} | {v:.1f} |" for k, v in rows if v >= 0.05]


def write_results(args, runs: list[dict]) -> str:
    import platform

    L = ["# Three protocols from one decode vs the three reference toolkits, one after another\n"]
    L.append(
        "Generated by `benchmarks/bench_protocols_vs_reference.py` (issue 17 item 6, second half); do not edit the "
        "tables by hand. What each side runs: the script's docstring.\n"
    )
    L.append(
        f"- Machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), shared with other "
        f"jobs (load average per round); {args.threads} threads per side (OMP/MKL/torch). {args.n} generated + "
        f"{args.n} reference clips, {CLIP_KINDS[args.clips][0]}, one caption per clip; cold cache; bootstrap off.\n"
        "- **Reference** = stable-audio-metrics (`openl3_fd` with torchopenl3 standing in for TF openl3, "
        "`passt_kld`, `clap_score`: three processes, three venvs), then av-benchmark (`extract_text.py` + "
        "`evaluate.py`, `--skip_video_related`, video models inert stand-ins, PyPI packages for its git forks), "
        "then audiobox-aesthetics (`main_predict`). Wall = sum of the five processes; peak RSS = the largest.\n"
        f"- **Ours** = `bench score --protocols {THREE} --bootstrap 0 --checkpoint ... --tokenizer ...` "
        f"(official-weights mode, one decode of each clip); the extra line: `--protocols {FOUR}`.\n"
    )
    L.append(
        "| round | order | reference s | ours (3 protocols) s | **ratio** ref/ours | ours (4 protocols) s | ratio "
        "ref/ours-4 | peak RSS ref MB (largest tool) | peak RSS ours-3 MB | peak RSS ours-4 MB | load avg after |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for i, g in enumerate(runs):
        rf, o3, o4 = g["reference"], g["ours3"], g.get("ours4")
        rss4 = f"{o4['peak_rss_mb']:.0f}" if o4 else "-"
        four = f"{o4['wall_s']:.1f} | {rf['wall_s'] / o4['wall_s']:.2f}x | " if o4 else "(not run this round) | - | "
        L.append(
            f"| {i + 1} | {' then '.join(g['order'])} | {rf['wall_s']:.1f} | {o3['wall_s']:.1f} | "
            f"**{rf['wall_s'] / o3['wall_s']:.2f}x** | {four}{rf['peak_rss_mb']:.0f} | "
            f"{o3['peak_rss_mb']:.0f} | {rss4} | {g['load_after']} |"
        )
    L.append("")
    L.append(
        "CPU time (user+sys): "
        + "; ".join(
            f"round {i + 1}: reference {_cpu(g['reference']):.0f} s, ours-3 {_cpu(g['ours3']):.0f} s "
            f"({_cpu(g['reference']) / _cpu(g['ours3']):.2f}x)"
            + (f", ours-4 {_cpu(g['ours4']):.0f} s" if g.get("ours4") else "")
            for i, g in enumerate(runs)
        )
        + ".\n"
    )
    L.append("### Per reference tool (wall s / peak RSS MB / in-process import s), each round\n")
    L.append("| tool | toolkit | " + " | ".join(f"round {i + 1}" for i in range(len(runs))) + " |")
    L.append("|---|---|" + "---|" * len(runs))
    for tool, (_, label, _) in TOOLS.items():
        cells = []
        for g in runs:
            t = g["reference"]["tools"][tool]
            imp = sum(v for k, v in t["stages"].items() if k.startswith("import"))
            cells.append(f"{t['wall_s']:.1f} / {t['peak_rss_mb']:.0f} / {imp:.1f}")
        L.append(f"| {tool}: {label} | {TOOLKIT_OF[tool]} | " + " | ".join(cells) + " |")
    per_kit: dict[str, list[float]] = {}
    for g in runs:
        for kit in dict.fromkeys(TOOLKIT_OF.values()):
            per_kit.setdefault(kit, []).append(
                sum(t["wall_s"] for k, t in g["reference"]["tools"].items() if TOOLKIT_OF[k] == kit)
            )
    for kit, vals in per_kit.items():
        L.append(f"| **{kit} total** | | " + " | ".join(f"**{v:.1f}**" for v in vals) + " |")
    L.append("")
    last = runs[-1]
    L.append(f"### Stages, round {len(runs)} (s; reference stages may nest, ours are exclusive)\n")
    for tool in TOOLS:
        t = last["reference"]["tools"][tool]
        L.append(f"| {tool} stage | s |\n|---|---|")
        L += _stages(t)
        L.append(f"| *(process wall)* | {t['wall_s']:.1f} |\n")
    for key in ("ours3", "ours4"):
        if last.get(key):
            L.append(f"| {key} stage (exclusive) | s |\n|---|---|")
            L += _stages(last[key])
            L.append(
                f"| *(interpreter start + unaccounted)* | "
                f"{last[key]['wall_s'] - sum(last[key]['stages'].values()):.1f} |\n"
            )
    L.append(f"### Metric values, round {len(runs)}: the same quantities on both sides\n")
    L.append("rel = |ours - ref| / |ref|.\n")
    L.append("| protocol | metric | reference tool | reference | ours (3 protocols) | rel | ours (4 protocols) |")
    L.append("|---|---|---|---|---|---|---|")
    o3, o4 = last["ours3"]["metrics"], (last.get("ours4") or {}).get("metrics", {})
    for proto, label, tool, rkey, prefix in PAIRS:
        r = float(last["reference"]["tools"][tool]["metrics"].get(rkey, float("nan")))
        a, b = _ours_value(o3, proto, prefix), _ours_value(o4, proto, prefix)
        L.append(f"| {proto} | {label} | {tool} | {r:.6g} | {a:.6g} | {_rel(a, r)} | {b:.6g} |")
    if o4.get("genau"):
        L.append("\ngenau protocol (ours-4 only; its reference-tool timing is `bench_vs_reference.py`): " + ", ".join(
            f"{k} {v:.6g}" for k, v in o4["genau"].items() if v is not None
        ))  # fmt: skip
    L.append("")
    versions = {tool: last["reference"]["tools"][tool].get("versions", {}) for tool in TOOLS}
    L.append("Reference versions: " + "; ".join(f"{t}: " + ", ".join(f"{k} {v}" for k, v in vs.items())
                                                for t, vs in versions.items()) + ".\n")  # fmt: skip
    L.append(
        f"Command: `.venv/bin/python benchmarks/bench_protocols_vs_reference.py --n {args.n} --rounds {args.rounds}"
        f" --threads {args.threads}{' --no-four' if args.no_four else ''}"
        f"{f' --four-rounds {args.four_rounds}' if args.four_rounds is not None else ''}"
        f"{f' --clips {args.clips}' if args.clips != 'stereo44' else ''}`; raw numbers in "
        f"`{(WORK / 'results.json').relative_to(REPO)}`; total driver time {time.perf_counter() - T_START:.0f} s."
    )
    return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=16, help="clips per side (10 s each)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds, alternating which side goes first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--aes-batch", type=int, default=10, help="audiobox-aesthetics main_predict batch size")
    ap.add_argument("--no-four", action="store_true", help="skip the extra line of ours with all four protocols")
    ap.add_argument(
        "--four-rounds",
        type=int,
        default=None,
        help="run the four-protocol line in the last N rounds only (default: all)",
    )
    ap.add_argument("--clips", choices=sorted(CLIP_KINDS), default="stereo44", help="what both sides score")
    ap.add_argument("--results", help="default: RESULTS.protocols_reference.md (stereo44), .mono16.md (mono16)")
    # child mode (our side)
    ap.add_argument("--side", choices=["ours"], help=argparse.SUPPRESS)
    ap.add_argument("--gen", help=argparse.SUPPRESS)
    ap.add_argument("--ref", help=argparse.SUPPRESS)
    ap.add_argument("--prompts", help=argparse.SUPPRESS)
    ap.add_argument("--protocols", default=THREE, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side == "ours":
        run_ours(args)
        return 0

    missing = [str(p) for p in FILES.values() if not p.exists()]
    missing += [str(TOKENIZERS / t) for t in ("roberta", "gpt2") if not (TOKENIZERS / t).is_dir()]
    missing += [str(ORACLES / v) for v, _, _ in TOOLS.values() if not (ORACLES / v / "bin" / "python").exists()]
    if missing:
        raise SystemExit("missing (see the module docstring for the setup steps):\n  " + "\n  ".join(missing))
    global WORK
    _, WORK, default_results = CLIP_KINDS[args.clips]
    args.results = args.results or str(default_results)
    WORK.mkdir(parents=True, exist_ok=True)
    make_clips(WORK, args.n, args.clips)
    print(f"[bench_protocols_vs_reference] {args.n} clips per side in {WORK}; load average {load_avg()}", flush=True)
    runs = []
    for r in range(args.rounds):
        order = ["reference", "ours"] if r % 2 == 0 else ["ours", "reference"]
        g = {"order": order, "load_before": load_avg()}
        for side in order:
            if side == "reference":
                g["reference"] = launch_reference(args, f"r{r + 1}_reference")
            else:
                g["ours3"] = launch_ours(args, THREE, f"r{r + 1}_ours3")
                four_from = 0 if args.four_rounds is None else args.rounds - args.four_rounds
                if not args.no_four and r >= four_from:
                    g["ours4"] = launch_ours(args, FOUR, f"r{r + 1}_ours4")
        g["load_after"] = load_avg()
        runs.append(g)
        print(
            f"[bench_protocols_vs_reference] round {r + 1}: reference {g['reference']['wall_s']:.1f} s, ours-3 "
            f"{g['ours3']['wall_s']:.1f} s -> {g['reference']['wall_s'] / g['ours3']['wall_s']:.2f}x",
            flush=True,
        )
    (WORK / "results.json").write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1))
    text = write_results(args, runs)
    write_keeping_notes(Path(args.results), text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
