"""LAION-CLAP fusion parity: our backbone vs laion_clap 1.1.4 driven by stable-audio-metrics' own CLAP score code.

    bash benchmarks/parity/setup_clap_fusion_aesthetics_oracles.sh     # oracle venv (once)
    .venv/bin/python benchmarks/parity/clap_fusion_parity.py [--oracle-python /work/oracles/clap-venv/bin/python]

Steps (everything under benchmarks/.work/parity_clap_fusion/, git-ignored):
1. fixture (our venv): 48 kHz clips of 0.5-60 s (repeat-padded, exactly 10 s, the 480001-480479 corner,
   fused long clips; two stereo) and a 44.1 kHz stereo pair (librosa's soxr resampling), with captions.
2. oracle (its venv, `--side oracle`): laion_clap 1.1.4 (stable-audio-metrics' pin) `CLAP_Module(
   enable_fusion=True)` (HTSAT-tiny + RoBERTa) built with `torch.manual_seed(0)`; audio BatchNorm statistics
   calibrated on fused fixture clips (so the AFF block's BN sees fused inputs) and every norm's affine
   perturbed; saved as `630k-audioset-fusion-best.pt` ({"state_dict": {"module.*"}} + the legacy RoBERTa
   position_ids key). Then stable-audio-metrics' own `src/clap_score.py::clap_score` (mirror HEAD) runs on the
   clips from that file (device forced to the CPU; the chunk draw seeded per clip, below); its audio and text
   embeddings and laion_clap's `get_audio_features` outputs are recorded through wrappers. It runs twice:
   with the installed torchvision 0.28 Resize (antialiased, the default since 0.17) and with Resize's
   `antialias` defaulting to False, torchvision 0.16's behaviour for tensors (stable-audio-metrics pins 0.16.0).
   Chunk draw: before each clip numpy's global RNG is seeded with our per-clip seed (`fusion_chunk_seed`:
   sha256 of the float32 samples the model gets, computed here from the oracle's own samples).
3. ours (our venv): `LaionClapFusionStableAudio.load(file)`, the suite's input path (`derive_input`),
   `prepare` + `embed`, `embed_text`, cosines and their mean -> RESULTS.clap_fusion.md.
Network access is refused on the oracle side (sockets raise); RoBERTa tokenizer / model come from the
parity oracle's stand-ins (tiny BPE vocabulary trained on the captions; roberta-base config, random weights).
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
HERE = Path(__file__).resolve().parent
WORK = ROOT / "benchmarks" / ".work" / "parity_clap_fusion"
CKPT_NAME = "630k-audioset-fusion-best.pt"
SAM_MIRROR = Path("/work/.mirror/Stability-AI+stable-audio-metrics/repo")
SR = 48000
# id -> (samples, channels) at 48 kHz
CLIPS = {
    "a05": (24000, 2),
    "b03": (144000, 1),
    "c10": (480000, 1),
    "d10": (480240, 1),
    "e12": (600000, 1),
    "f23": (1104000, 2),
    "g60": (2880000, 1),
}
CLIPS_44K = {"h07": (int(7.3 * 44100), 2), "i15": (int(15.2 * 44100), 2)}
CAPTIONS = [
    "a dog barks twice in a small room",
    "rain falls on a metal roof",
    "a man speaks over an engine",
    "birds chirp while wind blows",
    "a door creaks open and slams shut",
    "water runs from a tap",
    "a crowd cheers and claps",
    "a car passes by on a wet road",
    "a bell rings in the distance",
]
VARIANTS = {"tv016": False, "tv028": True}  # Resize antialias: torchvision 0.16 (tensors) / >= 0.17 default


def _signal(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    x = 0.3 * np.sin(2 * np.pi * rng.uniform(80, 3000) * t * (1 + 0.2 * t / max(t[-1], 1e-3)))
    x += 0.2 * np.sin(2 * np.pi * rng.uniform(3000, 12000) * t) * (np.sin(2 * np.pi * rng.uniform(0.1, 1.5) * t) > 0)
    x += rng.uniform(0.01, 0.1) * rng.standard_normal(n)
    env = 0.5 + 0.5 * np.abs(np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t))  # long clips change over time
    return (x * env * rng.uniform(0.3, 0.9) / np.max(np.abs(x))).astype(np.float32)


def make_fixture() -> None:
    import soundfile as sf

    rng = np.random.default_rng(2025)
    for folder, clips, sr in (("clips", CLIPS, SR), ("clips_44k", CLIPS_44K, 44100)):
        (WORK / folder).mkdir(parents=True, exist_ok=True)
        for cid, (n, ch) in clips.items():
            x = np.stack([_signal(rng, n, sr) for _ in range(ch)], axis=1)
            sf.write(WORK / folder / f"{cid}.wav", x, sr, subtype="FLOAT")
    ids = sorted(CLIPS) + sorted(CLIPS_44K)
    (WORK / "captions.json").write_text(json.dumps(dict(zip(ids, CAPTIONS)), indent=1))


# --------------------------------------------------------------------------------------------
# oracle side (runs in the laion_clap venv; imports nothing from bench / genau_core)
# --------------------------------------------------------------------------------------------
def oracle() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    sys.path.insert(0, str(HERE))
    import hashlib

    import soundfile as sf
    import torch
    from oracle_side import (
        _no_network,
        build_tokenizers,
        calibrate_bn,
        check_loaded,
        patch_hf,
        perturb_norms,
    )

    _no_network()
    torch.set_num_threads(2)
    caps = json.loads((WORK / "captions.json").read_text())
    tok = build_tokenizers(WORK / "tokenizers", list(caps.values()))
    patch_hf(tok)
    import laion_clap
    import torchvision
    from laion_clap import hook
    from laion_clap.training.data import get_audio_features

    raw = WORK / "oracle"
    raw.mkdir(parents=True, exist_ok=True)
    # 1. weights: the package's constructor, fixed seed, fusion-aware BN statistics, perturbed norms
    np.random.seed(0)
    torch.manual_seed(0)
    m = laion_clap.CLAP_Module(enable_fusion=True, device="cpu")
    calib = []
    for cid in ("b03", "e12", "f23", "g60"):
        x, _ = sf.read(str(WORK / "clips" / f"{cid}.wav"), dtype="float32", always_2d=True)
        calib.append(
            get_audio_features(
                {},
                torch.from_numpy(x.mean(axis=1)),
                480000,
                data_truncating="fusion",
                data_filling="repeatpad",
                audio_cfg=m.model_cfg["audio_cfg"],
            )
        )
    calib = calib[1:] + calib[:1]  # a fused clip first: get_audio_embedding stacks the dicts' keys
    net = m.model
    calibrate_bn(net.audio_branch, lambda: net.get_audio_embedding(calib))
    perturb_norms(m.model, 0, stats=False)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():  # a stronger local branch, so a wrong fusion cannot hide behind a small residual
        m.model.audio_branch.patch_embed.mel_conv2d.weight.mul_(3.0)
        m.model.audio_branch.patch_embed.mel_conv2d.bias.normal_(0.0, 0.1, generator=g)
    sd = {k: v.clone() for k, v in m.model.state_dict().items()}
    ck_sd = {"module." + k: v for k, v in sd.items()}
    ck_sd["module.text_branch.embeddings.position_ids"] = torch.arange(514).unsqueeze(0)
    (WORK / "ckpt").mkdir(exist_ok=True)
    torch.save({"epoch": 45, "state_dict": ck_sd}, WORK / "ckpt" / CKPT_NAME)
    del m
    # 2. stable-audio-metrics' own clap_score (mirror HEAD), its file layout, device forced to the CPU
    sam_dir = WORK / "sam"
    (sam_dir / "load" / "clap_score").mkdir(parents=True, exist_ok=True)
    shutil.copy(WORK / "ckpt" / CKPT_NAME, sam_dir / "load" / "clap_score" / CKPT_NAME)
    src = subprocess.run(
        ["git", "-C", str(SAM_MIRROR), "show", "HEAD:src/clap_score.py"], check=True, capture_output=True, text=True
    ).stdout
    (sam_dir / "clap_score.py").write_text(src)
    sam_commit = subprocess.run(
        ["git", "-C", str(SAM_MIRROR), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    sys.path.insert(0, str(sam_dir))
    real_init = laion_clap.CLAP_Module.__init__

    def cpu_init(self, *a, **k):
        k["device"] = "cpu"
        torch.manual_seed(123)  # a different init, so only the file can make the tensors equal
        real_init(self, *a, **k)

    laion_clap.CLAP_Module.__init__ = cpu_init
    rec: dict = {}
    real_from_data = laion_clap.CLAP_Module.get_audio_embedding_from_data
    real_text = laion_clap.CLAP_Module.get_text_embedding
    real_features = hook.get_audio_features
    real_choice = np.random.choice

    def from_data(self, x, use_tensor=False):
        rec["model"] = self
        wave = x[0].detach().cpu().numpy().astype(np.float32)
        seed = int.from_bytes(hashlib.sha256(np.ascontiguousarray(wave).tobytes()).digest()[:4], "little")
        np.random.seed(seed)
        rec["cur"] = {"seed": seed, "wave_sha": hashlib.sha256(wave.tobytes()).hexdigest(), "starts": []}
        out = real_from_data(self, x, use_tensor=use_tensor)
        rec["cur"]["embedding"] = out.detach().cpu().numpy()[0]
        rec.setdefault("clips", []).append(rec.pop("cur"))
        return out

    def features(sample, audio_data, *a, **k):
        out = real_features(sample, audio_data, *a, **k)
        rec["cur"]["mel_fusion"] = out["mel_fusion"].numpy().copy()
        rec["cur"]["longer"] = bool(out["longer"])
        return out

    def choice(a, *args, **kw):
        v = real_choice(a, *args, **kw)
        if "cur" in rec:
            rec["cur"]["starts"].append(int(v))
        return v

    def text(self, x, tokenizer=None, use_tensor=False):
        out = real_text(self, x, tokenizer=tokenizer, use_tensor=use_tensor)
        toks = self.tokenizer(x)
        rec.setdefault("text", []).append((list(x), out.detach().cpu().numpy(), toks["input_ids"].numpy()))
        return out

    laion_clap.CLAP_Module.get_audio_embedding_from_data = from_data
    laion_clap.CLAP_Module.get_text_embedding = text
    hook.get_audio_features = features
    np.random.choice = choice
    import clap_score as sam

    real_resize_init = torchvision.transforms.Resize.__init__
    info = {"variants": {}, "stable_audio_metrics_commit": sam_commit}
    for variant, antialias in VARIANTS.items():

        def resize_init(self, size, *a, antialias=antialias, **k):
            real_resize_init(self, size, *a, antialias=antialias, **k)

        torchvision.transforms.Resize.__init__ = resize_init
        for folder, clips in (("clips", CLIPS), ("clips_44k", CLIPS_44K)):
            rec.clear()
            id2text = {cid: caps[cid] for cid in sorted(clips)}
            cwd = os.getcwd()
            os.chdir(sam_dir)  # clap_score reads load/clap_score/<ckpt> relative to the working directory
            try:
                t0 = time.time()
                score = float(
                    sam.clap_score(id2text, str(WORK / folder), audio_files_extension=".wav", clap_model=CKPT_NAME)
                )
                took = time.time() - t0
            finally:
                os.chdir(cwd)
            key = f"{variant}__{folder}"
            if variant == "tv016" and folder == "clips":
                info["checks"] = check_loaded(rec["model"].model, sd)  # the file's tensors, bit-exact
            arrays = {}
            for cid, c in zip(sorted(clips), rec["clips"]):
                arrays[f"{cid}__embedding"] = c["embedding"]
                arrays[f"{cid}__mel_fusion"] = c["mel_fusion"]
            texts, temb, ids = rec["text"][0]
            arrays["text_embedding"], arrays["input_ids"] = temb, ids
            np.savez(raw / f"{key}.npz", **arrays)
            info["variants"][key] = {
                "score": score,
                "seconds": took,
                "ids": sorted(clips),
                "texts": texts,
                "longer": [c["longer"] for c in rec["clips"]],
                "starts": [c["starts"] for c in rec["clips"]],
                "seeds": [c["seed"] for c in rec["clips"]],
                "wave_sha": [c["wave_sha"] for c in rec["clips"]],
            }
            print(f"[oracle] {key}: clap_score {score:.6f} ({took:.0f} s)", flush=True)
    import librosa
    import transformers

    info["versions"] = {
        "laion_clap": laion_clap.__version__ if hasattr(laion_clap, "__version__") else _dist_version("laion_clap"),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "librosa": librosa.__version__,
        "transformers": transformers.__version__,
        "torchaudio": _dist_version("torchaudio"),
        "pyloudnorm": _dist_version("pyloudnorm"),
    }
    info["tokenizer"] = tok["roberta"]["dir"]
    (raw / "oracle.json").write_text(json.dumps(info, indent=1))


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


# --------------------------------------------------------------------------------------------
# our side
# --------------------------------------------------------------------------------------------
def ours() -> None:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(HERE))
    import hashlib

    import soundfile as sf
    import torch
    from _rows import Rows
    from transformers import RobertaTokenizer

    from bench.audio import derive_input
    from bench.metrics.backbones.laion_clap_fusion import LaionClapFusionStableAudio
    from genau_core.networks.laion_clap_fusion import HTSAT_TINY_FUSION, fusion_config, to_laion_clap_fusion_state_dict

    torch.set_num_threads(2)
    raw = WORK / "oracle"
    info = json.loads((raw / "oracle.json").read_text())
    caps = json.loads((WORK / "captions.json").read_text())
    rows = Rows()
    chk = info["checks"]
    rows.exact(
        "clap-fusion",
        "weights",
        "reference loader (stable-audio-metrics load_state_dict) vs saved file",
        len(chk["tensors_differ"]) + len(chk["model_keys_not_in_ckpt"]),
        chk["tensors_equal"],
    )
    tokenizer = RobertaTokenizer.from_pretrained(info["tokenizer"])
    ckpt = WORK / "ckpt" / CKPT_NAME
    backbones = {}
    for variant, antialias in VARIANTS.items():
        cfg = fusion_config(HTSAT_TINY_FUSION, resize_antialias=antialias)
        backbones[variant] = LaionClapFusionStableAudio(config=cfg, tokenizer=tokenizer, batch_size=4).load(ckpt)
    mine = to_laion_clap_fusion_state_dict(backbones["tv016"].model)
    file_state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    legacy = "module.text_branch.embeddings.position_ids"  # stable-audio-metrics pops it; our loader checks it
    file_state = {k[len("module.") :]: v for k, v in file_state.items() if k != legacy}
    n_bad = sum(1 for k in file_state if k not in mine or not torch.equal(mine[k], file_state[k]))
    n_bad += sum(1 for k in mine if k not in file_state)
    rows.exact(
        "clap-fusion", "weights", "our loader vs saved file (official keys, back-converted)", n_bad, len(file_state)
    )
    for key, ref in info["variants"].items():
        variant, folder = key.split("__")
        b = backbones[variant]
        arr = dict(np.load(raw / f"{key}.npz"))
        level = "pipeline" if folder == "clips" else "pipeline+resample"
        tag = f"{variant} ({'antialias' if VARIANTS[variant] else 'no antialias'})"
        waves = []
        for cid in ref["ids"]:
            data, sr = sf.read(WORK / folder / f"{cid}.wav", dtype="float32", always_2d=True)
            x = derive_input(data, sr, SR, b.input_path)  # the suite's path: channel mean, librosa's soxr HQ
            waves.append(b.prepare(x))
        emb = np.stack([e["embedding"] for e in b.embed(waves)])
        inputs = b.last_inputs
        for i, cid in enumerate(ref["ids"]):
            wave = b.fit_clip(waves[i])
            same_wave = hashlib.sha256(wave.tobytes()).hexdigest() == ref["wave_sha"][i]
            rows.exact(
                "clap-fusion",
                level,
                f"{tag} {folder}/{cid} model waveform (peak, int16) sha256",
                0 if same_wave else 1,
                1,
            )
            starts = list(inputs[i].starts) if inputs[i].starts else []
            ok = inputs[i].longer == ref["longer"][i] and starts == ref["starts"][i]
            rows.exact(
                "clap-fusion",
                level,
                f"{tag} {folder}/{cid} longer={inputs[i].longer} chunk starts {starts}",
                0 if ok else 1,
                1,
            )
            rows.tensor(
                "clap-fusion",
                level,
                f"{tag} {folder}/{cid} mel_fusion (4, 1001, 64) dB",
                inputs[i].mel_fusion.numpy(),
                arr[f"{cid}__mel_fusion"],
            )
            rows.tensor(
                "clap-fusion", level, f"{tag} {folder}/{cid} audio embedding (512)", emb[i], arr[f"{cid}__embedding"]
            )
        texts = [caps[c] for c in ref["ids"]]
        ids = b.tokenize(texts)["input_ids"].numpy()
        rows.exact(
            "clap-fusion",
            "backbone",
            f"{tag} {folder} RoBERTa token ids",
            int((ids != arr["input_ids"]).sum()),
            ids.size,
        )
        temb = b.embed_text(texts)
        rows.tensor(
            "clap-fusion",
            "backbone",
            f"{tag} {folder} text embeddings ({len(texts)}, 512)",
            temb,
            arr["text_embedding"],
        )
        cos = (emb * temb).sum(1) / (np.linalg.norm(emb, axis=1) * np.linalg.norm(temb, axis=1))
        ref_cos = (arr["text_embedding"] * np.stack([arr[f"{c}__embedding"] for c in ref["ids"]])).sum(1)
        rows.tensor("clap-fusion", level, f"{tag} {folder} per-clip cosine ({len(texts)})", cos, ref_cos)
        rows.scalar(
            "clap-fusion",
            level,
            f"{tag} {folder} clap_score (stable-audio-metrics, {len(texts)} clips)",
            float(cos.mean()),
            ref["score"],
        )
    rows.print()
    v = info["versions"]
    intro = (
        f"LAION-CLAP fusion parity (benchmarks/parity/clap_fusion_parity.py): laion_clap {v['laion_clap']} "
        f"(torch {v['torch']}, torchvision {v['torchvision']} Python code, torchaudio {v['torchaudio']} Python "
        f"code, numpy {v['numpy']}, librosa {v['librosa']}, transformers {v['transformers']}), "
        f"stable-audio-metrics {info['stable_audio_metrics_commit'][:7]} `src/clap_score.py::clap_score`; shared "
        f"fixed-seed weights in `{CKPT_NAME}`. tv016 = Resize without antialiasing (torchvision 0.16, "
        f"stable-audio-metrics' pin), tv028 = the installed torchvision's antialiased default. rel = "
        f"max|ours-ref|/max|ref| (tensors), |ours-ref|/|ref| (scalars); pass = rel <= 1e-4."
    )
    (WORK / "RESULTS.clap_fusion.md").write_text(rows.markdown(intro))
    rows.save(WORK / "ours.json")
    print(f"wrote {WORK / 'RESULTS.clap_fusion.md'}; {sum(r.ok for r in rows)}/{len(rows)} pass")
    if not all(r.ok for r in rows):
        sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--side", choices=["all", "oracle", "ours"], default="all")
    ap.add_argument(
        "--oracle-python", default=os.environ.get("CLAP_ORACLE_PYTHON", "/work/oracles/clap-venv/bin/python")
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
