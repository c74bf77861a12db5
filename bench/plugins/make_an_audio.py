"""Make-An-Audio (Huang et al., ICML 2023), loaded from its released files, plus an offline tiny twin.

The network is ours (`genau_core.baselines.make_an_audio`): diffusers' `UNet2DConditionModel` and
`AutoencoderKL` filled through explicit key mappings from the LDM layout, our BigVGAN, and the
MS-CLAP 2022 BERT text branch of our CLAP backbone. See that module for what the official code does.

Files, in the layout of the official README (`useful_ckpts/`):

    <folder>/maa1_full.ckpt           diffusion + VAE + CLAP text weights (Google Drive link in the README)
    <folder>/bigvgan/args.yml         BigVGAN hyper-parameters
    <folder>/bigvgan/best_netG.pt     BigVGAN generator ({"generator": state_dict})
    tokenizer bert-base-uncased:      <folder>/bert-base-uncased/ (vocab.txt / tokenizer.json) or the
                                      Hugging Face cache (`huggingface-cli download bert-base-uncased`)

`--model-checkpoint make-an-audio=PATH` takes the folder or the `maa1_full.ckpt` file (the
BigVGAN folder is then looked for beside it); without it, `maa1_full.ckpt` is looked for in
$GENAU_BENCH_CHECKPOINTS and ~/.cache/genau-bench/checkpoints. CLAP_weights_2022.pth is not needed
for the released checkpoint: the official embedder reads it but never loads it, and the text weights
are in maa1_full.ckpt. Only a checkpoint without `cond_stage_model.*` (which the official loader,
strict=False, would accept with an untrained text projection) takes the CLAP text branch from
`<folder>/CLAP/CLAP_weights_2022.pth` or `<folder>/CLAP_weights_2022.pth`; the file's sha256 then
joins the checkpoint identity and the run records it (`text_encoders`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from bench.checkpoints import CheckpointNotFound, checkpoint_dirs, find_checkpoint, sha256_file
from bench.plugins._hub import cached_snapshot
from bench.plugins.base import InferenceSettings, PluginInfo, RandomWeightsTwin, SamplingModelPlugin

MAA1_SOURCE = "Text-to-Audio/Make-An-Audio README (Google Drive: maa1_full.ckpt, bigvgan/)"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "spiece.model")

# -- locating the released files -------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseFiles:
    checkpoint: Path
    vocoder_dir: Path
    tokenizers: dict  # tokenizer name -> folder
    # text encoder ("clap" / "t5") -> file or folder it can come from when the checkpoint lacks it
    text_sources: dict = field(default_factory=dict)


# text encoder -> the checkpoint key prefix that holds it (Make-An-Audio 1 has no "t5")
TEXT_PREFIXES = {"clap": "cond_stage_model.caption_encoder.", "t5": "cond_stage_model.t5_transformer."}


def find_text_sources(folder: Path, tokenizers: dict, kinds: Sequence[str]) -> dict:
    """Where the text encoders a checkpoint may lack could come from (see genau_core.baselines._common)."""
    from genau_core.baselines._common import CLAP_WEIGHTS_FILE, t5_weight_file

    found = {}
    if "clap" in kinds:
        clap = next((f for f in (folder / "CLAP" / CLAP_WEIGHTS_FILE, folder / CLAP_WEIGHTS_FILE) if f.is_file()), None)
        if clap is not None:
            found["clap"] = clap
    t5_dir = tokenizers.get("google/t5-v1_1-large")
    if "t5" in kinds and t5_dir is not None and t5_weight_file(t5_dir) is not None:
        found["t5"] = t5_dir
    return found


def text_sources_in_use(files: ReleaseFiles) -> dict:
    """The text sources the checkpoint needs (its own key prefix absent); reads the key names, memory-mapped."""
    if not files.text_sources:
        return {}
    from genau_core.baselines._state import read_checkpoint

    keys = list(read_checkpoint(files.checkpoint, what="checkpoint"))
    present = {kind for kind, prefix in TEXT_PREFIXES.items() if any(k.startswith(prefix) for k in keys)}
    return {kind: src for kind, src in files.text_sources.items() if kind not in present}


def _tokenizer_dir(folder: Path, hub_id: str) -> tuple[Path | None, str]:
    name = hub_id.split("/")[-1]
    for candidate in (folder / name, folder / "tokenizers" / name):
        if any((candidate / f).is_file() for f in TOKENIZER_FILES):
            return candidate, f"{hub_id} tokenizer from {candidate}"
    snap = cached_snapshot(hub_id)
    if snap is not None and any((snap / f).is_file() for f in TOKENIZER_FILES):
        return snap, f"{hub_id} tokenizer from the hub cache"
    return None, (
        f"tokenizer {hub_id} not found: put its files (tokenizer.json / vocab.txt / spiece.model, "
        "tokenizer_config.json) "
        f"in {folder / name}, or `huggingface-cli download {hub_id}` when online"
    )


def locate_release(
    checkpoint: str | None,
    filename: str,
    tokenizer_ids: Sequence[str],
    *,
    model: str,
    what: str,
    source: str,
    text_kinds: Sequence[str] = ("clap",),
) -> tuple[ReleaseFiles | None, str]:
    """(files or None, status naming what was found or what is missing)."""
    needs = f"{filename}, bigvgan/args.yml, bigvgan/best_netG.pt"
    try:
        if checkpoint is not None and Path(checkpoint).expanduser().is_dir():
            ckpt = find_checkpoint(filename, Path(checkpoint).expanduser() / filename, what=what)
        else:
            ckpt = find_checkpoint(filename, checkpoint, what=what, source=source)
    except CheckpointNotFound as e:
        if checkpoint is not None:
            return None, f"{e} (the folder needs {needs}; from {source})"
        where = " or ".join(str(d) for d in checkpoint_dirs())
        return None, (
            f"{what} {filename!r} not found in {where}: put the official folder ({needs}) there, or pass it with "
            f"--model-checkpoint {model}=FOLDER. Get the files from {source}"
        )
    folder = ckpt.parent
    vocoder_dir = folder / "bigvgan"
    missing = [f"bigvgan/{f}" for f in ("args.yml", "best_netG.pt") if not (vocoder_dir / f).is_file()]
    if missing:
        return None, f"{folder}: missing {', '.join(missing)} (the BigVGAN vocoder folder of {source})"
    tokenizers, notes = {}, []
    for hub_id in tokenizer_ids:
        tok, note = _tokenizer_dir(folder, hub_id)
        if tok is None:
            return None, f"{ckpt}: {note}"
        tokenizers[hub_id] = tok
        notes.append(note)
    return (
        ReleaseFiles(ckpt, vocoder_dir, tokenizers, find_text_sources(folder, tokenizers, text_kinds)),
        f"{ckpt} + {vocoder_dir}; " + "; ".join(notes),
    )


def release_identity(files: ReleaseFiles) -> str:
    """sha256 of the checkpoint and the vocoder, plus of any text-encoder file the checkpoint needs from outside."""
    from genau_core.baselines._common import t5_weight_file

    vocoder = files.vocoder_dir / "best_netG.pt"
    identity = f"sha256:{sha256_file(files.checkpoint)}+bigvgan:sha256:{sha256_file(vocoder)}"
    for kind, src in sorted(text_sources_in_use(files).items()):
        path = t5_weight_file(src) if kind == "t5" else src
        identity += f"+{kind}:sha256:{sha256_file(path)}"
    return identity


def load_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


# -- plugins ----------------------------------------------------------------------------------------


class _MakeAnAudioPlugin(SamplingModelPlugin):
    _found: tuple[ReleaseFiles, str] | None = None

    def _cached_locate(self, locate) -> tuple[ReleaseFiles | None, str]:
        """Locate the files once they are all there (status calls before that look again)."""
        if self._found is None:
            files, status = locate()
            if files is None:
                return None, status
            self._found = (files, status)
        return self._found


_MAA1_NOTES = (
    "DDIM 100 steps, eta 0, guidance 3 (gen_wav.py / gen_wavs_by_tsv.py defaults). Latent width from gen_wav.py's "
    "dur_to_size (int(d*7.8) rounded up to a multiple of 4: 80 = 10.24 s for 10 s; the protocol keeps the first 10 s); "
    "the AudioCaps script gen_wavs_by_tsv.py rounds down (76 = 9.73 s) and zero-pads both ends. One generator per "
    "prompt "
    "for x_T (official: global RNG); float output. UNet/VAE run as diffusers modules through an explicit LDM key "
    "mapping; "
    "sampler = diffusers DDIMScheduler set up as LDM's DDIM (uniform discretisation: steps must divide 1000)."
)


class MakeAnAudio(_MakeAnAudioPlugin):
    info = PluginInfo(
        name="make-an-audio",
        family="make-an-audio",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM (eta 0)", steps=100, guidance=3.0, duration_s=10.0),
        training_data="AudioCaps, AudioSet, BBC, Audiostock, ... + pseudo prompts (Make-An-Audio paper)",
        text_encoder="MS-CLAP 2022 BERT text branch (bert-base-uncased + projection), per token 77 x 1024",
        source="maa1_full.ckpt + bigvgan/{args.yml,best_netG.pt} (" + MAA1_SOURCE + ") + tokenizer bert-base-uncased",
        paper_params="453M",
        notes=_MAA1_NOTES,
    )
    config = None  # None: the released configuration (genau_core.baselines.make_an_audio.MAKE_AN_AUDIO_CONFIG)

    def _locate(self) -> tuple[ReleaseFiles | None, str]:
        from genau_core.baselines.make_an_audio import CHECKPOINT_FILE

        return self._cached_locate(
            lambda: locate_release(
                self.checkpoint,
                CHECKPOINT_FILE,
                ("bert-base-uncased",),
                model=self.name,
                what="Make-An-Audio checkpoint",
                source=MAA1_SOURCE,
            )
        )

    def checkpoint_status(self) -> tuple[bool, str]:
        files, status = self._locate()
        return files is not None, status

    def checkpoint_identity(self) -> str:
        return release_identity(self._found_or_raise(*self._locate()))

    def load(self) -> None:
        from genau_core.baselines.make_an_audio import MAKE_AN_AUDIO_CONFIG, load_make_an_audio

        files = self._found_or_raise(*self._locate())
        tokenizer = load_tokenizer(files.tokenizers["bert-base-uncased"])
        cfg = self.config or MAKE_AN_AUDIO_CONFIG
        model = load_make_an_audio(files.checkpoint, files.vocoder_dir, tokenizer, cfg, files.text_sources)
        self.model = model.to(self.device)

    def generation_extra(self) -> dict:
        return release_extra(self.model)


def release_extra(model) -> dict:
    """Run-level facts of a loaded release: skipped checkpoint keys, text encoders taken from outside the checkpoint."""
    extra = {}
    if model is not None and model.skipped_keys:
        extra["skipped_checkpoint_keys"] = dict(model.skipped_keys)
    if model is not None and any(v != "checkpoint" for v in model.text_sources.values()):
        extra["text_encoders"] = dict(model.text_sources)
    return extra


# -- tiny twin ----------------------------------------------------------------------------------------


def tiny_bigvgan_config(num_mels: int = 16):
    from genau_core.baselines.bigvgan import BigVGANConfig

    # hop 8 * 8 * 4 = 256 as the real vocoder; one AMP block with one dilation keeps 10 s clips fast on CPU
    return BigVGANConfig(
        num_mels=num_mels,
        upsample_rates=(8, 8, 4),
        upsample_kernel_sizes=(16, 16, 8),
        upsample_initial_channel=16,
        resblock_kernel_sizes=(3,),
        resblock_dilation_sizes=((1,),),
    )


def tiny_clap_text_config():
    from genau_core.networks.ms_clap import BertTextConfig
    from genau_core.baselines.clap_text import ClapTextConfig

    bert = BertTextConfig(
        vocab_size=128, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, max_position_embeddings=80
    )
    return ClapTextConfig(bert=bert, d_proj=32, tokenizer="in-process tiny BERT WordPiece")


def tiny_bert_tokenizer(vocab_size: int):
    from genau_core.tokenizers import wordpiece_bert_tokenizer

    tok = wordpiece_bert_tokenizer()
    if len(tok) > vocab_size:
        raise RuntimeError(f"tiny BERT tokenizer has {len(tok)} entries, the tiny BERT only {vocab_size}")
    return tok


def make_an_audio_tiny_config():
    from genau_core.baselines.ldm_keys import LdmUNetConfig, LdmVaeConfig2D
    from genau_core.baselines.make_an_audio import MakeAnAudioConfig

    return MakeAnAudioConfig(
        unet=LdmUNetConfig(
            model_channels=16,
            channel_mult=(1, 2),
            num_res_blocks=2,
            attention_resolutions=(1, 2),
            num_heads=2,
            context_dim=32,
            norm_num_groups=8,
        ),
        vae=LdmVaeConfig2D(ch=8, ch_mult=(1, 2, 2, 4), num_res_blocks=1, z_channels=4, embed_dim=4, norm_num_groups=8),
        text=tiny_clap_text_config(),
        vocoder=tiny_bigvgan_config(16),
        num_mels=16,
    )


def _audible_vocoder(vocoder, gain: float) -> None:
    with torch.no_grad():  # random BigVGAN output is small; scale its last conv to an audible level
        vocoder.conv_post.weight.mul_(gain)


def build_tiny_make_an_audio(seed: int = 0):
    """Tiny Make-An-Audio (same code path: 16 kHz, hop 256, 16 mels), random weights from `seed`, eval mode."""
    from genau_core.baselines.make_an_audio import MakeAnAudioModel

    cfg = make_an_audio_tiny_config()
    tokenizer = tiny_bert_tokenizer(cfg.text.bert.vocab_size)
    torch.manual_seed(seed)
    model = MakeAnAudioModel(cfg, tokenizer, scale_factor=0.8)
    _audible_vocoder(model.vocoder, 20.0)
    return model.eval()


class MakeAnAudioTiny(RandomWeightsTwin, _MakeAnAudioPlugin):
    info = PluginInfo(
        name="make-an-audio-tiny",
        family="make-an-audio",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM (eta 0)", steps=10, guidance=3.0, duration_s=10.0),
        training_data="none (random weights, seed 0)",
        text_encoder="tiny BERT + projection (CLAP text branch layout), in-process WordPiece tokenizer",
        source="in-process (bench.plugins.make_an_audio.build_tiny_make_an_audio)",
        tiny=True,
        notes="Offline twin of make-an-audio: same sampler, key mappings and decode path (LDM UNet and 2D VAE as "
        "diffusers "
        "modules, BigVGAN), tiny random modules (seed 0), 16 mel bins, 10 DDIM steps instead of 100.",
    )

    def load(self) -> None:
        self.model = build_tiny_make_an_audio(self.seed).to(self.device)


__all__ = [
    "MakeAnAudio",
    "MakeAnAudioTiny",
    "ReleaseFiles",
    "build_tiny_make_an_audio",
    "find_text_sources",
    "locate_release",
    "make_an_audio_tiny_config",
    "release_extra",
    "release_identity",
    "text_sources_in_use",
    "tiny_bigvgan_config",
    "tiny_clap_text_config",
]
