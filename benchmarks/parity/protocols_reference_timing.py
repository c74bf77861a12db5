"""Timed run of ONE reference toolkit of the stable-audio / av-benchmark / aesthetics protocols, as used.

Run in that toolkit's oracle venv only; launched once per tool by benchmarks/bench_protocols_vs_reference.py (which
times the whole process from the outside and runs the tools one after another). Reports per-stage wall times, the
metric values and the process's peak RSS as JSON. Imports nothing from bench / genau_core.

    PY=/work/oracles/<venv>/bin/python
    $PY benchmarks/parity/protocols_reference_timing.py --tool TOOL --gen DIR --ref DIR --captions captions.json \
        --ckpt NAME=PATH ... --tokenizers DIR --out out.json [--threads 2]

Tools (each decodes and resamples the files itself, with the shared fixed-seed weights of the parity scripts):
  sam-openl3  (openl3-venv) stable-audio-metrics `src/openl3_fd.py::openl3_fd(channels=2, samplingrate=44100,
              content_type="env", openl3_hop_size=0.5, batching=4)` (its audiocaps settings) with `openl3` bound to
              torchopenl3 1.0.1 (STAND-IN for the TensorFlow openl3 0.4.2, which does not install here; resampy
              resampling as openl3 does), weights `torchopenl3_mel256_env_512.pth.tar` from torch-hub's cache.
  sam-passt   (passt-venv) stable-audio-metrics `src/passt_kld.py::passt_kld(ids, gen, ref_path=ref, collect="mean")`,
              hear21passt 0.0.26 `get_basic_model(mode="logits")` loading `passt-s-f128-p16-s10-ap.476-swa.pt` from
              torch-hub's cache; `.cuda()` made a no-op (the code assumes a GPU).
  sam-clap    (clap-venv) stable-audio-metrics `src/clap_score.py::clap_score(id2text, gen,
              clap_model="630k-audioset-fusion-best.pt")`, laion_clap 1.1.4 (its pin), device forced to the CPU.
  avb         (avb-venv) hkchengrex/av-benchmark's own code from the mirror checkout (benchmarks/.work/av-benchmark):
              `extract_text.py::extract` (LAION-CLAP + MS-CLAP text features of a name,caption CSV into the gt cache),
              then `evaluate.py::main` with --audio_length 10 --skip_video_related --num_workers 0 and its default
              batch sizes (gt 1, pred 64): `av_bench/extract.py::extract` for gt and pred (PANNs, VGGish, PaSST; CLAP
              for pred), `av_bench/evaluate.py::evaluate`. The git forks it pins are replaced by laion-clap 1.1.7,
              hear21passt 0.0.26, msclap 1.3.4 (PyPI). ImageBind / pytorchvideo / Synchformer (video metrics, skipped
              by skip_video_related) are inert stand-ins: ExtractionModels() and evaluate() still BUILD ImageBind-huge
              and Synchformer in a real run, which this run does not pay for (the reference is faster here than it is).
  aes         (aes-venv) audiobox_aesthetics 0.0.4 `infer.py::main_predict([{"path": f}], checkpoint.pt,
              batch_size=--aes-batch)`
              (what its `audio-aes` CLI runs; main_predict's default batch 10, the CLI's 100), mean of each axis.

Offline neutralisations: sockets refuse to connect and `wget` is refused (oracle_side._no_network); torch.hub ->
local files; RoBERTa / GPT-2 `from_pretrained(<hub id>)` -> the published config with random weights (overwritten by
the checkpoint) and the tiny tokenizers of the parity oracle (oracle_side.patch_hf); msclap's random crop -> first
7 s (oracle_side.msclap_first_crop, the protocol's deterministic crop); torchaudio 2.11 (no `load` without
torchcodec) gets `load` bound to libsndfile (float32, the samples torchaudio returns).
"""

from __future__ import annotations

import time

T_START = time.perf_counter()  # before the heavy imports: import time is part of the run

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SAM_MIRROR = Path(os.environ.get("SAM_MIRROR", "/work/.mirror/Stability-AI+stable-audio-metrics/repo"))
AVB_CHECKOUT = REPO / "benchmarks" / ".work" / "av-benchmark"
sys.path.insert(0, str(HERE))

