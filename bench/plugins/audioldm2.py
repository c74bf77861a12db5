"""AudioLDM 2-L (diffusers `AudioLDM2Pipeline`, hub id cvssp/audioldm2-large) and its offline tiny twin.

Protocol notes
- One waveform per prompt (`num_waveforms_per_prompt=1`), so the pipeline's CLAP re-ranking
  (`score_waveforms`, used only when more than one waveform is asked for) never runs.
- Outputs must not depend on batch composition. `AudioLDM2Pipeline` pads the FLAN-T5 tokens of
  a batch to its longest prompt (`padding=True`) and feeds the padded sequence through GPT-2,
  whose positions then shift with the padding; the same prompt would give a different clip in
  a different batch. We therefore encode each prompt on its own with the pipeline's own
  `encode_prompt` (exactly what a one-prompt pipeline call does), pad the T5 states of the
  batch with masked zeros (the UNet's cross-attention gives masked positions exactly zero
  weight), and run the denoising loop batched. `tests/test_plugin_audioldm2.py` checks the
  result against one-prompt calls of the diffusers pipeline.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch

from bench.plugins.audioldm import (
    TINY_UNET_LAYOUT,
    _DiffusersAudioPlugin,
    build_tiny_vae,
    build_tiny_vocoder,
    tiny_clap_text_config,
    tiny_ddim_scheduler,
)
from bench.plugins.base import InferenceSettings, PluginInfo, RandomWeightsTwin


def _audioldm2_pipeline_class():
    from diffusers import AudioLDM2Pipeline

    return AudioLDM2Pipeline


class _AudioLDM2Generation(_DiffusersAudioPlugin):
    """Per-prompt text conditioning, batched denoising (see module docstring)."""

    pipeline_class = staticmethod(_audioldm2_pipeline_class)

    def _encode_one(self, prompt: str, cfg: bool) -> dict[str, torch.Tensor]:
        pipe = self.pipe
        embeds, mask, generated = pipe.encode_prompt(
            [prompt], pipe._execution_device, num_waveforms_per_prompt=1, do_classifier_free_guidance=cfg
        )
        if cfg:  # encode_prompt returns [negative; positive] stacked on the batch axis
            return dict(
                neg=embeds[0:1], pos=embeds[1:2], neg_mask=mask[0:1], pos_mask=mask[1:2], neg_gen=generated[0:1], pos_gen=generated[1:2]
            )
        return dict(pos=embeds, pos_mask=mask, pos_gen=generated)

    def _generate(self, prompts: Sequence[str], *, seeds, steps, guidance, duration_s) -> list[np.ndarray]:
        cfg = guidance > 1.0
        with torch.no_grad():
            parts = [self._encode_one(p, cfg) for p in prompts]
        length = max(p["pos"].shape[1] for p in parts)

        def stack(key: str, mask_key: str) -> tuple[torch.Tensor, torch.Tensor]:
            states, masks = [], []
            for p in parts:
                x, m = p[key], p[mask_key]
                pad = length - x.shape[1]
                states.append(torch.nn.functional.pad(x, (0, 0, 0, pad)))
                masks.append(torch.nn.functional.pad(m, (0, pad)))
            return torch.cat(states), torch.cat(masks)

        kwargs = {}
        kwargs["prompt_embeds"], kwargs["attention_mask"] = stack("pos", "pos_mask")
        kwargs["generated_prompt_embeds"] = torch.cat([p["pos_gen"] for p in parts])
        if cfg:
            kwargs["negative_prompt_embeds"], kwargs["negative_attention_mask"] = stack("neg", "neg_mask")
            kwargs["negative_generated_prompt_embeds"] = torch.cat([p["neg_gen"] for p in parts])
        return self._run_pipeline(seeds=seeds, steps=steps, guidance=guidance, duration_s=duration_s, **kwargs)


class AudioLDM2Large(_AudioLDM2Generation):
    info = PluginInfo(
        name="audioldm2-l",
        family="audioldm2",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM", steps=200, guidance=3.5, duration_s=10.0),
        training_data="AudioSet, WavCaps, AudioCaps, VGGSound, Free Music Archive, Million Song Dataset, "
        "ESC-50, GigaSpeech, LJSpeech, ... (AudioLDM 2 paper, general-audio large model)",
        text_encoder="LAION-CLAP text branch + FLAN-T5-large, GPT-2 'language of audio' prior",
        source="hf:cvssp/audioldm2-large (diffusers AudioLDM2Pipeline)",
        paper_params="712M",
        notes="Official CLI re-ranks 3 candidates with CLAP; the protocol uses 1 candidate, no re-ranking. "
        "Prompts are text-encoded one at a time so a clip does not depend on its batch.",
    )
    repo_id = "cvssp/audioldm2-large"


# --- tiny twin ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def t5_style_tokenizer(vocab_size: int = 120, model_max_length: int = 32):
    """A FLAN-T5-layout SentencePiece-style tokenizer: <pad>=0, </s>=1, <unk>=2; appends </s>.

    A Unigram model trained in-process on the built-in sound-description corpus (deterministic).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    from bench.plugins._tiny_text import SOUND_CORPUS

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(SOUND_CORPUS, trainer=trainer)
    vocab = [(piece, float(score)) for piece, score in json.loads(tok.to_str())["model"]["vocab"]]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=model_max_length)


