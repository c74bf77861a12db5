"""Parity oracle: run the *reference* tools on the fixture with fixed-seed weights.

Run in the ORACLE venv only (benchmarks/parity/setup_oracle.sh), after make_fixture.py:

    HF_HUB_OFFLINE=1 .oracle-venv/bin/python benchmarks/parity/oracle_side.py [--only NAME ...]

For each reference architecture it
  1. builds the model with torch.manual_seed(seed); calibrates the BatchNorm running
     statistics on a few fixture clips (a random deep CNN otherwise gives near-constant
     embeddings: FD ~ 1e-4, IS = 1.00); perturbs every norm layer's affine parameters so that
     loading mistakes cannot hide behind identities; for Cnn14 scales the AudioSet classifier
     so the logits spread (std 3 across clips) and IS/KL are informative;
  2. saves the weights in the official checkpoint file format and name under <root>/ckpt/;
  3. reloads them through the reference package's OWN loading code, checks every tensor
     came back, and computes the metrics with the reference code:
       cnn14   audioldm_eval EvaluationHelper.main(gen, ref) (its loaders, Cnn14 16 kHz,
               calculate_fid/isc/kl) -> FD (PANNs 2048), IS, KL softmax/sigmoid, KID
       vggish  the same call's FrechetAudioDistance (torchvggish via torch.hub, postprocess
               off, last ReLU removed) -> FAD
       laion_clap  laion_clap.CLAP_Module (HTSAT-base + RoBERTa, non-fusion):
               get_audio_embedding_from_data + get_text_embedding -> mean cosine
       ms_clap_2023 / ms_clap_2022  msclap.CLAP (HTSAT+GPT-2 / Cnn14+BERT):
               get_audio_embeddings(files) + get_text_embeddings -> mean cosine
  4. dumps the raw per-clip tensors (.npy/.npz) and writes <root>/oracle.json.

Offline neutralisation (this script only; documented in README.md):
  * sockets refuse to connect; os.system("wget ...") is refused;
  * torch.hub.load('harritaylor/torchvggish', 'vggish') imports the scratch copy's hubconf,
    and torch.hub.load_state_dict_from_url maps the two release URLs to our local files;
  * RoBERTa/BERT/BART/GPT-2 `from_pretrained(<hub id>)` -> the same architecture built from
    its published config with random weights; tokenizers -> tiny in-process BPE/WordPiece
    vocabularies saved under <root>/ckpt/tokenizers (the model weights are what is compared);
  * audioldm_eval.audio.stft.pad_center / librosa_mel_fn get keyword shims (librosa >= 0.10
    made their arguments keyword-only; only its PSNR/SSIM/LSD mel uses them);
  * audioldm_eval's LSD / PSNR / SSIM steps are skipped (LSD needs ssr_eval, which does not
    build; none of them is in our metric set);
  * msclap's random crop (clips longer than its 5 s / 7 s window) -> first-N-seconds crop.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_ROOT = REPO / "benchmarks" / ".work" / "parity"
TORCHVGGISH = REPO / "benchmarks" / ".work" / "torchvggish"
ALL = ["cnn14", "vggish", "laion_clap", "ms_clap_2023", "ms_clap_2022"]


# ----------------------------------------------------------------------------- offline guard
def _no_network():
    import socket

    def refuse(*a, **k):
        raise OSError("parity oracle: network access is disabled")

    socket.socket.connect = refuse
    socket.create_connection = refuse
    real_system = os.system

    def system(cmd):
        if "wget" in cmd or "curl" in cmd:
            raise OSError(f"parity oracle: refused shell download: {cmd}")
        return real_system(cmd)

    os.system = system


@contextlib.contextmanager
def chdir(p: Path):
    old = os.getcwd()
    os.chdir(p)
    try:
        yield
    finally:
        os.chdir(old)


def log(*a):
    print("[oracle]", *a, flush=True)


# ----------------------------------------------------------------------------- weights helpers
def calibrate_bn(model: torch.nn.Module, run) -> int:
    """Data-dependent BatchNorm statistics: with everything else in eval mode (no dropout, no
    SpecAugment), BN layers accumulate their cumulative mean/var over `run()` (momentum=None),
    as a trained network's running statistics would match its activations. Without this a
    deep random CNN collapses to near-constant embeddings (FD ~ 1e-4, IS = 1.00)."""
    model.eval()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        run()
    for m in bns:
        m.momentum = 0.1
    model.eval()
    return len(bns)


def perturb_norms(model: torch.nn.Module, seed: int, input_bn: dict | None = None, stats: bool = True) -> None:
    """Give every norm layer non-trivial affine parameters (and, with stats=True, running
    statistics), deterministically, so that loading mistakes cannot hide behind identities."""
    g = torch.Generator().manual_seed(seed + 777)
    input_bn = input_bn or {}
    names = dict(model.named_modules())
    for k in input_bn:
        assert k in names, f"no module {k!r} to set input statistics on"
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                if m.affine:
                    m.weight.copy_(0.5 + torch.rand(c, generator=g))
                    m.bias.copy_(0.1 * torch.randn(c, generator=g))
                if stats and m.track_running_stats:
                    mean, std = input_bn.get(name, (0.0, 1.0))
                    m.running_mean.copy_(mean + 0.1 * std * torch.randn(c, generator=g))
                    m.running_var.copy_((std**2) * (0.5 + 1.5 * torch.rand(c, generator=g)))
            elif isinstance(m, torch.nn.LayerNorm) and m.elementwise_affine:
                m.weight.copy_(0.8 + 0.4 * torch.rand(m.weight.shape, generator=g))
                if m.bias is not None:
                    m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))


def check_loaded(model: torch.nn.Module, saved: dict, prefix_strip: str = "") -> dict:
    """Every saved tensor that names a model tensor must have come back bit-exactly."""
    sd = model.state_dict()
    n_ok, bad, missing = 0, [], []
    for k, v in saved.items():
        kk = k[len(prefix_strip) :] if prefix_strip and k.startswith(prefix_strip) else k
        if kk not in sd:
            missing.append(kk)
            continue
        if sd[kk].shape != v.shape or not torch.equal(sd[kk].to(v.dtype), v):
            bad.append(kk)
        else:
            n_ok += 1
    not_in_ckpt = [k for k in sd if (prefix_strip + k) not in saved and k not in saved]
    res = {
        "tensors_equal": n_ok,
        "tensors_differ": bad,
        "ckpt_keys_not_in_model": missing,
        "model_keys_not_in_ckpt": not_in_ckpt,
    }
    if bad:
        raise RuntimeError(f"reference loader did not restore {len(bad)} tensors: {bad[:5]}")
    return res


def sha256(p: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return "sha256:" + h.hexdigest()


def files_of(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.suffix == ".wav")


# ----------------------------------------------------------------------------- tokenizers
def _bytes_to_unicode() -> list[tuple[int, str]]:
    """GPT-2's reversible byte -> printable-char table, in GPT-2 vocabulary order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [(b, chr(c)) for b, c in zip(bs, cs)]


