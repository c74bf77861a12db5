"""OpenL3 parity: our backbone vs torchopenl3 1.0.1 driven by stable-audio-metrics' own FD code, same weights.

    bash benchmarks/parity/setup_passt_openl3_oracles.sh          # oracle venvs (once)
    .venv/bin/python benchmarks/parity/openl3_parity.py [--oracle-python /work/oracles/openl3-venv/bin/python]

The original OpenL3 (marl/openl3 0.4.2) does not run here: its setup.py downloads the Keras weight
files from GitHub at install time, and its kapre 0.3 front end needs the tf.keras 2 API (the only
TensorFlow on PyPI for this Python, 2.21, ships Keras 3). The comparison therefore uses torchopenl3,
the PyTorch port with converted weights that our loader reads, in place of the TensorFlow network,
with everything around it from stable-audio-metrics' code.

Steps (under benchmarks/.work/parity_openl3/, git-ignored):
1. fixture (our venv): clips at 44.1 kHz stereo, 48 kHz stereo, 16 kHz mono and a 0.7-s 22.05 kHz stereo
   clip, in gen/ and ref/, plus raw 1-s windows.
2. oracle (`--side oracle`, torchopenl3 venv): torchopenl3's constructor `PytorchOpenl3("env", "mel256", 512)`
   with `torch.manual_seed(0)`, BatchNorm statistics calibrated on fixture windows and affines perturbed,
   the stored mel matrix scaled by 1 + U(0, 0.05) per entry (so only a loader that uses the file's
   front-end tensors can match), saved as `torchopenl3_mel256_env_512.pth.tar` in torch-hub's cache and
   loaded by `torchopenl3.core.load_audio_embedding_model` (strict). Then: front end and embeddings of
   the raw windows (`forward(keep_all_outputs=True)`); stable-audio-metrics `src/openl3_fd.py`
   (mirror HEAD) `extract_embeddings(..., channels=2, samplingrate=44100, content_type="env",
   openl3_hop_size=0.5, batch_size=4)` per file and `openl3_fd(...)` for the FD, with `openl3` bound to
   a shim that calls `torchopenl3.get_audio_embedding(..., center=True, sampler="resampy")`.
3. ours: `OpenL3Backbone.load(file)`, `stable_audio_metrics_openl3_input` + `embed`, our `frechet_distance`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "benchmarks" / ".work" / "parity_openl3"
CKPT_NAME = "torchopenl3_mel256_env_512.pth.tar"
SAM_MIRROR = Path("/work/.mirror/Stability-AI+stable-audio-metrics/repo")
# id -> (seconds, sample rate, channels)
CLIPS = {"a44": (6.0, 44100, 2), "b48": (4.3, 48000, 2), "c16": (3.2, 16000, 1), "d22": (0.7, 22050, 2)}


def _signal(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t * (1 + 0.5 * t))
    x += 0.2 * np.sin(2 * np.pi * rng.uniform(2000, 0.4 * sr) * t) * (np.sin(2 * np.pi * rng.uniform(0.5, 3) * t) > 0)
    x += rng.uniform(0.01, 0.08) * rng.standard_normal(n)
    return (x * rng.uniform(0.2, 0.9) / np.max(np.abs(x))).astype(np.float32)


def make_fixture() -> None:
    import soundfile as sf

    rng = np.random.default_rng(77)
    for side in ("gen", "ref"):
        (WORK / side).mkdir(parents=True, exist_ok=True)
        for cid, (sec, sr, ch) in CLIPS.items():
            x = np.stack([_signal(rng, int(sec * sr), sr) for _ in range(ch)], axis=1)
            sf.write(WORK / side / f"{cid}.wav", x, sr, subtype="FLOAT")
    np.save(WORK / "raw_windows.npy", np.stack([_signal(rng, 48000, 48000) for _ in range(6)]))


# --------------------------------------------------------------------------------------------
# oracle side (torchopenl3 venv)
# --------------------------------------------------------------------------------------------
def oracle() -> None:
    import socket

    def refuse(*a, **k):
        raise OSError("parity oracle: network access refused")

    socket.socket.connect = refuse
    os.environ["TORCH_HOME"] = str(WORK / "torch_home")
    import torch
    import torchopenl3
    import torchopenl3.core
    from torchopenl3.models import PytorchOpenl3

    torch.set_num_threads(2)
    raw = WORK / "oracle"
    raw.mkdir(parents=True, exist_ok=True)
    windows = torch.from_numpy(np.load(WORK / "raw_windows.npy")).unsqueeze(1)
    # 1. weights
    torch.manual_seed(0)
    model = PytorchOpenl3(content_type="env", input_repr="mel256", embedding_size=512)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None  # cumulative: running stats = the calibration batch's statistics
        model.train()
        model(windows)
        model.eval()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.mul_(1 + 0.3 * torch.rand(m.weight.shape, generator=g))
                m.bias.add_(0.1 * torch.randn(m.bias.shape, generator=g))
        mel = model.speclayer.mel_basis
        mel.mul_(1 + 0.05 * torch.rand(mel.shape, generator=g))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    (WORK / "ckpt").mkdir(exist_ok=True)
    torch.save(state, WORK / "ckpt" / CKPT_NAME)
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    hub.mkdir(parents=True, exist_ok=True)
    shutil.copy(WORK / "ckpt" / CKPT_NAME, hub / CKPT_NAME)
    # 2. the package's loader
    torch.manual_seed(321)
    ref_model = torchopenl3.core.load_audio_embedding_model("mel256", "env", 512)
    loaded = ref_model.state_dict()
    checks = {
        "n_tensors": len(state),
        "keys_equal": sorted(loaded) == sorted(state),
        "not_bit_exact": [k for k in state if not torch.equal(loaded[k], state[k])],
    }
    # 3. raw windows
    with torch.no_grad():
        outs = ref_model(windows, keep_all_outputs=True)
    np.savez(raw / "raw.npz", mel_db=outs[0].numpy(), embedding=outs[-1].numpy())
    # 4. stable-audio-metrics' own code with `openl3` bound to torchopenl3
    sam_dir = WORK / "sam"
    sam_dir.mkdir(exist_ok=True)
    src = subprocess.run(
        ["git", "-C", str(SAM_MIRROR), "show", "HEAD:src/openl3_fd.py"], check=True, capture_output=True, text=True
    ).stdout
    (sam_dir / "openl3_fd.py").write_text(src)
    sam_commit = subprocess.run(
        ["git", "-C", str(SAM_MIRROR), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()

    def get_audio_embedding(audio, sr, model=None, verbose=True, hop_size=0.1, batch_size=32, center=True):
        emb, ts = torchopenl3.get_audio_embedding(
            audio,
            sr,
            model=model,
            hop_size=hop_size,
            batch_size=batch_size,
            center=center,
            verbose=verbose,
            sampler="resampy",
        )
        if isinstance(emb, list):
            return [e.cpu().numpy() for e in emb], ts
        return emb[0].cpu().numpy(), ts

    shim = types.ModuleType("openl3")
    shim.models = types.SimpleNamespace(
        load_audio_embedding_model=lambda input_repr, content_type, embedding_size: (
            torchopenl3.core.load_audio_embedding_model(input_repr, content_type, embedding_size)
        )
    )
    shim.get_audio_embedding = get_audio_embedding
    sys.modules["openl3"] = shim
    sys.path.insert(0, str(sam_dir))
    import openl3_fd

    frames = {}
    for side in ("gen", "ref"):
        for f in sorted((WORK / side).glob("*.wav")):
            emb = openl3_fd.extract_embeddings(str(f), 2, 44100, "env", 0.5, batch_size=4)
            frames[f"{side}__{f.stem}"] = np.stack(emb)
    np.savez(raw / "sam_frames.npz", **frames)
    cwd = os.getcwd()
    os.chdir(sam_dir)  # openl3_fd writes load/openl3_fd/*.npz relative to the working directory
    try:
        fd = float(
            openl3_fd.openl3_fd(
                channels=2,
                samplingrate=44100,
                content_type="env",
                openl3_hop_size=0.5,
                eval_path=str(WORK / "gen"),
                ref_path=str(WORK / "ref"),
                batching=4,
            )
        )
    finally:
        os.chdir(cwd)
    import resampy

    info = {
        "checks": checks,
        "fd": fd,
        "stable_audio_metrics_commit": sam_commit,
        "versions": {
            "torchopenl3": torchopenl3.__version__,
            "torch": torch.__version__,
            "resampy": resampy.__version__,
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

    from bench.metrics.backbones.openl3 import OpenL3Backbone, stable_audio_metrics_openl3_input
    from bench.metrics.functional import frechet_distance

    torch.set_num_threads(2)
    raw = WORK / "oracle"
    info = json.loads((raw / "oracle.json").read_text())
    rows = Rows()
    rows.exact(
        "openl3",
        "weights",
        "reference loader (torchopenl3 load_state_dict_from_url) vs saved file",
        len(info["checks"]["not_bit_exact"]) + (0 if info["checks"]["keys_equal"] else 1),
        info["checks"]["n_tensors"],
    )
    ckpt = WORK / "ckpt" / CKPT_NAME
    bb = OpenL3Backbone().load(ckpt)
    file_state = torch.load(ckpt, map_location="cpu", weights_only=True)
    mine = bb.state_dict_official()
    n_bad = sum(1 for k in file_state if k not in mine or not torch.equal(mine[k], file_state[k]))
    rows.exact(
        "openl3",
        "weights",
        "our loader vs saved file (incl. stored mel matrix)",
        n_bad + sum(1 for k in mine if k not in file_state),
        len(file_state),
    )
    ref = dict(np.load(raw / "raw.npz"))
    windows = np.load(WORK / "raw_windows.npy")
    with torch.inference_mode():
        mel = bb.model.speclayer(torch.from_numpy(windows).unsqueeze(1)).numpy()
    rows.tensor("openl3", "backbone", "front end: dB mel of 6 windows (1, 256, 199)", mel, ref["mel_db"])
    rows.tensor("openl3", "backbone", "embedding of 6 windows (512)", bb.embed_windows(windows), ref["embedding"])
    sam_ref = dict(np.load(raw / "sam_frames.npz"))
    pooled = {"gen": [], "ref": []}
    for side in ("gen", "ref"):
        for f in sorted((WORK / side).glob("*.wav")):
            data, sr = sf.read(f, dtype="float32", always_2d=True)
            x = data if data.shape[1] > 1 else data[:, 0]
            frames = bb.embed([stable_audio_metrics_openl3_input(x, sr)])[0]["frames"]
            pooled[side].append(frames)
            sec, rate, ch = CLIPS[f.stem]
            rows.tensor(
                "openl3",
                "pipeline",
                f"stable-audio-metrics frames {side}/{f.stem} ({sec} s, {rate} Hz, {'stereo' if ch == 2 else 'mono'})",
                frames,
                sam_ref[f"{side}__{f.stem}"],
            )
    fd = frechet_distance(np.concatenate(pooled["gen"]), np.concatenate(pooled["ref"]))
    rows.scalar("openl3", "pipeline", "stable-audio-metrics openl3_fd (4 vs 4 clips, all frames)", fd, info["fd"])
    rows.print()
    v = info["versions"]
    intro = (
        f"OpenL3 parity (benchmarks/parity/openl3_parity.py): torchopenl3 {v['torchopenl3']} (resampy "
        f"{v['resampy']}, torch {v['torch']}) in place of TensorFlow openl3 0.4.2 (not installable here), "
        f"driven by stable-audio-metrics {info['stable_audio_metrics_commit'][:7]} `src/openl3_fd.py` "
        f"(channels 2, 44.1 kHz, env, hop 0.5 s, batch 4); shared fixed-seed weights in `{CKPT_NAME}`. "
        "rel = max|ours-ref|/max|ref| (tensors), |ours-ref|/|ref| (scalars); pass = rel <= 1e-4."
    )
    (WORK / "RESULTS.openl3.md").write_text(rows.markdown(intro))
    rows.save(WORK / "ours.json")
    print(f"wrote {WORK / 'RESULTS.openl3.md'}; {sum(r.ok for r in rows)}/{len(rows)} pass")
    if not all(r.ok for r in rows):
        sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--side", choices=["all", "oracle", "ours"], default="all")
    ap.add_argument(
        "--oracle-python", default=os.environ.get("OPENL3_ORACLE_PYTHON", "/work/oracles/openl3-venv/bin/python")
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