@lru_cache(maxsize=None)
def _roberta_tokenizer_for_clap():
    """The in-process RoBERTa-layout BPE, as a `RobertaTokenizer` (AudioLDM2Pipeline checks the class)."""
    from transformers import RobertaTokenizer

    from bench.plugins._tiny_text import ROBERTA_SPECIAL_TOKENS, roberta_style_tokenizer

    base = roberta_style_tokenizer()
    return RobertaTokenizer(
        tokenizer_object=base.backend_tokenizer,
        **ROBERTA_SPECIAL_TOKENS,
        model_max_length=base.model_max_length,
    )


def build_tiny_audioldm2_components(seed: int = 0) -> dict:
    """Tiny AudioLDM 2 components at the real frame rate (hop 160 @ 16 kHz), random weights, eval mode.

    Same structure as cvssp/audioldm2-large: CLAP (text + audio branch; the audio branch only
    serves re-ranking, which the protocol never uses), FLAN-T5-style encoder, projection model,
    GPT-2 generating 8 "language of audio" states, AudioLDM2 UNet cross-attending to both
    (GPT-2 states and T5 states), KL-VAE on 16-bin mels, HiFi-GAN with 160x upsampling.
    """
    from diffusers import AudioLDM2ProjectionModel, AudioLDM2UNet2DConditionModel
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        GPT2Config,
        GPT2LMHeadModel,
        T5Config,
        T5EncoderModel,
    )

    tokenizer = _roberta_tokenizer_for_clap()
    tokenizer_2 = t5_style_tokenizer()
    gpt_dim, t5_dim, clap_dim = 16, 32, 16

    torch.manual_seed(seed)
    unet = AudioLDM2UNet2DConditionModel(**TINY_UNET_LAYOUT, cross_attention_dim=([None, gpt_dim, t5_dim], [None, gpt_dim, t5_dim]))
    vae = build_tiny_vae(seed)
    torch.manual_seed(seed)
    text_config = tiny_clap_text_config(len(tokenizer), clap_dim)
    audio_config = ClapAudioConfig(
        spec_size=64,
        window_size=4,
        num_mel_bins=64,
        intermediate_size=32,
        depths=[1, 1],
        num_attention_heads=[2, 2],
        num_hidden_layers=2,
        hidden_size=32,
        projection_dim=clap_dim,
        patch_size=2,
        patch_stride=2,
        patch_embeds_hidden_size=16,
        patch_embed_input_channels=4,
    )
    text_encoder = ClapModel(ClapConfig(text_config=text_config.to_dict(), audio_config=audio_config.to_dict(), projection_dim=clap_dim))
    feature_extractor = ClapFeatureExtractor()
    torch.manual_seed(seed)
    text_encoder_2 = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer_2), d_model=t5_dim, d_ff=48, d_kv=8, num_heads=4, num_layers=2, feed_forward_proj="gated-gelu")
    )
    torch.manual_seed(seed)
    language_model = GPT2LMHeadModel(
        GPT2Config(n_embd=gpt_dim, n_head=2, n_layer=2, vocab_size=64, n_positions=64, bos_token_id=63, eos_token_id=63)
    )
    language_model.config.max_new_tokens = 8
    torch.manual_seed(seed)
    projection_model = AudioLDM2ProjectionModel(text_encoder_dim=clap_dim, text_encoder_1_dim=t5_dim, langauge_model_dim=gpt_dim)
    vocoder = build_tiny_vocoder(seed)
    scheduler = tiny_ddim_scheduler()
    modules = dict(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        language_model=language_model,
        projection_model=projection_model,
        vocoder=vocoder,
    )
    for module in modules.values():
        module.eval()  # constructors leave training mode on: dropout would make generation random
    return dict(
        **modules, tokenizer=tokenizer, tokenizer_2=tokenizer_2, feature_extractor=feature_extractor, scheduler=scheduler
    )


class AudioLDM2Tiny(RandomWeightsTwin, _AudioLDM2Generation):
    info = PluginInfo(
        name="audioldm2-l-tiny",
        family="audioldm2",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM", steps=10, guidance=3.5, duration_s=10.0),
        training_data="none (random weights, seed 0)",
        text_encoder="tiny CLAP text branch + tiny T5 encoder + tiny GPT-2, in-process tokenizers",
        source="in-process (diffusers AudioLDM2Pipeline with tiny components)",
        tiny=True,
        notes="Offline twin of audioldm2-l: same pipeline code and per-prompt encoding, tiny random "
        "components (seed 0), 10 DDIM steps instead of 200.",
    )
    def load(self) -> None:
        self._use_pipeline(self.pipeline_class()(**build_tiny_audioldm2_components(self.seed)))