def build_tokenizers(out: Path, texts: list[str]) -> dict:
    """Tiny byte-level BPE (RoBERTa / GPT-2 layouts) and WordPiece (BERT) vocabularies,
    trained in-process on the captions and saved with save_pretrained()."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BertTokenizer, GPT2Tokenizer, RobertaTokenizer

    out.mkdir(parents=True, exist_ok=True)
    corpus = texts * 4 + ["the sound of a dog barking and a man speaking in the distance"] * 2
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=700, min_frequency=2, special_tokens=[], show_progress=False)
    tmp = out / "_bpe"
    tmp.mkdir(exist_ok=True)
    bpe.save_model(str(tmp))
    merges = [
        ln
        for ln in (tmp / "merges.txt").read_text(encoding="utf-8").splitlines()
        if ln and not ln.startswith("#version")
    ]
    base = [ch for _, ch in _bytes_to_unicode()]
    merged = []
    seen = set(base)
    for m in merges:
        a, b = m.split(" ")
        if a + b not in seen:
            seen.add(a + b)
            merged.append(a + b)

    def write_bpe(d: Path, vocab_list: list[str]):
        d.mkdir(parents=True, exist_ok=True)
        (d / "vocab.json").write_text(
            json.dumps({t: i for i, t in enumerate(vocab_list)}, ensure_ascii=False), encoding="utf-8"
        )
        (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")

    info = {}
    # RoBERTa layout: <s>=0 <pad>=1 </s>=2 <unk>=3 (padding_idx 1 drives RoBERTa position ids)
    rdir = out / "roberta"
    write_bpe(rdir / "_src", ["<s>", "<pad>", "</s>", "<unk>"] + base + merged + ["<mask>"])
    rt = RobertaTokenizer(str(rdir / "_src" / "vocab.json"), str(rdir / "_src" / "merges.txt"))
    rt.save_pretrained(str(rdir))
    info["roberta"] = {"dir": str(rdir), "vocab_size": len(rt)}
    # GPT-2 layout: bytes first ('!' = 0, which msclap uses as pad), <|endoftext|> last
    gdir = out / "gpt2"
    write_bpe(gdir / "_src", base + merged + ["<|endoftext|>"])
    gt = GPT2Tokenizer(str(gdir / "_src" / "vocab.json"), str(gdir / "_src" / "merges.txt"))
    gt.save_pretrained(str(gdir))
    info["gpt2"] = {"dir": str(gdir), "vocab_size": len(gt), "eos_id": gt.eos_token_id}
    assert gt.convert_tokens_to_ids("!") == 0 and gt.eos_token_id != 0
    # BERT (uncased) WordPiece
    words = sorted({w for t in corpus for w in t.lower().replace(",", " , ").replace(".", " . ").split()})
    chars = sorted({c for t in corpus for c in t.lower() if not c.isspace()})
    vocab = (
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        + chars
        + ["##" + c for c in chars]
        + [w for w in words if w not in chars]
    )
    bdir = out / "bert"
    (bdir / "_src").mkdir(parents=True, exist_ok=True)
    (bdir / "_src" / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    bt = BertTokenizer(str(bdir / "_src" / "vocab.txt"), do_lower_case=True)
    bt.save_pretrained(str(bdir))
    info["bert"] = {"dir": str(bdir), "vocab_size": len(bt)}
    return info


# ----------------------------------------------------------------------------- HF model stand-ins
def hf_config(name: str):
    """Published configs of the hub text encoders (values as in their config.json)."""
    from transformers import BartConfig, BertConfig, GPT2Config, RobertaConfig

    if name == "roberta-base":
        return RobertaConfig(
            vocab_size=50265,
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            max_position_embeddings=514,
            type_vocab_size=1,
            layer_norm_eps=1e-5,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        )
    if name == "bert-base-uncased":
        return BertConfig(vocab_size=30522)  # defaults = bert-base-uncased
    if name == "gpt2":
        return GPT2Config()  # defaults = gpt2 (124M)
    if name == "facebook/bart-base":
        return BartConfig(
            d_model=768,
            encoder_layers=6,
            decoder_layers=6,
            encoder_attention_heads=12,
            decoder_attention_heads=12,
            encoder_ffn_dim=3072,
            decoder_ffn_dim=3072,
        )
    raise KeyError(name)


def patch_hf(tok_info: dict):
    """from_pretrained(<hub id>) -> random model of the published config / tiny tokenizer."""
    import transformers
    from transformers import AutoModel, AutoTokenizer

    real_auto_tok = AutoTokenizer.from_pretrained.__func__

    def model_from_pretrained(cls, name, *a, **k):
        if os.path.isdir(str(name)):
            raise RuntimeError("not expected")
        cfg = hf_config(name)
        target = cls if cls is not AutoModel else None
        m = AutoModel.from_config(cfg) if target is None else target(cfg)
        m.eval()
        log(f"  stand-in for {cls.__name__}.from_pretrained({name!r}): random {type(m).__name__}")
        return m

    tok_dir = {"roberta-base": "roberta", "facebook/bart-base": "roberta", "gpt2": "gpt2", "bert-base-uncased": "bert"}

    def tok_from_pretrained(cls, name, *a, **k):
        d = tok_info[tok_dir[str(name)]]["dir"] if str(name) in tok_dir else str(name)
        if cls is AutoTokenizer:
            return real_auto_tok(cls, d)
        return cls._from_pretrained_local(d)

    for cname in ["RobertaModel", "BertModel", "BartModel", "GPT2Model"]:
        c = getattr(transformers, cname)
        c.from_pretrained = classmethod(model_from_pretrained)
    AutoModel.from_pretrained = classmethod(model_from_pretrained)
    for cname in [
        "RobertaTokenizer",
        "BertTokenizer",
        "BartTokenizer",
        "GPT2Tokenizer",
        "RobertaTokenizerFast",
        "BertTokenizerFast",
        "GPT2TokenizerFast",
    ]:
        c = getattr(transformers, cname)
        if not hasattr(c, "_from_pretrained_local"):
            c._from_pretrained_local = c.from_pretrained
        c.from_pretrained = classmethod(tok_from_pretrained)
    AutoTokenizer.from_pretrained = classmethod(tok_from_pretrained)


# ----------------------------------------------------------------------------- VGGish (torch.hub)
def patch_torch_hub(ckpt_dir: Path):
    """torch.hub.load('harritaylor/torchvggish', 'vggish') -> scratch copy; weight URLs -> local."""
    if not (TORCHVGGISH / "hubconf.py").exists():
        raise FileNotFoundError(f"{TORCHVGGISH}: run setup_oracle.sh (torchvggish scratch copy)")

    def hub_load(repo, model, *a, **k):
        assert repo == "harritaylor/torchvggish" and model == "vggish", (repo, model)
        sys.path.insert(0, str(TORCHVGGISH))
        import hubconf  # the repository's own entry point

        return hubconf.vggish(*a, **k)

    def load_url(url, *a, **k):
        p = ckpt_dir / url.rsplit("/", 1)[-1]
        log(f"  torch.hub.load_state_dict_from_url({url.rsplit('/', 1)[-1]}) -> {p}")
        return torch.load(p, map_location="cpu", weights_only=False)

    torch.hub.load = hub_load
    torch.hub.load_state_dict_from_url = load_url


def make_vggish_weights(ckpt_dir: Path, seed: int) -> dict:
    sys.path.insert(0, str(TORCHVGGISH))
    from torchvggish.vggish import VGG, make_layers

    torch.manual_seed(seed)
    m = VGG(make_layers())
    # default init gives tiny activations after 4 conv blocks; a gain keeps embeddings O(1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                mod.weight.mul_(1.7)
                mod.bias.normal_(0, 0.02)
    sd = m.state_dict()
    p = ckpt_dir / "vggish-10086976.pth"
    torch.save(sd, p)
    g = torch.Generator().manual_seed(seed + 5)
    q, _ = torch.linalg.qr(torch.randn(128, 128, generator=g))
    torch.save(
        {"pca_eigen_vectors": q.numpy(), "pca_means": (0.1 * torch.randn(128, 1, generator=g)).numpy()},
        ckpt_dir / "vggish_pca_params-970ea276.pth",
    )
    return sd


# ----------------------------------------------------------------------------- reusable patches
# (also imported by benchmarks/parity/reference_timing.py, the timed reference run)
def patch_audioldm_eval_librosa() -> None:
    """librosa >= 0.10 made pad_center's size keyword-only; audioldm_eval calls it positionally
    in TacotronSTFT (used only by its PSNR/SSIM/LSD mel, which we skip). Keyword shims."""
    import audioldm_eval.audio.stft as aestft
    import librosa.filters
    import librosa.util

    aestft.pad_center = lambda data, size, **k: librosa.util.pad_center(data, size=size, **k)
    aestft.librosa_mel_fn = lambda sr, n_fft, n_mels, fmin, fmax, **k: librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, **k
    )


def audioldm_cwd_placeholder(work: Path) -> None:
    """audioldm_eval's Cnn14.__init__ wgets both PANNs files unless the 32 kHz one exists in
    ./ckpt; it only ever loads the 16 kHz one at sample_rate=16000: an empty placeholder stops
    the wget."""
    (work / "ckpt").mkdir(parents=True, exist_ok=True)
    (work / "ckpt" / "Cnn14_mAP=0.431.pth").touch()


def audioldm_cwd_link(work: Path, ck: Path) -> None:
    """Put the 16 kHz Cnn14 checkpoint where audioldm_eval looks for it (./ckpt/<name>)."""
    link = work / "ckpt" / ck.name
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(ck)


def msclap_first_crop(wrapper_module) -> None:
    """msclap crops clips longer than its window at random.randrange(...): patched to 0."""

    class _FirstCrop:
        @staticmethod
        def randrange(*a, **k):
            return 0

    wrapper_module.random = _FirstCrop


# ----------------------------------------------------------------------------- sections
def run_audioldm_eval(root: Path, ckpt_dir: Path, seed: int, out: dict, do_cnn14: bool, do_vggish: bool):
    import audioldm_eval
    from audioldm_eval.feature_extractors.panns import models as panns_models

    patch_audioldm_eval_librosa()

    work = root / "audioldm_cwd"
    audioldm_cwd_placeholder(work)
    ck = ckpt_dir / "Cnn14_16k_mAP=0.438.pth"

    # 1. random Cnn14 weights (constructor's own init under the seed)
    skip = object()
    real_load, real_lsd = torch.load, panns_models.Cnn14.load_state_dict
    torch.load = lambda *a, **k: {"model": skip}
    panns_models.Cnn14.load_state_dict = lambda self, sd, *a, **k: None if sd is skip else real_lsd(self, sd, *a, **k)
    try:
        with chdir(work):
            torch.manual_seed(seed)
            m = panns_models.Cnn14(
                features_list=["2048", "logits"],
                sample_rate=16000,
                window_size=512,
                hop_size=160,
                mel_bins=64,
                fmin=50,
                fmax=8000,
                classes_num=527,
            )
    finally:
        torch.load, panns_models.Cnn14.load_state_dict = real_load, real_lsd
    calib = [torch.from_numpy(sf.read(str(f), dtype="float32")[0])[None] for f in files_of(root / "gen")[:8]]
    calibrate_bn(m, lambda: [m(x) for x in calib])  # noqa: F821 (called here, before `del m` below)
    perturb_norms(m, seed, stats=False)
    with torch.no_grad():  # spread the logits (std 3 across clips) so IS/KL are not ~ trivial
        lg = torch.cat([m(x)["logits"] for x in calib])
        s = 3.0 / float((lg - lg.mean(0)).std())
        m.fc_audioset.weight.mul_(s)
        m.fc_audioset.bias.mul_(s)
    log(f"  Cnn14: BN calibrated on 8 gen clips, classifier scaled x{s:.1f}")
    cnn_sd = {k: v.clone() for k, v in m.state_dict().items()}
    torch.save({"model": cnn_sd, "iteration": 0}, ck)
    audioldm_cwd_link(work, ck)
    del m

    # 2. VGGish weights (always needed: EvaluationHelper builds FrechetAudioDistance)
    vgg_sd = make_vggish_weights(ckpt_dir, seed)
    patch_torch_hub(ckpt_dir)

    # 3. the reference evaluation, through its own entry point
    with chdir(work):
        helper = audioldm_eval.EvaluationHelper(
            16000, torch.device("cpu"), backbone="cnn14"
        )  # default MERT since 2024-09
    out.setdefault("checks", {})["cnn14_load"] = check_loaded(helper.mel_model, cnn_sd)
    vgg_model = helper.frechet.model
    # FrechetAudioDistance dropped the last ReLU: embeddings.4 is the last Linear, keys unchanged
    out["checks"]["vggish_load"] = check_loaded(vgg_model, vgg_sd)
    assert vgg_model.postprocess is False and len(vgg_model.embeddings) == 5

    captured = {"inputs": [], "feat": []}
    helper.mel_model.register_forward_hook(lambda mod, inp, o: captured["inputs"].append(inp[0].detach().clone()))
    real_gf = helper.get_featuresdict

    def get_featuresdict(loader):
        d = real_gf(loader)
        captured["feat"].append(d)
        return d

    helper.get_featuresdict = get_featuresdict
    helper.calculate_lsd = lambda *a, **k: {}
    helper.calculate_psnr_ssim = lambda *a, **k: {}
    fad_embs = []
    real_ge = helper.frechet.get_embeddings

    def get_embeddings(x, *a, **k):
        e = real_ge(x, *a, **k)
        fad_embs.append(e)
        return e

    helper.frechet.get_embeddings = get_embeddings
    gen, ref = root / "gen", root / "ref"
    t0 = time.time()
    with chdir(work), torch.no_grad():
        res = helper.main(str(gen), str(ref))
    log(f"audioldm_eval EvaluationHelper.main: {time.time() - t0:.1f} s")
    res = {k: float(v) for k, v in res.items()}

    raw = root / "raw"
    raw.mkdir(exist_ok=True)
    ref_d, gen_d = captured["feat"]  # calculate_metrics extracts the reference set first
    n_ref = len(ref_d["file_path_"])
    for tag, d, inputs in (("ref", ref_d, captured["inputs"][:n_ref]), ("gen", gen_d, captured["inputs"][n_ref:])):
        names = list(d["file_path_"])
        np.save(raw / f"cnn14_{tag}_embedding.npy", d["2048"].numpy())
        np.save(raw / f"cnn14_{tag}_logits.npy", d["logits"].numpy())
        np.savez(raw / f"cnn14_{tag}_inputs.npz", **{n: x[0].numpy() for n, x in zip(names, inputs)})
        (raw / f"cnn14_{tag}_names.json").write_text(json.dumps(names))
    if do_cnn14:
        out["cnn14"] = {
            "reference": "audioldm_eval 0.0.3 EvaluationHelper(16000).main(gen, ref); Cnn14 16 kHz, "
            "features '2048' (FD, KID) and 'logits' (IS, KL)",
            "checkpoint": str(ck),
            "checkpoint_sha256": sha256(ck),
            "weights": f"random seed={seed}; BN running stats calibrated on gen clips 0-7, BN affine perturbed; "
            "fc_audioset scaled for logit std 3",
            "n_gen": len(gen_d["file_path_"]),
            "n_ref": n_ref,
            "metrics": {
                k: res[k]
                for k in [
                    "frechet_distance",
                    "inception_score_mean",
                    "inception_score_std",
                    "kullback_leibler_divergence_softmax",
                    "kullback_leibler_divergence_sigmoid",
                    "kernel_inception_distance_mean",
                    "kernel_inception_distance_std",
                ]
            },
            "raw": {
                t: {
                    "embedding": f"raw/cnn14_{t}_embedding.npy",
                    "logits": f"raw/cnn14_{t}_logits.npy",
                    "inputs": f"raw/cnn14_{t}_inputs.npz",
                    "names": f"raw/cnn14_{t}_names.json",
                }
                for t in ("gen", "ref")
            },
            "loader": "torchaudio.load (stand-in: libsndfile float) -> first channel -> minus mean -> "
            "no resampling (16 kHz files) -> zero-pad to >= 32000 samples",
        }

    if do_vggish:
        # per-clip frames in sorted order with the reference's own loader and model
        sys.path.insert(0, str(TORCHVGGISH))
        from audioldm_eval.metrics.fad import load_audio_task
        from torchvggish import vggish_input

        for tag, d in (("gen", gen), ("ref", ref)):
            frames, examples = {}, {}
            for f in files_of(d):
                wav, sr = load_audio_task(str(f))
                with torch.no_grad():
                    frames[f.name] = vgg_model.forward(wav, sr).numpy()
                examples[f.name] = vggish_input.waveform_to_examples(wav, sr).detach().numpy()
            np.savez(raw / f"vggish_{tag}_frames.npz", **frames)
            np.savez(raw / f"vggish_{tag}_examples.npz", **examples)
        allg = np.concatenate(list(np.load(raw / "vggish_gen_frames.npz").values()))
        pooled_ok = fad_embs and np.allclose(np.sort(fad_embs[0], axis=0), np.sort(allg, axis=0), atol=0, rtol=0)
        vgg_ck = ckpt_dir / "vggish-10086976.pth"
        out["vggish"] = {
            "reference": "audioldm_eval 0.0.3 FrechetAudioDistance(use_pca=False, use_activation=False)"
            ".score(gen, ref) inside EvaluationHelper.main; torchvggish "
            + ((TORCHVGGISH / "COMMIT").read_text().strip() if (TORCHVGGISH / "COMMIT").exists() else ""),
            "checkpoint": str(vgg_ck),
            "checkpoint_sha256": sha256(vgg_ck),
            "weights": f"random seed={seed} (conv/linear x1.7, biases N(0, 0.02))",
            "metrics": {"frechet_audio_distance": res.get("frechet_audio_distance")},
            "n_frames_gen": int(sum(len(v) for v in fad_embs[0])) if fad_embs else None,
            "per_clip_frames_match_pooled": bool(pooled_ok),
            "raw": {
                t: {"frames": f"raw/vggish_{t}_frames.npz", "examples": f"raw/vggish_{t}_examples.npz"}
                for t in ("gen", "ref")
            },
            "loader": "soundfile int16 / 32768, no mean removal, no resampling (16 kHz files)",
        }


def run_laion_clap(root: Path, ckpt_dir: Path, seed: int, out: dict, tok: dict, amodel: str):
    patch_hf(tok)
    import laion_clap
    from laion_clap.training.data import float32_to_int16, get_audio_features, int16_to_float32

    torch.manual_seed(seed)
    t0 = time.time()
    m = laion_clap.CLAP_Module(enable_fusion=False, amodel=amodel, tmodel="roberta", device="cpu")
    calib = []
    for f in files_of(root / "gen_48k")[:4]:
        x = torch.from_numpy(sf.read(str(f), dtype="float32")[0])
        calib.append(
            get_audio_features(
                {},
                x,
                480000,
                data_truncating="rand_trunc",
                data_filling="repeatpad",
                audio_cfg=m.model_cfg["audio_cfg"],
            )
        )
    calibrate_bn(m.model.audio_branch, lambda: m.model.get_audio_embedding(calib))
    perturb_norms(m.model, seed, stats=False)
    sd = {k: v.clone() for k, v in m.model.state_dict().items()}
    # official LAION checkpoints were written by DDP (keys 'module.*') with an older transformers
    # that persisted RoBERTa's position_ids; laion_clap.load_state_dict deletes that key
    ck_sd = {"module." + k: v for k, v in sd.items()}
    ck_sd["module.text_branch.embeddings.position_ids"] = torch.arange(514).unsqueeze(0)
    name = "music_speech_audioset_epoch_15_esc_89.98.pt" if amodel == "HTSAT-base" else f"laion_clap_{amodel}.pt"
    ck = ckpt_dir / name
    torch.save({"epoch": 15, "state_dict": ck_sd}, ck)
    del m
    torch.manual_seed(seed + 1)  # a different init, so loading must do the work
    m = laion_clap.CLAP_Module(enable_fusion=False, amodel=amodel, tmodel="roberta", device="cpu")
    m.load_ckpt(str(ck), verbose=False)
    out.setdefault("checks", {})["laion_clap_load"] = check_loaded(m.model, sd)
    log(f"laion_clap built+loaded in {time.time() - t0:.1f} s")

    files = files_of(root / "gen_48k")
    caps = json.loads((root / "captions.json").read_text())
    texts = [caps[f.name] for f in files]
    waves = []
    for f in files:
        x, sr = sf.read(str(f), dtype="float32")
        assert sr == 48000
        waves.append(x)
    # the model input, exactly as get_audio_embedding_from_data prepares it (no crop: <= 10 s)
    inputs = []
    for x in waves:
        d = get_audio_features(
            {},
            torch.from_numpy(int16_to_float32(float32_to_int16(x))).float(),
            480000,
            data_truncating="rand_trunc",
            data_filling="repeatpad",
            audio_cfg=m.model_cfg["audio_cfg"],
        )
        assert not bool(d["longer"])
        inputs.append(d["waveform"].numpy())
    pre = {}
    m.model.audio_branch.register_forward_hook(
        lambda mod, i, o: pre.__setitem__("audio", o["embedding"].detach().clone())
    )
    m.model.text_branch.register_forward_hook(
        lambda mod, i, o: pre.__setitem__("text", o["pooler_output"].detach().clone())
    )
    t0 = time.time()
    with torch.no_grad():
        a = m.get_audio_embedding_from_data(waves, use_tensor=False)
        toks = m.tokenizer(texts)
        t = m.get_text_embedding(texts, use_tensor=False)
    log(f"laion_clap embeddings: {time.time() - t0:.1f} s")
    cos = (a * t).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(t, axis=1))
    raw = root / "raw"
    raw.mkdir(exist_ok=True)
    np.save(raw / "laion_audio_embedding.npy", a)
    np.save(raw / "laion_text_embedding.npy", t)
    np.save(raw / "laion_audio_branch_embedding.npy", pre["audio"].numpy())
    np.save(raw / "laion_text_pooler.npy", pre["text"].numpy())
    np.save(raw / "laion_input_ids.npy", toks["input_ids"].numpy())
    np.save(raw / "laion_attention_mask.npy", toks["attention_mask"].numpy())
    np.save(raw / "laion_inputs.npy", np.stack(inputs))
    out["laion_clap"] = {
        "reference": f"laion_clap 1.1.7 CLAP_Module(enable_fusion=False, amodel={amodel!r}, tmodel='roberta')"
        ".get_audio_embedding_from_data + get_text_embedding",
        "checkpoint": str(ck),
        "checkpoint_sha256": sha256(ck),
        "amodel": amodel,
        "weights": f"random seed={seed}; audio BN stats calibrated on gen_48k clips 0-3; norm affines "
        "perturbed; RoBERTa = roberta-base config, random",
        "tokenizer": tok["roberta"]["dir"],
        "names": [f.name for f in files],
        "texts": texts,
        "metrics": {"clap_score": float(cos.mean())},
        "per_clip_cosine": cos.tolist(),
        "raw": {
            "audio_embedding": "raw/laion_audio_embedding.npy",
            "text_embedding": "raw/laion_text_embedding.npy",
            "audio_branch_embedding": "raw/laion_audio_branch_embedding.npy",
            "text_pooler": "raw/laion_text_pooler.npy",
            "input_ids": "raw/laion_input_ids.npy",
            "attention_mask": "raw/laion_attention_mask.npy",
            "inputs": "raw/laion_inputs.npy",
        },
        "loader": "48 kHz files read as float32 (soundfile; librosa.load(sr=48000) gives the same samples "
        "for 48 kHz files) -> int16 round trip (x*32767 truncated, /32767) -> repeat-pad to 480000",
    }


def run_ms_clap(root: Path, ckpt_dir: Path, seed: int, out: dict, tok: dict, version: str):
    patch_hf(tok)
    import msclap  # noqa: F401

    W = sys.modules["msclap.CLAPWrapper"]
    from msclap.models.clap import CLAP

    msclap_first_crop(W)
    cfg = W.CLAPWrapper.read_config_as_args(
        None, (Path(W.__file__).parent / f"configs/config_{version}.yml").read_text(), is_config_str=True
    )
    torch.manual_seed(seed)
    t0 = time.time()
    m = CLAP(
        audioenc_name=cfg.audioenc_name,
        sample_rate=cfg.sampling_rate,
        window_size=cfg.window_size,
        hop_size=cfg.hop_size,
        mel_bins=cfg.mel_bins,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        classes_num=cfg.num_classes,
        out_emb=cfg.out_emb,
        text_model=cfg.text_model,
        transformer_embed_dim=cfg.transformer_embed_dim,
        d_proj=cfg.d_proj,
    )
    calib = []
    for f in files_of(root / "gen_44k")[:4]:
        x = torch.from_numpy(sf.read(str(f), dtype="float32")[0])
        n = int(cfg.duration * cfg.sampling_rate)
        calib.append(x.repeat(int(np.ceil(n / len(x))))[:n])
    calib = torch.stack(calib)
    calibrate_bn(m.audio_encoder, lambda: m.audio_encoder(calib))  # noqa: F821 (called here, before `del m`)
    perturb_norms(m, seed, stats=False)
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    ck_sd = dict(sd)
    if "bert" in cfg.text_model:  # older transformers persisted BERT's position_ids (as in the 2022 file)
        ck_sd["caption_encoder.base.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)
    ck = ckpt_dir / f"CLAP_weights_{version}.pth"
    torch.save({"model": ck_sd}, ck)
    del m
    torch.manual_seed(seed + 1)
    w = W.CLAPWrapper(model_fp=str(ck), version=version, use_cuda=False)
    out.setdefault("checks", {})[f"ms_clap_{version}_load"] = check_loaded(w.clap, sd)
    log(f"msclap {version} built+loaded in {time.time() - t0:.1f} s")

    files = files_of(root / "gen_44k")
    caps = json.loads((root / "captions.json").read_text())
    texts = [caps[f.name] for f in files]
    assert not any("!" in t for t in texts)  # msclap/GPT-2: '!' is the pad id 0
    pre = {}
    w.clap.audio_encoder.base.register_forward_hook(
        lambda mod, i, o: pre.__setitem__("audio", o["embedding"].detach().clone())
    )
    t0 = time.time()
    with torch.no_grad():
        inputs = w.preprocess_audio([str(f) for f in files], resample=True)
        a = w.get_audio_embeddings([str(f) for f in files], resample=True).numpy()
        ptxt = w.preprocess_text(texts)
        t = w.get_text_embeddings(texts).numpy()
    log(f"msclap {version} embeddings: {time.time() - t0:.1f} s")
    cos = (a * t).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(t, axis=1))
    raw = root / "raw"
    raw.mkdir(exist_ok=True)
    p = f"msclap{version}"
    np.save(raw / f"{p}_audio_embedding.npy", a)
    np.save(raw / f"{p}_text_embedding.npy", t)
    np.save(raw / f"{p}_audio_base_embedding.npy", pre["audio"].numpy())
    np.save(raw / f"{p}_inputs.npy", inputs.reshape(inputs.shape[0], -1).numpy())
    for k in w.token_keys:
        np.save(raw / f"{p}_{k}.npy", ptxt[k].numpy())
    out[f"ms_clap_{version}"] = {
        "reference": f"msclap 1.3.4 CLAP(version={version!r}).get_audio_embeddings(files) + get_text_embeddings",
        "checkpoint": str(ck),
        "checkpoint_sha256": sha256(ck),
        "weights": f"random seed={seed}; audio BN stats calibrated on gen_44k clips 0-3; norm affines "
        f"perturbed; text encoder = {cfg.text_model} config, random",
        "tokenizer": tok["gpt2" if "gpt" in cfg.text_model else "bert"]["dir"],
        "audio": {"sample_rate": cfg.sampling_rate, "duration_s": cfg.duration, "encoder": cfg.audioenc_name},
        "names": [f.name for f in files],
        "texts": texts,
        "metrics": {"clap_score": float(cos.mean())},
        "per_clip_cosine": cos.tolist(),
        "raw": {
            "audio_embedding": f"raw/{p}_audio_embedding.npy",
            "text_embedding": f"raw/{p}_text_embedding.npy",
            "audio_base_embedding": f"raw/{p}_audio_base_embedding.npy",
            "inputs": f"raw/{p}_inputs.npy",
            **{k: f"raw/{p}_{k}.npy" for k in w.token_keys},
        },
        "loader": f"torchaudio.load (stand-in: libsndfile float) of 44.1 kHz files, no resampling; clips shorter "
        f"than {cfg.duration} s repeated and cut, longer ones cropped to the FIRST {cfg.duration} s "
        "(msclap crops at random.randrange: patched to 0)",
        "text_preprocess": "gpt2: caption + ' <|endoftext|>', pad '!' (id 0) to 77"
        if "gpt" in cfg.text_model
        else "bert: [CLS] caption [SEP], pad to 100",
    }


# ----------------------------------------------------------------------------- self-test
def self_test() -> None:
    """Check the torchaudio stand-in's resampler on closed-form signals."""
    import torchaudio

    assert getattr(torchaudio, "IS_STANDIN", False)
    for sr_in, sr_out in ((48000, 16000), (44100, 16000), (16000, 48000), (32000, 16000)):
        n = sr_in * 2
        t = torch.arange(n, dtype=torch.float64) / sr_in
        x = torch.sin(2 * torch.pi * 1000 * t)
        y = torchaudio.functional.resample(x, sr_in, sr_out)
        assert y.shape[-1] == -(-n * sr_out // sr_in), (y.shape, n)
        ty = torch.arange(y.shape[-1], dtype=torch.float64) / sr_out
        ref = torch.sin(2 * torch.pi * 1000 * ty)
        mid = slice(200, -200)
        err = (y[mid] - ref[mid]).abs().max().item()
        assert err < 2e-3, (sr_in, sr_out, err)
        r = torchaudio.transforms.Resample(sr_in, sr_out)(x.float())
        assert (r.double() - y).abs().max().item() < 1e-5
        log(f"self-test resample {sr_in}->{sr_out}: max err vs analytic sine {err:.2e}")
    # an 7 kHz tone must vanish when going to 8 kHz (anti-aliasing)
    x = torch.sin(2 * torch.pi * 7000 * torch.arange(32000) / 16000.0)
    y = torchaudio.functional.resample(x, 16000, 8000)
    assert y[100:-100].abs().max() < 0.05, y.abs().max()
    log("self-test: ok")


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(DEFAULT_ROOT))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", choices=ALL, default=None)
    ap.add_argument("--laion-amodel", default="HTSAT-base", choices=["HTSAT-base", "HTSAT-tiny"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    _no_network()
    if a.self_test:
        self_test()
        return
    root = Path(a.root).resolve()
    if not (root / "captions.json").exists():
        sys.exit(f"{root}: no fixture; run benchmarks/parity/make_fixture.py first")
    ckpt = root / "ckpt"
    ckpt.mkdir(parents=True, exist_ok=True)
    oj = root / "oracle.json"
    out = json.loads(oj.read_text()) if oj.exists() else {}
    out["env"] = {"python": sys.version.split()[0], "torch": torch.__version__}
    for pkg in ["transformers", "audioldm-eval", "laion-clap", "msclap", "torchlibrosa", "librosa", "numpy", "scipy"]:
        from importlib.metadata import version

        out["env"][pkg] = version(pkg)
    out["seed"] = a.seed
    todo = a.only or ALL
    caps = json.loads((root / "captions.json").read_text())
    tok = build_tokenizers(ckpt / "tokenizers", [caps[k] for k in sorted(caps)])
    out["tokenizers"] = tok

    def save():
        oj.write_text(json.dumps(out, indent=1))

    if "cnn14" in todo or "vggish" in todo:
        run_audioldm_eval(root, ckpt, a.seed, out, "cnn14" in todo, "vggish" in todo)
        save()
    if "laion_clap" in todo:
        run_laion_clap(root, ckpt, a.seed, out, tok, a.laion_amodel)
        save()
    for v in ("2023", "2022"):
        if f"ms_clap_{v}" in todo:
            run_ms_clap(root, ckpt, a.seed, out, tok, v)
            save()
    save()
    log(f"wrote {oj}")
    for k in ALL:
        if k in out and "metrics" in out[k]:
            log(f"{k}: {out[k]['metrics']}")


if __name__ == "__main__":
    main()
