"""PaSST parity: our backbone vs hear21passt 0.0.26, stable-audio-metrics and av-benchmark, same weights.

    bash benchmarks/parity/setup_passt_openl3_oracles.sh          # oracle venvs (once)
    .venv/bin/python benchmarks/parity/passt_parity.py [--oracle-python /work/oracles/passt-venv/bin/python]

Steps (everything under benchmarks/.work/parity_passt/, git-ignored):
1. fixture (our venv): 32 kHz clips of 1.2-23 s (one stereo) in gen/ and ref/ with the same ids, plus
   one 44.1 kHz stereo pair (exercises librosa's resampling in stable-audio-metrics), and raw windows.
2. oracle (its venv, `--side oracle`): hear21passt's own constructor `get_model(arch=
   "passt_s_swa_p16_128_ap476", pretrained=False)` with `torch.manual_seed(0)`, LayerNorm affines and
   head perturbed (a default-init PaSST has unit norms and tiny logits, which would hide mistakes),
   saved as the bare state dict `passt-s-f128-p16-s10-ap.476-swa.pt`, put in torch-hub's checkpoint
   cache and loaded by `hear21passt.base.get_basic_model(mode=...)` through timm's `load_pretrained`
   (strict) - the path stable-audio-metrics and av-benchmark take. Then: the front end and the
   network on the raw windows; stable-audio-metrics' own `src/passt_kld.py` (read from the mirror,
   `.cuda()` made a no-op) for per-file probabilities and the KL; av-benchmark's PaSST extraction
   (`av_bench/extract.py::extract` + `AudioDataset.read_from_file`, transcribed: av_bench imports
   ImageBind/Synchformer/CLAP at module level) for per-file logits and embeddings.
3. ours (our venv): `PasstBackbone.load(file)`, the same quantities, compared -> RESULTS.passt.md.
Network access is refused on the oracle side (sockets raise).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "benchmarks" / ".work" / "parity_passt"
CKPT_NAME = "passt-s-f128-p16-s10-ap.476-swa.pt"
SAM_MIRROR = Path("/work/.mirror/Stability-AI+stable-audio-metrics/repo")
SR = 32000
# id -> (seconds, channels); gen and ref get different signals with the same ids
CLIPS = {"c10": (10.0, 1), "c12": (12.5, 1), "c04": (4.0, 1), "c01": (1.2, 1), "c23": (23.0, 1), "s10": (10.0, 2)}
RAW_WINDOWS = {"w10": 320000, "w4": 128000, "w1": 38400, "wmax": 321600, "wmin": 4801}
AV_AUDIO_LENGTH = 10.0


def _signal(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    f0 = rng.uniform(80, 3000)
    x = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.3 * t / max(t[-1], 1e-3)))  # chirp
    x += 0.2 * np.sin(2 * np.pi * rng.uniform(4000, 12000) * t) * (np.sin(2 * np.pi * rng.uniform(0.2, 2) * t) > 0)
    x += rng.uniform(0.01, 0.1) * rng.standard_normal(n)
    return (x * rng.uniform(0.3, 0.9) / np.max(np.abs(x)) + rng.uniform(-0.02, 0.02)).astype(np.float32)


def make_fixture() -> None:
    import soundfile as sf

    rng = np.random.default_rng(2024)
    for side in ("gen", "ref"):
        (WORK / side).mkdir(parents=True, exist_ok=True)
        for cid, (sec, ch) in CLIPS.items():
            n = int(sec * SR)
            x = np.stack([_signal(rng, n, SR) for _ in range(ch)], axis=1)
            sf.write(WORK / side / f"{cid}.wav", x, SR, subtype="FLOAT")
        (WORK / f"{side}_44k").mkdir(parents=True, exist_ok=True)
        x = np.stack([_signal(rng, int(7.3 * 44100), 44100) for _ in range(2)], axis=1)
        sf.write(WORK / f"{side}_44k" / "h07.wav", x, 44100, subtype="FLOAT")
    np.savez(WORK / "raw_windows.npz", **{k: _signal(rng, n, SR) for k, n in RAW_WINDOWS.items()})


# --------------------------------------------------------------------------------------------
# oracle side (runs in the hear21passt venv; imports nothing from this repository)
# --------------------------------------------------------------------------------------------
def _no_network() -> None:
    import socket

    def refuse(*a, **k):
        raise OSError("parity oracle: network access refused")

    socket.socket.connect = refuse
    socket.create_connection = refuse


def oracle() -> None:
    import contextlib
    import io

    _no_network()
    os.environ["TORCH_HOME"] = str(WORK / "torch_home")
    import soundfile as sf
    import torch
    from hear21passt.base import get_basic_model
    from hear21passt.models.passt import get_model as get_model_passt

    torch.set_num_threads(2)
    quiet = contextlib.redirect_stdout(io.StringIO())
    raw = WORK / "oracle"
    raw.mkdir(parents=True, exist_ok=True)
    # 1. weights: the package's own constructor, fixed seed, informative perturbations
    torch.manual_seed(0)
    with quiet:
        net = get_model_passt(arch="passt_s_swa_p16_128_ap476", pretrained=False)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if ".norm" in name or name.startswith(("norm.", "head.0.")):
                p.add_(0.2 * torch.randn(p.shape, generator=g))
        net.head[1].weight.mul_(5.0)  # logits spread ~10: softmax informative, not one-hot
        net.head[1].bias.normal_(0.0, 0.5, generator=g)
        net.head_dist.weight.normal_(0.0, 0.02, generator=g)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    (WORK / "ckpt").mkdir(exist_ok=True)
    torch.save(state, WORK / "ckpt" / CKPT_NAME)
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    hub.mkdir(parents=True, exist_ok=True)
    shutil.copy(WORK / "ckpt" / CKPT_NAME, hub / CKPT_NAME)
    # 2. the package's loader (timm download_cached_file -> cache hit -> strict load_state_dict)
    torch.manual_seed(123)  # a different init, so only the file can make the tensors equal
    with quiet:
        model_all = get_basic_model(mode="all").eval()
    loaded = model_all.net.state_dict()
    mismatched = [k for k in state if not torch.equal(loaded[k], state[k])]
    checks = {"n_tensors": len(state), "not_bit_exact": mismatched, "keys_equal": sorted(loaded) == sorted(state)}
    # 3. front end + network on raw windows
    windows = dict(np.load(WORK / "raw_windows.npz"))
    out = {}
    with torch.no_grad(), quiet:
        for k, w in windows.items():
            x = torch.from_numpy(w)[None]
            out[f"{k}_mel"] = model_all.mel(x)[0].numpy()
            y = model_all(x)[0].numpy()
            out[f"{k}_logits"], out[f"{k}_embedding"] = y[:527], y[527:]
    np.savez(raw / "raw_windows_out.npz", **out)
    # 4. stable-audio-metrics' own code (src/passt_kld.py at the mirror's HEAD)
    sam_dir = WORK / "sam"
    sam_dir.mkdir(exist_ok=True)
    src = subprocess.run(
        ["git", "-C", str(SAM_MIRROR), "show", "HEAD:src/passt_kld.py"], check=True, capture_output=True, text=True
    ).stdout
    (sam_dir / "passt_kld.py").write_text(src)
    sam_commit = subprocess.run(
        ["git", "-C", str(SAM_MIRROR), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    sys.path.insert(0, str(sam_dir))
    torch.Tensor.cuda = lambda self, *a, **k: self  # the reference assumes a GPU
    torch.nn.Module.cuda = lambda self, *a, **k: self
    import passt_kld

    with quiet:
        model_logits = get_basic_model(mode="logits").eval()
    sam = {}
    for folder in ("gen", "ref", "gen_44k", "ref_44k"):
        for f in sorted((WORK / folder).glob("*.wav")):
            with torch.no_grad():
                sam[f"{folder}/{f.stem}"] = passt_kld.return_probabilities(model_logits, str(f)).numpy()
    np.savez(raw / "sam_probabilities.npz", **{k.replace("/", "__"): v for k, v in sam.items()})
    cwd = os.getcwd()
    os.chdir(sam_dir)  # passt_kld writes load/passt_kld/*.pkl relative to the working directory
    try:
        kl = {}
        for suffix, ids in (("", sorted(CLIPS)), ("_44k", ["h07"])):
            with quiet:
                kl[suffix or "32k"] = float(
                    passt_kld.passt_kld(
                        ids, str(WORK / f"gen{suffix}"), ref_path=str(WORK / f"ref{suffix}"), collect="mean"
                    )
                )
    finally:
        os.chdir(cwd)
    # 5. av-benchmark's PaSST extraction, transcribed (AudioDataset.read_from_file + extract)
    avb = {}
    for folder in ("gen", "ref"):
        for f in sorted((WORK / folder).glob("*.wav")):
            data, sr = sf.read(f, dtype="float32", always_2d=True)  # torchaudio.load: (channels, samples)
            waveform = torch.from_numpy(data.T.copy())
            waveform = waveform.mean(dim=0)  # mono
            waveform = waveform - waveform.mean()
            assert sr == SR  # the fixture is at 32 kHz: av-benchmark's torchaudio resampler is not exercised
            audio = waveform[: int(SR * AV_AUDIO_LENGTH)].unsqueeze(0)
            wav = audio.squeeze(1).float()  # the DataLoader batch of one, as extract() squeezes it
            if wav.size(-1) >= 320000:
                wav = wav[..., :320000]
            else:
                wav = torch.nn.functional.pad(wav, (0, 320000 - wav.size(-1)))
            with torch.no_grad(), quiet:
                features = model_all(wav).cpu()
            avb[f"{folder}__{f.stem}__logits"] = features[0, :527].numpy()
            avb[f"{folder}__{f.stem}__embedding"] = features[0, 527:].numpy()
    np.savez(raw / "avb.npz", **avb)
    import hear21passt
    import timm
    import torchaudio

    info = {
        "checks": checks,
        "kl": kl,
        "stable_audio_metrics_commit": sam_commit,
        "versions": {
            "hear21passt": getattr(hear21passt, "__version__", "?"),
            "timm": timm.__version__,
            "torchaudio": torchaudio.__version__,
            "torch": torch.__version__,
        },
    }
    (raw / "oracle.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info, indent=1))


# --------------------------------------------------------------------------------------------
# our side
# --------------------------------------------------------------------------------------------
def ours() -> None:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(Path(__file__).parent))
    import soundfile as sf
    import torch
    from _rows import Rows

    from bench.audio import derive_input
    from bench.metrics.backbones.passt import PasstAvBenchmark, PasstBackbone, PasstStableAudio

    torch.set_num_threads(2)
    raw = WORK / "oracle"
    info = json.loads((raw / "oracle.json").read_text())
    rows = Rows()
    rows.exact(
        "passt",
        "weights",
        "reference loader (timm load_pretrained) vs saved file",
        len(info["checks"]["not_bit_exact"]) + (0 if info["checks"]["keys_equal"] else 1),
        info["checks"]["n_tensors"],
    )
    ckpt = WORK / "ckpt" / CKPT_NAME
    base = PasstBackbone().load(ckpt)
    file_state = torch.load(ckpt, map_location="cpu", weights_only=True)
    mine = base.state_dict_official()
    n_bad = sum(1 for k in file_state if k not in mine or not torch.equal(mine[k], file_state[k]))
    n_bad += sum(1 for k in mine if k not in file_state)
    rows.exact("passt", "weights", "our loader vs saved file (official keys)", n_bad, len(file_state))
    # backbone level: raw windows
    windows = dict(np.load(WORK / "raw_windows.npz"))
    ref = dict(np.load(raw / "raw_windows_out.npz"))
    for k, w in windows.items():
        with torch.inference_mode():
            mel = base.model.mel(torch.from_numpy(w)[None])[0].numpy()
        logits, emb = base.forward_windows([w])
        rows.tensor("passt", "backbone", f"{k} ({len(w)} samples) log-mel (128, frames)", mel, ref[f"{k}_mel"])
        rows.tensor("passt", "backbone", f"{k} logits (527)", logits[0], ref[f"{k}_logits"])
        rows.tensor("passt", "backbone", f"{k} embedding (768)", emb[0], ref[f"{k}_embedding"])
    # stable-audio-metrics
    sam_ref = dict(np.load(raw / "sam_probabilities.npz"))
    sam = PasstStableAudio(batch_size=2)
    sam.model, sam.identity, sam.kernels = base.model, base.identity, base.kernels
    probs = {}
    for folder in ("gen", "ref", "gen_44k", "ref_44k"):
        for f in sorted((WORK / folder).glob("*.wav")):
            data, sr = sf.read(f, dtype="float32", always_2d=True)
            x = derive_input(data, sr, SR, sam.input_path)  # the suite's path: mono mean, librosa's soxr HQ
            logits = sam.embed([sam.prepare(x)])[0]["logits"].astype(np.float64)
            e = np.exp(logits - logits.max())
            probs[f"{folder}/{f.stem}"] = e / e.sum()
    for key, p in probs.items():
        level = "pipeline" if "44k" not in key else "pipeline+resample"
        rows.tensor("passt", level, f"stable-audio-metrics probabilities {key}", p, sam_ref[key.replace("/", "__")])

    def kl(ids, suffix):  # F.kl_div((ref_p + 1e-6).log(), eval_p, reduction="sum"), mean over ids
        vals = [
            np.sum(
                probs[f"gen{suffix}/{i}"]
                * (np.log(probs[f"gen{suffix}/{i}"]) - np.log(probs[f"ref{suffix}/{i}"] + 1e-6))
            )
            for i in ids
        ]
        return float(np.mean(vals))

    rows.scalar(
        "passt",
        "pipeline",
        "stable-audio-metrics passt_kld (6 pairs, 32 kHz)",
        kl(sorted(CLIPS), ""),
        info["kl"]["32k"],
    )
    rows.scalar(
        "passt",
        "pipeline+resample",
        "stable-audio-metrics passt_kld (1 pair, 44.1 kHz stereo)",
        kl(["h07"], "_44k"),
        info["kl"]["_44k"],
    )
    # av-benchmark
    avb_ref = dict(np.load(raw / "avb.npz"))
    avb = PasstAvBenchmark(batch_size=2, audio_length=AV_AUDIO_LENGTH)
    avb.model, avb.identity, avb.kernels = base.model, base.identity, base.kernels
    for folder in ("gen", "ref"):
        for f in sorted((WORK / folder).glob("*.wav")):
            data, sr = sf.read(f, dtype="float32", always_2d=True)
            x = derive_input(data, sr, SR, avb.input_path)  # mono mean, DC removal (no resampling at 32 kHz)
            out = avb.embed([x])[0]
            key = f"{folder}__{f.stem}"
            rows.tensor(
                "passt", "pipeline", f"av-benchmark logits {folder}/{f.stem}", out["logits"], avb_ref[f"{key}__logits"]
            )
            rows.tensor(
                "passt",
                "pipeline",
                f"av-benchmark embedding {folder}/{f.stem}",
                out["embedding"],
                avb_ref[f"{key}__embedding"],
            )
    rows.print()
    v = info["versions"]
    intro = (
        f"PaSST parity (benchmarks/parity/passt_parity.py): hear21passt {v['hear21passt']} (timm {v['timm']}, "
        f"torchaudio {v['torchaudio']} python code, torch {v['torch']}), stable-audio-metrics "
        f"{info['stable_audio_metrics_commit'][:7]} `src/passt_kld.py`, av-benchmark's extraction transcribed; "
        f"shared fixed-seed weights in `{CKPT_NAME}`. rel = max|ours-ref|/max|ref| (tensors), "
        f"|ours-ref|/|ref| (scalars); pass = rel <= 1e-4."
    )
    (WORK / "RESULTS.passt.md").write_text(rows.markdown(intro))
    rows.save(WORK / "ours.json")
    print(f"wrote {WORK / 'RESULTS.passt.md'}; {sum(r.ok for r in rows)}/{len(rows)} pass")
    if not all(r.ok for r in rows):
        sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--side", choices=["all", "oracle", "ours"], default="all")
    ap.add_argument(
        "--oracle-python", default=os.environ.get("PASST_ORACLE_PYTHON", "/work/oracles/passt-venv/bin/python")
    )
    args = ap.parse_args()
    if args.side == "oracle":
        return oracle()
    if args.side == "all":
        t0 = time.time()
        make_fixture()
        subprocess.run([args.oracle_python, __file__, "--side", "oracle"], check=True)
        print(f"oracle side done in {time.time() - t0:.0f} s")
    ours()


if __name__ == "__main__":
    main()
