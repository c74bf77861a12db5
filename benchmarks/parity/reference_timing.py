"""Timed run of the reference tools, one after another, as a researcher runs them today.

Run in the ORACLE venv only; launched by benchmarks/bench_vs_reference.py (which times the
whole process from the outside). It reports per-stage wall times, the metric values and the
process's peak RSS as JSON:

    .oracle-venv/bin/python benchmarks/parity/reference_timing.py --gen DIR --ref DIR \
        --captions captions.json --ckpt-dir benchmarks/.work/parity/ckpt --out ref.json

The three tools, each decoding and resampling the files itself:
  1. audioldm_eval 0.0.3 `EvaluationHelper(16000).main(gen, ref)`: its WaveDataset loader
     (torchaudio.load, minus mean, torchaudio sinc resample to 16 kHz), Cnn14 16 kHz one clip at a
     time -> FD, IS, KL (softmax, sigmoid), KID; its FrechetAudioDistance (soundfile int16,
     resampy to 16 kHz, torchvggish, no PCA, last ReLU removed) -> FAD. LSD/PSNR/SSIM are
     skipped (not in our metric set; LSD's ssr_eval does not build) - that only makes the
     reference faster.
  2. laion_clap 1.1.7 `CLAP_Module(enable_fusion=False, amodel="HTSAT-base", tmodel="roberta")`
     + `load_ckpt(music_speech_audioset_epoch_15_esc_89.98.pt)`; the README's recipe:
     `librosa.load(f, sr=48000)` per generated file, `get_audio_embedding_from_data` (in chunks
     of --laion-batch clips, under torch.no_grad) and `get_text_embedding(captions)`
     -> CLAP_LAION = mean cosine.
  3. msclap 1.3.4 `CLAP(model_fp=CLAP_weights_2023.pth, version="2023")`:
     `get_audio_embeddings(files, resample=True)` (torchaudio.load + torchaudio Resample to
     44.1 kHz, all clips in one batch) and `get_text_embeddings(captions)` -> CLAP_MS.

The offline neutralisations are imported from oracle_side.py (not copied): no sockets / wget;
torch.hub -> the scratch torchvggish copy + local weight files; `from_pretrained(<hub id>)` of
RoBERTa / GPT-2 -> the published config built with random weights (then overwritten by the CLAP
checkpoint, as a real run overwrites the downloaded weights) and the tiny tokenizers under
ckpt/tokenizers; audioldm_eval's librosa keyword shims; msclap's random crop -> first 7 s.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()  # before the heavy imports: import time is part of the run

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _stages import STAGES, stage, timed  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen", required=True)
    ap.add_argument("--ref", required=True)
    ap.add_argument("--captions", required=True, help="JSON {file name: caption} for the generated clips")
    ap.add_argument("--ckpt-dir", required=True, help="the checkpoints oracle_side.py saved (+ tokenizers/)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--laion-batch", type=int, default=16)
    a = ap.parse_args(argv)

    with stage("import torch + numpy"):
        import numpy as np
        import torch

        torch.set_num_threads(a.threads)
        from oracle_side import (  # the oracle's own offline neutralisations
            _no_network,
            audioldm_cwd_link,
            audioldm_cwd_placeholder,
            chdir,
            msclap_first_crop,
            patch_audioldm_eval_librosa,
            patch_hf,
            patch_torch_hub,
        )
    _no_network()
    gen, ref, ckpt = Path(a.gen).resolve(), Path(a.ref).resolve(), Path(a.ckpt_dir).resolve()
    caps = json.loads(Path(a.captions).read_text())
    tok_info = {k: {"dir": str(ckpt / "tokenizers" / k)} for k in ("roberta", "gpt2", "bert")}
    gen_files = sorted(p for p in gen.iterdir() if p.suffix == ".wav")
    texts = [caps[p.name] for p in gen_files]
    metrics: dict[str, float] = {}

    # ------------------------------------------------------------------ 1. audioldm_eval
    with stage("audioldm_eval: import"):
        import audioldm_eval

        patch_audioldm_eval_librosa()
    patch_torch_hub(ckpt)
    work = Path(tempfile.mkdtemp(prefix="audioldm_cwd_"))
    audioldm_cwd_placeholder(work)
    audioldm_cwd_link(work, ckpt / "Cnn14_16k_mAP=0.438.pth")
    with stage("audioldm_eval: build Cnn14 + VGGish, load checkpoints"), chdir(work):
        helper = audioldm_eval.EvaluationHelper(
            16000, torch.device("cpu"), backbone="cnn14"
        )  # default MERT since 2024-09
    helper.calculate_lsd = lambda *x, **k: {}  # not in our metric set (ssr_eval does not build)
    helper.calculate_psnr_ssim = lambda *x, **k: {}
    helper.get_featuresdict = timed("audioldm_eval: Cnn14 decode+resample+forward (gen+ref)", helper.get_featuresdict)
    helper.frechet.score = timed("audioldm_eval: VGGish FAD decode+resample+forward+FD", helper.frechet.score)
    t0 = time.perf_counter()
    with chdir(work), torch.no_grad():
        res = helper.main(str(gen), str(ref))
    total_main = time.perf_counter() - t0
    STAGES["audioldm_eval: metric math (FD, IS, KL, KID) + bookkeeping"] = total_main - sum(
        v for k, v in STAGES.items() if k.startswith("audioldm_eval: Cnn14") or k.startswith("audioldm_eval: VGGish")
    )
    for k in (
        "frechet_distance",
        "inception_score_mean",
        "kullback_leibler_divergence_softmax",
        "kullback_leibler_divergence_sigmoid",
        "frechet_audio_distance",
        "kernel_inception_distance_mean",
    ):
        metrics[k] = float(res[k])
    del helper

    # ------------------------------------------------------------------ 2. laion_clap
    patch_hf(tok_info)
    with stage("laion_clap: import"):
        import laion_clap
        import librosa
    with stage("laion_clap: build HTSAT-base + RoBERTa, load_ckpt"):
        m = laion_clap.CLAP_Module(enable_fusion=False, amodel="HTSAT-base", tmodel="roberta", device="cpu")
        m.load_ckpt(str(ckpt / "music_speech_audioset_epoch_15_esc_89.98.pt"), verbose=False)
    with stage("laion_clap: librosa.load(sr=48000)"):
        waves = [librosa.load(str(f), sr=48000)[0] for f in gen_files]
    with stage("laion_clap: audio forward"), torch.no_grad():
        emb = [
            m.get_audio_embedding_from_data(waves[i : i + a.laion_batch], use_tensor=False)
            for i in range(0, len(waves), a.laion_batch)
        ]
        audio = np.concatenate(emb)
    with stage("laion_clap: text forward"), torch.no_grad():
        text = m.get_text_embedding(texts, use_tensor=False)
    cos = (audio * text).sum(1) / (np.linalg.norm(audio, axis=1) * np.linalg.norm(text, axis=1))
    metrics["clap_laion"] = float(cos.mean())
    del m, waves

    # ------------------------------------------------------------------ 3. msclap
    with stage("msclap: import"):
        import msclap  # noqa: F401

        W = sys.modules["msclap.CLAPWrapper"]
        msclap_first_crop(W)
    with stage("msclap: build HTSAT + GPT-2, load checkpoint"):
        w = W.CLAPWrapper(model_fp=str(ckpt / "CLAP_weights_2023.pth"), version="2023", use_cuda=False)
    with stage("msclap: decode+resample+audio forward"), torch.no_grad():
        audio = w.get_audio_embeddings([str(f) for f in gen_files], resample=True).numpy()
    with stage("msclap: text forward"), torch.no_grad():
        text = w.get_text_embeddings(texts).numpy()
    cos = (audio * text).sum(1) / (np.linalg.norm(audio, axis=1) * np.linalg.norm(text, axis=1))
    metrics["clap_ms"] = float(cos.mean())

    out = {
        "side": "reference",
        "seconds_in_process": time.perf_counter() - T_START,
        "stages": STAGES,
        "metrics": metrics,
        "n_gen": len(gen_files),
        "threads": torch.get_num_threads(),
        "peak_rss_mb_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    Path(a.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
