"""audiobox-aesthetics parity: our backbone vs the audiobox_aesthetics 0.0.4 package, same weights, same files.

    bash benchmarks/parity/setup_clap_fusion_aesthetics_oracles.sh     # oracle venv (once)
    .venv/bin/python benchmarks/parity/aesthetics_parity.py [--oracle-python /work/oracles/aes-venv/bin/python]

Steps (everything under benchmarks/.work/parity_aesthetics/, git-ignored):
1. fixture (our venv): clips of 0.5-60 s at 8 / 16 / 44.1 / 48 kHz, mono and stereo (one window, several
   windows with a partial last one, resampling, stereo mixdown), and two raw 16 kHz windows with masks.
2. oracle (its venv, `--side oracle`): the package's own `AesMultiOutput` with the released configuration
   (one Linear head per axis, 13-layer weighted sum, normalised embedding) built with `torch.manual_seed(0)`,
   every norm's affine and the layer weights perturbed, head weights scaled (a default head gives near-constant
   scores); saved as `checkpoint.pt` ({"state_dict": {"model.*"}, "model_cfg", "target_transform"}) and loaded
   by `infer.py::main_predict(files, ckpt, batch_size=3)` - `AesPredictor.setup_model`'s strict load,
   `read_wav`, `audio_resample_mono`, `make_inference_batch`, the weighted window mean. torchaudio 2.11 has
   no `load` without torchcodec: it is bound to libsndfile for these float32 WAVs (same samples). Also the
   WavLM hidden states and the heads' z-scores on the raw windows.
3. ours (our venv): `AestheticsBackbone.load(file)`, the suite's input path (`derive_input`: channel mean,
   torchaudio's sinc resampler in plain torch), `embed` -> RESULTS.aesthetics.md.
Network access is refused on the oracle side (sockets raise).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
WORK = ROOT / "benchmarks" / ".work" / "parity_aesthetics"
CKPT_NAME = "checkpoint.pt"
AXES = ("CE", "CU", "PC", "PQ")
# id -> (seconds, rate, channels)
CLIPS = {
    "a10": (10.0, 16000, 1),
    "b25": (25.3, 16000, 1),
    "c12": (12.0, 44100, 2),
    "d03": (3.0, 48000, 2),
    "e05": (0.5, 8000, 1),
    "f60": (60.0, 16000, 1),
    "g07": (7.0, 22050, 1),
}
MODEL_CFG = {
    "proj_num_layer": 1,
    "proj_ln": False,
    "proj_act_fn": "gelu",
    "proj_dropout": 0,
    "nth_layer": 13,
    "use_weighted_layer_sum": True,
    "precision": "32",
    "normalize_embed": True,
    "output_dim": 1,
}
TARGET = {
    "CE": {"mean": 5.62, "std": 1.71},
    "CU": {"mean": 6.08, "std": 1.49},
    "PC": {"mean": 3.11, "std": 1.83},
    "PQ": {"mean": 6.77, "std": 1.22},
}


def _signal(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    x = 0.3 * np.sin(2 * np.pi * rng.uniform(80, min(3000, sr / 4)) * t)
    x += 0.2 * np.sin(2 * np.pi * rng.uniform(200, sr / 2.5) * t) * (np.sin(2 * np.pi * rng.uniform(0.2, 2) * t) > 0)
    x += rng.uniform(0.01, 0.1) * rng.standard_normal(n)
    return (x * rng.uniform(0.3, 0.9) / np.max(np.abs(x))).astype(np.float32)


def make_fixture() -> None:
    import soundfile as sf

    rng = np.random.default_rng(77)
    (WORK / "clips").mkdir(parents=True, exist_ok=True)
    for cid, (sec, sr, ch) in CLIPS.items():
        n = int(sec * sr)
        sf.write(
            WORK / "clips" / f"{cid}.wav",
            np.stack([_signal(rng, n, sr) for _ in range(ch)], axis=1),
            sr,
            subtype="FLOAT",
        )
    w = np.stack([_signal(rng, 160000, 16000) for _ in range(2)])
    valid = np.ones((2, 160000), bool)
    valid[1, 71234:] = False
    w[1, 71234:] = 0.0
    np.savez(WORK / "raw_windows.npz", wav=w, valid=valid)


# --------------------------------------------------------------------------------------------
# oracle side (runs in the audiobox-aesthetics venv; imports nothing from this repository)
# --------------------------------------------------------------------------------------------
def oracle() -> None:
    import socket

    def refuse(*a, **k):
        raise OSError("parity oracle: network access refused")

    socket.socket.connect = refuse
    socket.create_connection = refuse
    import soundfile as sf
    import torch
    import torchaudio
    from audiobox_aesthetics import infer
    from audiobox_aesthetics.model.aes import AesMultiOutput

    def load_wav(path, *a, **k):  # torchaudio.load(path) for a float32 WAV: (channels, frames), its rate
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return torch.from_numpy(np.ascontiguousarray(data.T)), sr

    torchaudio.load = load_wav
    torch.set_num_threads(2)
    raw = WORK / "oracle"
    raw.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = AesMultiOutput(**MODEL_CFG, target_transform=TARGET)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(
                ("layer_norm.weight", "layer_norm.bias", "conv_layers.0.2.weight", "conv_layers.0.2.bias")
            ):
                p.add_(0.2 * torch.randn(p.shape, generator=g))
            elif name.startswith("layer_weights."):
                p.copy_(torch.randn(p.shape, generator=g))
            elif name.endswith("grep_a"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
        for axis in AXES:
            model.proj_layer[axis][0].weight.mul_(30.0)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    (WORK / "ckpt").mkdir(exist_ok=True)
    ckpt = WORK / "ckpt" / CKPT_NAME
    torch.save(
        {
            "state_dict": {"model." + k: v for k, v in state.items()},
            "model_cfg": MODEL_CFG,
            "target_transform": TARGET,
            "epoch": 11,
        },
        ckpt,
    )
    # raw windows through the package's network (the same file, loaded by AesPredictor below)
    torch.manual_seed(123)  # a different init, so only the file can make the tensors equal
    files = sorted((WORK / "clips").glob("*.wav"))
    t0 = time.time()
    outputs = infer.main_predict([{"path": str(f)} for f in files], str(ckpt), batch_size=3)
    took = time.time() - t0
    scores = {f.stem: json.loads(o) for f, o in zip(files, outputs)}
    predictor = infer.initialize_predictor(str(ckpt))
    loaded = predictor.model.state_dict()
    bad = [k for k in state if k not in loaded or not torch.equal(loaded[k], state[k])]
    checks = {"n_tensors": len(state), "not_bit_exact": bad, "keys_equal": sorted(loaded) == sorted(state)}
    rw = np.load(WORK / "raw_windows.npz")
    wav, valid = torch.from_numpy(rw["wav"]), torch.from_numpy(rw["valid"])
    with torch.inference_mode():
        z = predictor.model({"wav": wav[:, None], "mask": valid[:, None]})
        (_, layers), frame_pad = predictor.model.wavlm_model.extract_features(
            source=wav, padding_mask=~valid, output_layer=13, ret_layer_results=True
        )
    out = {f"z_{a}": z[a].numpy() for a in AXES}
    out["hidden"] = torch.stack([h[0] for h in layers], dim=-1).transpose(0, 1).numpy()  # (B, T, C, 13)
    out["frame_padding"] = frame_pad.numpy()
    np.savez(raw / "raw_windows_out.npz", **out)
    from importlib.metadata import version

    info = {
        "checks": checks,
        "scores": scores,
        "seconds": took,
        "versions": {p: version(p) for p in ("audiobox_aesthetics", "torch", "torchaudio", "numpy")},
    }
    (raw / "oracle.json").write_text(json.dumps(info, indent=1))
    print(json.dumps({k: v for k, v in info.items() if k != "scores"}, indent=1))


# --------------------------------------------------------------------------------------------
# our side
# --------------------------------------------------------------------------------------------
def ours() -> None:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(HERE))
    import soundfile as sf
    import torch
    from _rows import Rows

    from bench.audio import derive_input
    from bench.metrics.backbones.aesthetics import AestheticsBackbone

    torch.set_num_threads(2)
    raw = WORK / "oracle"
    info = json.loads((raw / "oracle.json").read_text())
    rows = Rows()
    rows.exact(
        "aesthetics",
        "weights",
        "reference loader (AesPredictor.setup_model) vs saved file",
        len(info["checks"]["not_bit_exact"]) + (0 if info["checks"]["keys_equal"] else 1),
        info["checks"]["n_tensors"],
    )
    ckpt = WORK / "ckpt" / CKPT_NAME
    b = AestheticsBackbone(batch_size=2).load(ckpt)
    file_state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    mine = b.state_dict_official()
    n_bad = sum(1 for k in file_state if k not in mine or not torch.equal(mine[k], file_state[k]))
    n_bad += sum(1 for k in mine if k not in file_state)
    rows.exact("aesthetics", "weights", "our loader vs saved file (official keys)", n_bad, len(file_state))
    rw = np.load(WORK / "raw_windows.npz")
    ref = dict(np.load(raw / "raw_windows_out.npz"))
    wav, valid = torch.from_numpy(rw["wav"]), torch.from_numpy(rw["valid"])
    with torch.inference_mode():
        states, padding = b.model.wavlm_model(wav, valid)
        z = b.model(wav, valid)
    hidden = torch.stack(states, dim=-1).numpy()
    rows.exact(
        "aesthetics",
        "backbone",
        "frame padding mask (2, 499), window 2 valid to sample 71234",
        int((padding.numpy() != ref["frame_padding"]).sum()),
        padding.numel(),
    )
    for layer in (0, 6, 12):
        rows.tensor(
            "aesthetics",
            "backbone",
            f"hidden state {layer} (2, 499, 768)",
            hidden[..., layer],
            ref["hidden"][..., layer],
        )
    for a in AXES:
        rows.tensor("aesthetics", "backbone", f"{a} z-score of the 2 raw windows", z[a].numpy(), ref[f"z_{a}"])
    for cid in sorted(CLIPS):
        data, sr = sf.read(WORK / "clips" / f"{cid}.wav", dtype="float32", always_2d=True)
        x = derive_input(data, sr, b.sample_rate, b.input_path)
        out = b.embed([x])[0]
        sec, rate, ch = CLIPS[cid]
        level = "pipeline" if rate == 16000 else "pipeline+resample"
        for a in AXES:
            rows.scalar(
                "aesthetics", level, f"{cid} ({sec:g} s, {rate} Hz, {ch} ch) {a}", float(out[a]), info["scores"][cid][a]
            )
    rows.print()
    v = info["versions"]
    intro = (
        f"audiobox-aesthetics parity (benchmarks/parity/aesthetics_parity.py): audiobox_aesthetics "
        f"{v['audiobox_aesthetics']} `infer.py::main_predict` (torch {v['torch']}, torchaudio {v['torchaudio']} "
        f"Python code, numpy {v['numpy']}); shared fixed-seed weights in `{CKPT_NAME}`. rel = max|ours-ref|/"
        f"max|ref| (tensors), |ours-ref|/|ref| (scalars); pass = rel <= 1e-4."
    )
    (WORK / "RESULTS.aesthetics.md").write_text(rows.markdown(intro))
    rows.save(WORK / "ours.json")
    print(f"wrote {WORK / 'RESULTS.aesthetics.md'}; {sum(r.ok for r in rows)}/{len(rows)} pass")
    if not all(r.ok for r in rows):
        sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--side", choices=["all", "oracle", "ours"], default="all")
    ap.add_argument("--oracle-python", default=os.environ.get("AES_ORACLE_PYTHON", "/work/oracles/aes-venv/bin/python"))
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
