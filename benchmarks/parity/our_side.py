"""Parity check, our side: our backbones + bench.metrics.functional vs the reference oracle.

Run in OUR venv after oracle_side.py has written <root>/oracle.json:

    .venv/bin/python benchmarks/parity/our_side.py [--only cnn14 vggish ...] [--wait-minutes 60]

Three levels per backbone (each row of the table names its level):
  backbone  our `load(ckpt)` + `embed` on exactly the waveforms the reference network saw
            (dumped by the oracle) -> per-tensor max |ours - ref| and that over max |ref|
  metric    our metric function on the REFERENCE's own features -> isolates the metric math
  pipeline  our whole path, as `bench score` runs it: bench.audio.read_audio_channels(file) ->
            derive_input(backbone.input_path: the reference tool's channels / mean removal /
            resampler) -> backbone.prepare -> our backbone -> our metric, vs the reference tool's
            number from the same files
A metric passes at |ours - ref| <= 1e-4 * |ref| (or <= 1e-7 absolute for values near 0).
Writes benchmarks/parity/RESULTS.partial.md and <root>/ours.json.
A backbone whose module does not exist yet is reported "pending"; with --wait-minutes the
script polls every 60 s for it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_ROOT = REPO / "benchmarks" / ".work" / "parity"
ALL = ["cnn14", "vggish", "laion_clap", "ms_clap_2023", "ms_clap_2022"]
RTOL = 1e-4
ATOL = 1e-7
MODULES = {
    "cnn14": ("bench.metrics.backbones.panns", "Cnn14Backbone"),
    "vggish": ("bench.metrics.backbones.vggish", "VGGishBackbone"),
    "laion_clap": ("bench.metrics.backbones.laion_clap", "LaionClapHtsatBase"),
    "ms_clap_2023": ("bench.metrics.backbones.ms_clap", "MsClap2023"),
    "ms_clap_2022": ("bench.metrics.backbones.ms_clap", "MsClap2022"),
}


class Pending(Exception):
    pass


def backbone_cls(key: str):
    mod, cls = MODULES[key]
    try:
        importlib.import_module("bench.metrics.functional")
        m = importlib.import_module(mod)
        return getattr(m, cls)
    except (ImportError, AttributeError) as e:
        raise Pending(f"{mod}.{cls}: {type(e).__name__}: {e}") from None


def F():
    return importlib.import_module("bench.metrics.functional")


def read_wav(p: Path) -> np.ndarray:
    import soundfile as sf

    x, _ = sf.read(str(p), dtype="float32")
    return x


# ----------------------------------------------------------------------------- comparisons
class Table:
    def __init__(self):
        self.rows: list[dict] = []

    def tensor(self, backbone: str, level: str, name: str, ours, ref, note: str = ""):
        ours = np.asarray(ours, dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        if ours.shape != ref.shape:
            self.rows.append(
                dict(
                    backbone=backbone,
                    level=level,
                    what=name,
                    kind="tensor",
                    ours=str(ours.shape),
                    ref=str(ref.shape),
                    abs=float("nan"),
                    rel=float("nan"),
                    ok=False,
                    note=f"shape differs {note}".strip(),
                )
            )
            return
        d = float(np.max(np.abs(ours - ref))) if ours.size else 0.0
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        rel = d / scale if scale > 0 else d
        self.rows.append(
            dict(
                backbone=backbone,
                level=level,
                what=name,
                kind="tensor",
                ours=f"{ours.shape}",
                ref=f"max abs {scale:.4g}",
                abs=d,
                rel=rel,
                ok=rel <= RTOL,
                note=note,
            )
        )

    def equal(self, backbone: str, level: str, name: str, ours, ref, note: str = ""):
        ours, ref = np.asarray(ours), np.asarray(ref)
        same = ours.shape == ref.shape and bool(np.array_equal(ours, ref))
        n_diff = int((ours != ref).sum()) if ours.shape == ref.shape else -1
        self.rows.append(
            dict(
                backbone=backbone,
                level=level,
                what=name,
                kind="exact",
                ours=str(ours.shape),
                ref=str(ref.shape),
                abs=float(n_diff),
                rel=0.0 if same else float("nan"),
                ok=same,
                note=note or ("identical" if same else f"{n_diff} entries differ"),
            )
        )

    def metric(self, backbone: str, level: str, name: str, ours: float, ref: float, note: str = ""):
        d = abs(ours - ref)
        rel = d / abs(ref) if ref != 0 else d
        ok = d <= max(RTOL * abs(ref), ATOL)
        self.rows.append(
            dict(
                backbone=backbone,
                level=level,
                what=name,
                kind="metric",
                ours=f"{ours:.8g}",
                ref=f"{ref:.8g}",
                abs=d,
                rel=rel,
                ok=ok,
                note=note,
            )
        )

    def status(self, backbone: str, text: str):
        self.rows.append(
            dict(
                backbone=backbone,
                level="-",
                what="status",
                kind="status",
                ours="",
                ref="",
                abs=float("nan"),
                rel=float("nan"),
                ok=None,
                note=text,
            )
        )


def stack_by_names(npz, names):
    return [npz[n] for n in names]


def suite_input(b, path: Path, rate: int) -> np.ndarray:
    """What the scoring suite hands backbone `b` for file `path` (protocol default resampler "reference")."""
    from bench.audio import derive_input, read_audio_channels

    data, sr = read_audio_channels(path)
    return b.prepare(derive_input(data, sr, rate, b.input_path))


# ----------------------------------------------------------------------------- per backbone
def check_cnn14(root: Path, orc: dict, T: Table):
    cls = backbone_cls("cnn14")
    o = orc["cnn14"]
    b = cls().load(o["checkpoint"])
    raw = root / "raw"
    feats = {}
    for tag in ("gen", "ref"):
        names = json.loads((raw / f"cnn14_{tag}_names.json").read_text())
        inp = np.load(raw / f"cnn14_{tag}_inputs.npz")
        res = b.embed([inp[n] for n in names])
        emb = np.stack([r["embedding"] for r in res])
        lg = np.stack([r["logits"] for r in res])
        T.tensor(
            "cnn14",
            "backbone",
            f"{tag} embedding (relu fc1, 2048)",
            emb,
            np.load(raw / f"cnn14_{tag}_embedding.npy"),
            "same input waveforms as the reference",
        )
        T.tensor("cnn14", "backbone", f"{tag} logits (527)", lg, np.load(raw / f"cnn14_{tag}_logits.npy"))
        feats[tag] = (names, emb, lg)
    refm = o["metrics"]
    f = F()
    # metric math on the reference's features
    rg_e, rr_e = np.load(raw / "cnn14_gen_embedding.npy"), np.load(raw / "cnn14_ref_embedding.npy")
    rg_l, rr_l = np.load(raw / "cnn14_gen_logits.npy"), np.load(raw / "cnn14_ref_logits.npy")
    gn = json.loads((raw / "cnn14_gen_names.json").read_text())
    rn = json.loads((raw / "cnn14_ref_names.json").read_text())
    assert gn == rn, "fixture gen/ref names differ"

    def metrics(ge, re_, gl, rl):
        is_m, is_s = f.inception_score(gl, splits=10, seed=2020)
        return {
            "frechet_distance": f.frechet_distance(ge, re_),
            "inception_score_mean": is_m,
            "inception_score_std": is_s,
            "kullback_leibler_divergence_softmax": f.kl_divergence(gl, rl, kind="softmax"),
            "kullback_leibler_divergence_sigmoid": f.kl_divergence(gl, rl, kind="sigmoid"),
            # audioldm_eval's KID with subset_size (1000) >= n uses every clip in every subset:
            # each of its 100 "subsets" is the full set, so its mean is one full-set cubic MMD
            "kernel_inception_distance_mean": f.kernel_distance(ge, re_, kernel="poly"),
        }

    for k, v in metrics(rg_e, rr_e, rg_l, rr_l).items():
        T.metric("cnn14", "metric", k, v, refm[k], "our function on the reference's features")
    # our whole pipeline from the files
    pf = {}
    for tag in ("gen", "ref"):
        files = sorted((root / tag).glob("*.wav"))
        res = b.embed([suite_input(b, p, 16000) for p in files])
        pf[tag] = (np.stack([r["embedding"] for r in res]), np.stack([r["logits"] for r in res]))
    for k, v in metrics(pf["gen"][0], pf["ref"][0], pf["gen"][1], pf["ref"][1]).items():
        T.metric("cnn14", "pipeline", k, v, refm[k], "derive_input(audioldm_eval path) -> Cnn14Backbone -> functional")
    return {"pipeline": metrics(pf["gen"][0], pf["ref"][0], pf["gen"][1], pf["ref"][1])}


def check_vggish(root: Path, orc: dict, T: Table):
    cls = backbone_cls("vggish")
    vmod = importlib.import_module(MODULES["vggish"][0])
    o = orc["vggish"]
    b = cls().load(o["checkpoint"])
    raw = root / "raw"
    frames = {}
    for tag in ("gen", "ref"):
        ref_frames = np.load(raw / f"vggish_{tag}_frames.npz")
        ref_ex = np.load(raw / f"vggish_{tag}_examples.npz")
        files = sorted((root / tag).glob("*.wav"))
        waves = [read_wav(p) for p in files]  # int16/32768 exactly, as the reference's loader
        ex = np.concatenate([vmod.vggish_examples(w) for w in waves])
        T.tensor(
            "vggish",
            "backbone",
            f"{tag} log-mel examples (N,96,64)",
            ex.reshape(-1, 96, 64),
            np.concatenate([ref_ex[p.name] for p in files]).reshape(-1, 96, 64),
            "torchvggish waveform_to_examples",
        )
        res = b.embed(waves)
        ours = np.concatenate([r["frames"] for r in res])
        T.tensor(
            "vggish",
            "backbone",
            f"{tag} frames (128, no last ReLU)",
            ours,
            np.concatenate([ref_frames[p.name] for p in files]),
        )
        frames[tag] = (ours, np.concatenate([ref_frames[p.name] for p in files]))
    f = F()
    ref_fad = o["metrics"]["frechet_audio_distance"]
    T.metric(
        "vggish",
        "metric",
        "frechet_audio_distance",
        f.frechet_distance(frames["gen"][1], frames["ref"][1]),
        ref_fad,
        "our function on the reference's frames",
    )
    pipe = {}
    for tag in ("gen", "ref"):
        files = sorted((root / tag).glob("*.wav"))
        pipe[tag] = np.concatenate([r["frames"] for r in b.embed([suite_input(b, p, 16000) for p in files])])
    fad = f.frechet_distance(pipe["gen"], pipe["ref"])
    T.metric(
        "vggish",
        "pipeline",
        "frechet_audio_distance",
        fad,
        ref_fad,
        "derive_input(audioldm_eval path) -> VGGishBackbone -> functional",
    )
    return {"pipeline": {"frechet_audio_distance": fad}}


def _clap_common(key: str, root: Path, orc: dict, T: Table, b, raw_prefix: str, wav_dir: str, rate: int, pre_hook=None):
    o = orc[key]
    raw = root / "raw"
    files = [root / wav_dir / n for n in o["names"]]
    waves = [read_wav(p) for p in files]
    T.tensor(
        key,
        "backbone",
        "prepared model input (waveforms)",
        np.stack([b.model_input(w, i) for i, w in enumerate(waves)]),
        np.load(raw / f"{raw_prefix}_inputs.npy"),
    )
    a = np.stack([r["embedding"] for r in b.embed(waves)])
    T.tensor(key, "backbone", "audio embedding", a, np.load(raw / f"{raw_prefix}_audio_embedding.npy"))
    toks = b.tokenize(o["texts"])
    if isinstance(toks, dict):
        ids = np.asarray(toks["input_ids"])
    else:
        ids = np.asarray([t["input_ids"] for t in toks])
    T.equal(key, "backbone", "text token ids", ids, np.load(raw / f"{raw_prefix}_input_ids.npy"))
    t = b.embed_text(o["texts"])
    T.tensor(key, "backbone", "text embedding", t, np.load(raw / f"{raw_prefix}_text_embedding.npy"))
    f = F()
    ref_score = o["metrics"]["clap_score"]
    ra, rt = np.load(raw / f"{raw_prefix}_audio_embedding.npy"), np.load(raw / f"{raw_prefix}_text_embedding.npy")
    T.metric(key, "metric", "clap_score", f.clap_score(rt, ra), ref_score, "our function on the reference's embeddings")
    pa = np.stack([r["embedding"] for r in b.embed([suite_input(b, p, rate) for p in files])])
    score = f.clap_score(t, pa)
    T.metric(
        key,
        "pipeline",
        "clap_score",
        score,
        ref_score,
        f"derive_input({b.input_path.name}, {rate}) -> backbone -> functional",
    )
    return {"pipeline": {"clap_score": score}}


def check_laion_clap(root: Path, orc: dict, T: Table):
    cls = backbone_cls("laion_clap")
    from transformers import AutoTokenizer

    o = orc["laion_clap"]
    if o.get("amodel", "HTSAT-base") != "HTSAT-base":
        mod = importlib.import_module(MODULES["laion_clap"][0])
        cls = mod.LaionClapHtsatTiny
    tok = AutoTokenizer.from_pretrained(o["tokenizer"])
    b = cls(tokenizer=tok).load(o["checkpoint"])
    return _clap_common("laion_clap", root, orc, T, b, "laion", "gen_48k", 48000)


def check_ms_clap(version: str):
    def run(root: Path, orc: dict, T: Table):
        key = f"ms_clap_{version}"
        cls = backbone_cls(key)
        from transformers import AutoTokenizer

        o = orc[key]
        tok = AutoTokenizer.from_pretrained(o["tokenizer"])
        b = cls(tokenizer=tok).load(o["checkpoint"])
        return _clap_common(key, root, orc, T, b, f"msclap{version}", "gen_44k", 44100)

    return run


CHECKS = {
    "cnn14": check_cnn14,
    "vggish": check_vggish,
    "laion_clap": check_laion_clap,
    "ms_clap_2023": check_ms_clap("2023"),
    "ms_clap_2022": check_ms_clap("2022"),
}


# ----------------------------------------------------------------------------- report
def fmt(x):
    if isinstance(x, float):
        if x != x:
            return "-"
        return f"{x:.2e}"
    return str(x)


def write_report(T: Table, orc: dict, path: Path, done: dict):
    lines = ["## Parity with the reference tools (benchmarks/parity)", ""]
    lines.append(
        "Same checkpoint files (fixed-seed random weights written in the official formats), same "
        f"{orc.get('fixture_n', 24)} fixture clips; reference = audioldm_eval 0.0.3, torchvggish "
        "(via audioldm_eval's FrechetAudioDistance), laion_clap 1.1.7, msclap 1.3.4 run in their own "
        "venv (`.oracle-venv`). `rel` = |ours - ref| / |ref| for metrics and "
        "max|ours - ref| / max|ref| for tensors; pass = rel <= 1e-4. Levels: *backbone* = our network on "
        "the exact waveforms the reference network saw; *metric* = our metric function on the reference's "
        "features; *pipeline* = our loader + backbone + metric from the files."
    )
    lines.append("")
    lines.append("| backbone | level | quantity | ours | reference | abs diff | rel diff | pass |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for r in T.rows:
        r = {k: (v.replace("|", "\\|") if isinstance(v, str) else v) for k, v in r.items()}
        ok = {True: "yes", False: "**NO**", None: ""}[r["ok"]]
        if r["kind"] == "status":
            lines.append(f"| {r['backbone']} | - | {r['note']} | | | | | |")
            continue
        if r["kind"] == "exact":
            lines.append(
                f"| {r['backbone']} | {r['level']} | {r['what']} | {r['ours']} | {r['ref']} | {r['note']} | | {ok} |"
            )
            continue
        lines.append(
            f"| {r['backbone']} | {r['level']} | {r['what']} | {r['ours']} | {r['ref']} | "
            f"{fmt(r['abs'])} | {fmt(r['rel'])} | {ok} |"
        )
    lines.append("")
    env = orc.get("env", {})
    lines.append("Reference environment: " + ", ".join(f"{k} {v}" for k, v in env.items()) + ".")
    lines.append("")
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(DEFAULT_ROOT))
    ap.add_argument("--only", nargs="*", choices=ALL, default=None)
    ap.add_argument("--wait-minutes", type=float, default=0.0)
    ap.add_argument("--report", default=str(HERE / "RESULTS.partial.md"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--report-only", action="store_true", help="rebuild the markdown from <root>/ours.json")
    a = ap.parse_args(argv)
    if a.report_only:
        root = Path(a.root).resolve()
        orc = json.loads((root / "oracle.json").read_text())
        orc["fixture_n"] = json.loads((root / "fixture.json").read_text())["n"]
        saved = json.loads((root / "ours.json").read_text())
        T = Table()
        for r in saved["rows"]:
            if isinstance(r.get("ref"), str):
                r["ref"] = r["ref"].replace("max|ref|", "max abs")
            T.rows.append(r)
        write_report(T, orc, Path(a.report), saved["pipeline"])
        print(f"wrote {a.report}")
        return
    import torch

    torch.set_num_threads(a.threads)
    root = Path(a.root).resolve()
    os.environ.setdefault("GENAU_BENCH_CACHE", str(root / "cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    orc = json.loads((root / "oracle.json").read_text())
    fx = json.loads((root / "fixture.json").read_text())
    orc["fixture_n"] = fx["n"]
    todo = [k for k in (a.only or ALL) if k in orc]
    missing_oracle = [k for k in (a.only or ALL) if k not in orc]
    deadline = time.time() + 60 * a.wait_minutes
    T = Table()
    done: dict = {}
    pending = list(todo)
    while pending:
        still = []
        for k in pending:
            print(f"[ours] {k} ...", flush=True)
            sub = Table()
            t0 = time.time()
            try:
                done[k] = CHECKS[k](root, orc, sub)
                print(f"[ours] {k}: {time.time() - t0:.1f} s", flush=True)
                T.rows.extend(sub.rows)
            except Pending as e:
                print(f"[ours] {k}: pending ({e})", flush=True)
                still.append(k)
            except Exception as e:
                traceback.print_exc()
                T.rows.extend(sub.rows)
                T.status(k, f"ERROR {type(e).__name__}: {str(e)[:300]}")
                done[k] = {"error": f"{type(e).__name__}: {e}"}
        pending = still
        if pending and time.time() < deadline:
            time.sleep(60)
            importlib.invalidate_caches()
        elif pending:
            for k in pending:
                T.status(k, "pending: our module does not exist yet")
            break
    for k in missing_oracle:
        T.status(k, "not in oracle.json (run oracle_side.py for it)")
    write_report(T, orc, Path(a.report), done)
    (root / "ours.json").write_text(json.dumps({"rows": T.rows, "pipeline": done}, indent=1, default=str))
    w = max(len(r["what"]) for r in T.rows) if T.rows else 10
    for r in T.rows:
        ok = {True: "ok", False: "FAIL", None: ""}[r["ok"]]
        print(
            f"{r['backbone']:13s} {r['level']:9s} {r['what']:{w}s} ours={r['ours']:>16s} ref={r['ref']:>18s} "
            f"abs={fmt(r['abs']):>9s} rel={fmt(r['rel']):>9s} {ok} {r['note']}"
        )
    print(f"wrote {a.report}")


if __name__ == "__main__":
    main()