from _stages import STAGES, stage, timed  # noqa: E402

TOOLS = ("sam-openl3", "sam-passt", "sam-clap", "avb", "aes")


def sam_source(tmp: Path) -> tuple[Path, str]:
    """stable-audio-metrics' src/ at the mirror's HEAD, extracted to tmp/sam (git-ignored scratch)."""
    d = tmp / "sam"
    d.mkdir(parents=True, exist_ok=True)
    for name in ("openl3_fd.py", "passt_kld.py", "clap_score.py"):
        src = subprocess.run(
            ["git", "--git-dir", str(SAM_MIRROR), "show", f"HEAD:src/{name}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (d / name).write_text(src)
    commit = subprocess.run(
        ["git", "--git-dir", str(SAM_MIRROR), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    sys.path.insert(0, str(d))
    return d, commit


def torch_hub_cache(tmp: Path, ckpt: Path) -> None:
    """TORCH_HOME/hub/checkpoints/<file name> -> the shared weights (where the packages' loaders look)."""
    hub = tmp / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True, exist_ok=True)
    (hub / ckpt.name).symlink_to(ckpt)
    os.environ["TORCH_HOME"] = str(tmp / "torch_home")


def bind_torchaudio_load() -> None:
    """torchaudio 2.11 without torchcodec has no `load`: libsndfile, float32, (channels, frames) - its samples."""
    import numpy as np
    import soundfile as sf
    import torch
    import torchaudio

    def load(path, *a, **k):
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return torch.from_numpy(np.ascontiguousarray(data.T)), sr

    torchaudio.load = load


def cuda_noop() -> None:
    import torch

    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self


# ------------------------------------------------------------------------------------------- tools
def run_sam_openl3(a, tmp: Path, ck: dict) -> dict:
    with stage("import torchopenl3"):
        import torchopenl3
        import torchopenl3.core
    torch_hub_cache(tmp, ck["openl3"])
    _, commit = sam_source(tmp)

    def get_audio_embedding(audio, sr, model=None, verbose=True, hop_size=0.1, batch_size=32, center=True):
        emb, ts = torchopenl3.get_audio_embedding(
            audio, sr, model=model, hop_size=hop_size, batch_size=batch_size, center=center, verbose=verbose,
            sampler="resampy",
        )  # fmt: skip
        if isinstance(emb, list):
            return [e.cpu().numpy() for e in emb], ts
        return emb[0].cpu().numpy(), ts

    shim = types.ModuleType("openl3")  # stand-in for TF openl3 0.4.2: torchopenl3 with openl3's API
    shim.models = types.SimpleNamespace(
        load_audio_embedding_model=timed(
            "openl3: build + load checkpoint",
            lambda input_repr, content_type, embedding_size: torchopenl3.core.load_audio_embedding_model(
                input_repr, content_type, embedding_size
            ),
        )
    )
    shim.get_audio_embedding = timed("openl3: resample (resampy) + forward", get_audio_embedding)
    sys.modules["openl3"] = shim
    with stage("import stable-audio-metrics openl3_fd (librosa, soxr)"):
        import openl3_fd
    openl3_fd.librosa.load = timed("decode (librosa.load)", openl3_fd.librosa.load)
    openl3_fd.soxr.resample = timed("soxr to 44.1 kHz", openl3_fd.soxr.resample)
    with stage("openl3_fd total"), torch_no_grad():
        fd = openl3_fd.openl3_fd(
            channels=2, samplingrate=44100, content_type="env", openl3_hop_size=0.5,
            eval_path=str(a.gen), ref_path=str(a.ref), batching=4,
        )  # fmt: skip
    return {
        "metrics": {"FD_openl3": float(fd)},
        "versions": {"stable-audio-metrics": commit, **_versions("torchopenl3")},
    }


def run_sam_passt(a, tmp: Path, ck: dict) -> dict:
    with stage("import hear21passt"):
        import hear21passt.base  # noqa: F401
    torch_hub_cache(tmp, ck["passt"])
    cuda_noop()
    _, commit = sam_source(tmp)
    with stage("import stable-audio-metrics passt_kld (librosa, pyloudnorm)"):
        import passt_kld
    calls = {"n": 0}
    real = passt_kld.return_probabilities

    def return_probabilities(*x, **k):
        out = real(*x, **k)
        calls["n"] += 1
        return out

    passt_kld.return_probabilities = timed("decode (librosa 32 kHz) + PaSST windows", return_probabilities)
    passt_kld.get_basic_model = timed("PaSST: build + load checkpoint", passt_kld.get_basic_model)
    ids = sorted(p.stem for p in a.gen.glob("*.wav"))
    with stage("passt_kld total"):
        kl = passt_kld.passt_kld(ids, str(a.gen), ref_path=str(a.ref), collect="mean")
    if calls["n"] != 2 * len(ids):  # passt_kld prints and skips clips that raise
        raise SystemExit(f"passt_kld computed {calls['n']} of {2 * len(ids)} clips")
    return {
        "metrics": {"KL_passt": float(kl)},
        "versions": {"stable-audio-metrics": commit, **_versions("hear21passt")},
    }


def run_sam_clap(a, tmp: Path, ck: dict, caps: dict) -> dict:
    from oracle_side import patch_hf

    patch_hf(_tok_info(a))  # before the import: laion_clap.training.data loads a BERT tokenizer at import
    with stage("import laion_clap"):
        import laion_clap
    real_init = laion_clap.CLAP_Module.__init__

    def cpu_init(self, *x, **k):
        k["device"] = "cpu"  # clap_score asks for device='cuda'
        real_init(self, *x, **k)

    laion_clap.CLAP_Module.__init__ = timed("CLAP fusion: build (HTSAT-tiny + RoBERTa)", cpu_init)
    _, commit = sam_source(tmp)
    with stage("import stable-audio-metrics clap_score"):
        import clap_score
    clap_score.load_state_dict = timed("CLAP fusion: load checkpoint", clap_score.load_state_dict)
    clap_score.librosa.load = timed("decode (librosa.load 48 kHz)", clap_score.librosa.load)
    laion_clap.CLAP_Module.get_audio_embedding_from_data = timed(
        "CLAP fusion: audio forward", laion_clap.CLAP_Module.get_audio_embedding_from_data
    )
    laion_clap.CLAP_Module.get_text_embedding = timed(
        "CLAP fusion: text forward", laion_clap.CLAP_Module.get_text_embedding
    )
    cwd = tmp / "sam_cwd"
    (cwd / "load" / "clap_score").mkdir(parents=True)
    (cwd / "load" / "clap_score" / ck["clap_fusion"].name).symlink_to(ck["clap_fusion"])
    id2text = {Path(k).stem: v for k, v in sorted(caps.items())}
    os.chdir(cwd)  # clap_score reads load/clap_score/<file> relative to the working directory
    with stage("clap_score total"):
        score = clap_score.clap_score(
            id2text, str(a.gen), audio_files_extension=".wav", clap_model=ck["clap_fusion"].name
        )
    return {
        "metrics": {"CLAP_fusion": float(score)},
        "versions": {"stable-audio-metrics": commit, **_versions("laion_clap")},
    }


def _avb_standins(checkout: Path) -> None:
    """Inert stand-ins for av-benchmark's video-only imports (never called with skip_video_related)."""
    import torch

    class Inert(torch.nn.Module):
        def __init__(self, *a, **k):
            super().__init__()

        def load_state_dict(self, *a, **k):
            return None

        def forward(self, *a, **k):
            raise NotImplementedError("video metrics are out of scope (stand-in)")

    ib = types.ModuleType("imagebind")
    ib_models = types.ModuleType("imagebind.models")
    ib_model = types.ModuleType("imagebind.models.imagebind_model")
    ib_model.ModalityType = types.SimpleNamespace(AUDIO="audio", VISION="vision", TEXT="text")
    ib_model.imagebind_huge = lambda pretrained=False: Inert()
    ib.models, ib_models.imagebind_model = ib_models, ib_model
    pv = types.ModuleType("pytorchvideo")
    pv_data = types.ModuleType("pytorchvideo.data")
    pv_cs = types.ModuleType("pytorchvideo.data.clip_sampling")
    pv_cs.ConstantClipsPerVideoSampler = Inert
    sync = types.ModuleType("av_bench.synchformer.synchformer")
    sync.Synchformer = Inert
    sync.make_class_grid = lambda *a, **k: torch.zeros(0)
    for m in (ib, ib_models, ib_model, pv, pv_data, pv_cs, sync):
        sys.modules[m.__name__] = m
    weights = checkout / "weights"
    weights.mkdir(exist_ok=True)
    if not (weights / "synchformer_state_dict.pth").exists():  # torch.load'ed by ExtractionModels / evaluate
        torch.save({}, weights / "synchformer_state_dict.pth")


def run_avb(a, tmp: Path, ck: dict, caps: dict) -> dict:
    checkout = AVB_CHECKOUT
    if not (checkout / "av_bench" / "extract.py").exists():
        raise SystemExit(f"{checkout}: run benchmarks/parity/setup_av_benchmark_oracle.sh")
    with stage("import oracle_side (offline patches)"):
        import torch  # noqa: F401
        from oracle_side import msclap_first_crop, patch_hf, patch_torch_hub
    bind_torchaudio_load()
    cuda_noop()
    patch_hf(_tok_info(a))
    patch_torch_hub(ck["vggish"].parent)  # torch.hub.load('harritaylor/torchvggish') -> scratch copy + local file
    torch_hub_cache(tmp, ck["passt"])
    home = tmp / "home"  # av_bench's Cnn14 reads ~/.cache/audioldm_eval/ckpt/Cnn14_16k_mAP=0.438.pth
    (home / ".cache" / "audioldm_eval" / "ckpt").mkdir(parents=True)
    (home / ".cache" / "audioldm_eval" / "ckpt" / ck["cnn14"].name).symlink_to(ck["cnn14"])
    (home / ".cache" / "audioldm_eval" / "ckpt" / "Cnn14_mAP=0.431.pth").touch()  # else it wgets both files
    os.environ["HOME"] = str(home)
    weights = checkout / "weights"
    weights.mkdir(exist_ok=True)
    link = weights / ck["laion"].name
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(ck["laion"])
    _avb_standins(checkout)
    sys.path.insert(0, str(checkout))
    with stage("import av-benchmark (laion_clap, msclap, hear21passt, timm, torchaudio, torchvision)"):
        import msclap

        W = sys.modules["msclap.CLAPWrapper"]
        msclap_first_crop(W)
        real_msclap_init = W.CLAPWrapper.__init__

        def msclap_init(self, model_fp=None, version="2023", use_cuda=False):  # no hub download, CPU
            real_msclap_init(self, model_fp=str(ck["msclap"]), version=version, use_cuda=False)

        W.CLAPWrapper.__init__ = timed("MS-CLAP: build + load checkpoint", msclap_init)
        import av_bench.evaluate
        import av_bench.extract
        import extract_text
        from av_bench.extraction_models import ExtractionModels

        import evaluate as evaluate_main
    assert msclap.CLAP is W.CLAPWrapper
    # extract_text.py sits at the repository root but looks for parent.parent / "weights" (one folder above the
    # checkout; av_bench/extraction_models.py's parent.parent is the checkout): pointed at the checkout's weights/
    extract_text._clap_ckpt_path = link
    evaluate_main.device = "cpu"  # evaluate.py passes its module-level device='cuda' to extract()
    av_bench.evaluate.device = "cpu"
    ExtractionModels.__init__ = timed("ExtractionModels(): build + load PANNs, VGGish, PaSST, LAION, MS-CLAP",
                                      ExtractionModels.__init__)  # fmt: skip
    av_bench.extract.extract = timed("extract (gt, pred): decode, resample, forwards", av_bench.extract.extract)
    evaluate_main.extract = av_bench.extract.extract
    av_bench.evaluate.evaluate = timed("evaluate: metrics", av_bench.evaluate.evaluate)
    evaluate_main.evaluate = av_bench.evaluate.evaluate
    gt_cache, pred_cache = tmp / "gt_cache", tmp / "pred_cache"
    csv = tmp / "captions.csv"
    import pandas as pd

    pd.DataFrame([{"name": Path(k).stem, "caption": v} for k, v in sorted(caps.items())]).to_csv(csv, index=False)
    with stage("extract_text.py (LAION + MS-CLAP text features)"):
        extract_text.extract(types.SimpleNamespace(text_csv=csv, output_cache_path=gt_cache))
    args = types.SimpleNamespace(
        gt_audio=a.ref, gt_cache=gt_cache, pred_audio=a.gen, pred_cache=pred_cache, audio_length=10.0,
        num_workers=0, gt_batch_size=1, pred_batch_size=64, unpaired=False, skip_video_related=True,
        skip_clap=False, recompute_gt_cache=False, recompute_pred_cache=False,
    )  # fmt: skip
    with stage("evaluate.py main total"):
        evaluate_main.main(args)
    out = json.loads((pred_cache / "output_metrics.json").read_text())
    commit = (checkout / "COMMIT").read_text().strip() if (checkout / "COMMIT").exists() else "?"
    return {
        "metrics": {k: float(v) for k, v in out.items()},
        "versions": {"av-benchmark": commit, **_versions("laion_clap", "hear21passt", "msclap", "timm")},
    }


def run_aes(a, tmp: Path, ck: dict) -> dict:
    with stage("import audiobox_aesthetics"):
        from audiobox_aesthetics import infer
    bind_torchaudio_load()
    files = sorted(a.gen.glob("*.wav"))
    infer.AesPredictor.setup_model = timed("build WavLM + heads, load checkpoint", infer.AesPredictor.setup_model)
    with stage("main_predict total"):
        outputs = infer.main_predict([{"path": str(f)} for f in files], str(ck["aes"]), batch_size=a.aes_batch)
    scores = [json.loads(o) for o in outputs]
    axes = sorted(scores[0])
    return {
        "metrics": {ax: float(sum(s[ax] for s in scores) / len(scores)) for ax in axes},
        "versions": _versions("audiobox_aesthetics"),
    }


# ------------------------------------------------------------------------------------------- main
def torch_no_grad():
    import torch

    return torch.no_grad()


def _tok_info(a) -> dict:
    return {k: {"dir": str(Path(a.tokenizers) / k)} for k in ("roberta", "gpt2", "bert")}


def _versions(*names: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for n in ("torch", "torchaudio", "numpy", "librosa", *names):
        try:
            out[n] = version(n.replace("_", "-"))
        except PackageNotFoundError:
            with contextlib.suppress(PackageNotFoundError):
                out[n] = version(n)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", required=True, choices=TOOLS)
    ap.add_argument("--gen", required=True, type=Path)
    ap.add_argument("--ref", required=True, type=Path)
    ap.add_argument("--captions", required=True, help="JSON {file name: caption} for the generated clips")
    ap.add_argument("--ckpt", action="append", default=[], metavar="NAME=PATH", help="shared weight files")
    ap.add_argument("--tokenizers", required=True, help="the parity oracle's tiny tokenizers (roberta/, gpt2/)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--aes-batch", type=int, default=10)
    a = ap.parse_args(argv)
    a.gen, a.ref, a.tokenizers = a.gen.resolve(), a.ref.resolve(), str(Path(a.tokenizers).resolve())
    ck = {k: Path(v).resolve() for k, v in (s.split("=", 1) for s in a.ckpt)}
    caps = json.loads(Path(a.captions).read_text())
    with stage("import torch"):
        import torch

        torch.set_num_threads(a.threads)
    from oracle_side import _no_network

    _no_network()
    tmp = Path(tempfile.mkdtemp(prefix=f"protoref_{a.tool}_"))
    if a.tool == "sam-openl3":
        res = run_sam_openl3(a, tmp, ck)
    elif a.tool == "sam-passt":
        res = run_sam_passt(a, tmp, ck)
    elif a.tool == "sam-clap":
        res = run_sam_clap(a, tmp, ck, caps)
    elif a.tool == "avb":
        res = run_avb(a, tmp, ck, caps)
    else:
        res = run_aes(a, tmp, ck)
    res.update(
        tool=a.tool,
        seconds_in_process=time.perf_counter() - T_START,
        stages=STAGES,
        threads=torch.get_num_threads(),
        peak_rss_mb_self=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    Path(a.out).write_text(json.dumps(res, indent=1))  # then the interpreter's normal teardown, timed too


if __name__ == "__main__":
    main()
