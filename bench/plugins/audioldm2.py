"""AudioLDM 2-L (diffusers `AudioLDM2Pipeline`, hub id cvssp/audioldm2-large) and its offline tiny twin.

Official inference (haoheliu/AudioLDM2 `audioldm2/pipeline.py` `text_to_audio`,
`latent_diffusion/models/ddpm.py` `LatentDiffusion.generate_batch`, `models/ddim.py` `DDIMSampler`),
which the plugin follows where diffusers' defaults differ:
- DDIM with **eta 1.0** (`generate_batch(ddim_eta=1.0)`); diffusers' pipeline defaults to eta 0.
- **256 latent frames = 10.24 s** for 10 s (`latent_t_size = int(duration * 25.6)`); diffusers makes
  250 for 10 s. The base class trims to the protocol's 10 s.
- The unconditional branch of the GPT-2 "language of audio" condition is **zeros (8 x 768)**:
  `SequenceGenAudioMAECond.get_unconditional_condition` returns the AudioMAE branch's unconditional
  tokens (`AudioMAEConditionCTPoolRand.get_unconditional_condition`: zeros, 512 / (8 x 8) tokens of
  768) as `crossattn_audiomae_generated`. diffusers instead runs GPT-2 on the embeddings of "".
  The unconditional FLAN-T5 branch is T5("") in both (`FlanT5HiddenState.get_unconditional_condition`).

Protocol notes
- One waveform per prompt (`num_waveforms_per_prompt=1`), so the pipeline's CLAP re-ranking
  (`score_waveforms`, used only when more than one waveform is asked for) never runs.
- Outputs must not depend on batch composition. `AudioLDM2Pipeline` pads the FLAN-T5 tokens of
  a batch to its longest prompt (`padding=True`) and feeds the padded sequence through GPT-2,
  whose positions then shift with the padding; the same prompt would give a different clip in
  a different batch. We therefore encode each prompt on its own with the pipeline's own
  `encode_prompt` (exactly what a one-prompt pipeline call does), pad the T5 states of the
  batch with masked zeros (the UNet's cross-attention gives masked positions exactly zero
  weight), and run the denoising loop batched. `tests/bench/plugins/test_plugin_audioldm2.py` checks the
  result against one-prompt calls of the diffusers pipeline and the official computation against
  a transcription of the official code.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np
import torch

from bench.plugins.audioldm import (
    TINY_UNET_LAYOUT,
    _DiffusersFolderPlugin,
    build_tiny_vae,
    build_tiny_vocoder,
    tiny_clap_text_config,
    tiny_ddim_scheduler,
)
from bench.plugins.base import InferenceSettings, PluginInfo, RandomWeightsTwin, cpu_generators
from genau_core.baselines.audioldm import latent_frames
from genau_core.tokenizers import roberta_class_tokenizer, t5_style_tokenizer


def _audioldm2_pipeline_class():
    from diffusers import AudioLDM2Pipeline

    return AudioLDM2Pipeline


class _AudioLDM2Generation(_DiffusersFolderPlugin):
    """The diffusers pipeline with the official sampler settings; per-prompt text conditioning, batched denoising."""

    pipe = None
    eta: ClassVar[float] = 1.0  # official DDIM eta (audioldm2 ddpm.py generate_batch)
    zero_unconditional_gpt2: ClassVar[bool] = True  # official unconditional "language of audio": zeros

    def _use_pipeline(self, pipe) -> None:
        self.pipe = pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)

    def load(self) -> None:
        self._use_pipeline(_audioldm2_pipeline_class().from_pretrained(str(self._model_folder())))

    def parameter_count(self) -> int:
        self._ensure_loaded()
        total = 0
        for name in ("unet", "vae", "text_encoder", "text_encoder_2", "vocoder", "projection_model", "language_model"):
            module = getattr(self.pipe, name, None)
            if isinstance(module, torch.nn.Module):
                total += sum(p.numel() for p in module.parameters())
        return total

    def generation_extra(self) -> dict:
        return {"ddim_eta": self.eta, "unconditional_gpt2": "zeros" if self.zero_unconditional_gpt2 else "gpt2('')"}

    def official_audio_length(self, duration_s: float) -> float:
        """Seconds to ask the pipeline for so that it makes the official number of latent frames."""
        pipe = self.pipe
        hop = int(np.prod(pipe.vocoder.config.upsample_rates))
        rate = int(pipe.vocoder.config.sampling_rate)
        frames = latent_frames(
            duration_s,
            mel_frames_per_s=rate / hop,
            vae_scale=pipe.vae_scale_factor,
            unet_multiple=2 ** (len(pipe.unet.config.block_out_channels) - 1),
        )
        return frames * pipe.vae_scale_factor * hop / rate

    def _encode_one(self, prompt: str, cfg: bool) -> dict[str, torch.Tensor]:
        pipe = self.pipe
        embeds, mask, generated = pipe.encode_prompt(
            [prompt], pipe._execution_device, num_waveforms_per_prompt=1, do_classifier_free_guidance=cfg
        )
        if not cfg:
            return dict(pos=embeds, pos_mask=mask, pos_gen=generated)
        # encode_prompt returns [negative; positive] stacked on the batch axis
        parts = dict(
            neg=embeds[0:1],
            pos=embeds[1:2],
            neg_mask=mask[0:1],
            pos_mask=mask[1:2],
            neg_gen=generated[0:1],
            pos_gen=generated[1:2],
        )
        if self.zero_unconditional_gpt2:
            parts["neg_gen"] = torch.zeros_like(parts["pos_gen"])
        return parts

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
        out = self.pipe(
            num_inference_steps=steps,
            guidance_scale=guidance,
            audio_length_in_s=self.official_audio_length(duration_s),
            num_waveforms_per_prompt=1,  # protocol: one candidate, no CLAP re-ranking
            eta=self.eta,
            generator=cpu_generators(seeds),
            output_type="np",
            **kwargs,
        )
        return [np.asarray(a, dtype=np.float32) for a in out.audios]


_AUDIOLDM2_NOTES = (
    "Official sampler (haoheliu/AudioLDM2 ddpm.py generate_batch): DDIM, eta 1.0, 256 latent frames (10.24 s; the "
    "protocol keeps the first 10 s), unconditional GPT-2 branch = zeros (8 x 768) as the official code, not GPT-2 on "
    "the empty prompt as diffusers. Official CLI re-ranks 3 candidates with CLAP; the protocol uses 1 candidate, no "
    "re-ranking. Prompts are text-encoded one at a time so a clip does not depend on its batch; one generator per "
    "prompt (x_T and every DDIM noise draw; official: global RNG); float output; no 10% random unconditional drop of "
    "the CLAP input to GPT-2 (see docs/baselines.md)."
)


class AudioLDM2Large(_AudioLDM2Generation):
    info = PluginInfo(
        name="audioldm2-l",
        family="audioldm2",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM (eta 1)", steps=200, guidance=3.5, duration_s=10.0),
        training_data="AudioSet, WavCaps, AudioCaps, VGGSound, Free Music Archive, Million Song Dataset, "
        "ESC-50, GigaSpeech, LJSpeech, ... (AudioLDM 2 paper, general-audio large model)",
        text_encoder="LAION-CLAP text branch + FLAN-T5-large, GPT-2 'language of audio' prior",
        source="hf:cvssp/audioldm2-large (diffusers AudioLDM2Pipeline)",
        paper_params="712M",
        notes=_AUDIOLDM2_NOTES,
    )
    repo_id = "cvssp/audioldm2-large"


# --- tiny twin ---------------------------------------------------------------------------


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

    tokenizer = roberta_class_tokenizer()
    tokenizer_2 = t5_style_tokenizer()
    gpt_dim, t5_dim, clap_dim = 16, 32, 16

    torch.manual_seed(seed)
    unet = AudioLDM2UNet2DConditionModel(
        **TINY_UNET_LAYOUT, cross_attention_dim=([None, gpt_dim, t5_dim], [None, gpt_dim, t5_dim])
    )
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
    text_encoder = ClapModel(
        ClapConfig(text_config=text_config.to_dict(), audio_config=audio_config.to_dict(), projection_dim=clap_dim)
    )
    feature_extractor = ClapFeatureExtractor()
    torch.manual_seed(seed)
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer_2),
            d_model=t5_dim,
            d_ff=48,
            d_kv=8,
            num_heads=4,
            num_layers=2,
            feed_forward_proj="gated-gelu",
        )
    )
    torch.manual_seed(seed)
    language_model = GPT2LMHeadModel(
        GPT2Config(n_embd=gpt_dim, n_head=2, n_layer=2, vocab_size=64, n_positions=64, bos_token_id=63, eos_token_id=63)
    )
    language_model.config.max_new_tokens = 8
    torch.manual_seed(seed)
    projection_model = AudioLDM2ProjectionModel(
        text_encoder_dim=clap_dim, text_encoder_1_dim=t5_dim, langauge_model_dim=gpt_dim
    )
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
        **modules,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        feature_extractor=feature_extractor,
        scheduler=scheduler,
    )


class AudioLDM2Tiny(RandomWeightsTwin, _AudioLDM2Generation):
    info = PluginInfo(
        name="audioldm2-l-tiny",
        family="audioldm2",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM (eta 1)", steps=10, guidance=3.5, duration_s=10.0),
        training_data="none (random weights, seed 0)",
        text_encoder="tiny CLAP text branch + tiny T5 encoder + tiny GPT-2, in-process tokenizers",
        source="in-process (diffusers AudioLDM2Pipeline with tiny components)",
        tiny=True,
        notes="Offline twin of audioldm2-l: same pipeline code, official sampler settings (DDIM eta 1, 10.24 s "
        "per 10 s, zero unconditional GPT-2 branch) and per-prompt encoding, tiny random components (seed 0), "
        "10 DDIM steps instead of 200.",
    )

    def load(self) -> None:
        self._use_pipeline(_audioldm2_pipeline_class()(**build_tiny_audioldm2_components(self.seed)))
