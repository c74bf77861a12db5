"""Stable Audio Open 1.0 (hub id stabilityai/stable-audio-open-1.0, gated; a diffusers folder) and its offline
tiny twin, run through diffusers' `StableAudioPipeline`; 44.1 kHz stereo, up to 47.55 s.

The released folder holds the diffusers components (`model_index.json`, `transformer/` =
`StableAudioDiTModel`, `vae/` = `AutoencoderOobleck`, `text_encoder/` = T5-base `T5EncoderModel`,
`tokenizer/`, `projection_model/` = `StableAudioProjectionModel`, `scheduler/` =
`CosineDPMSolverMultistepScheduler`), next to stable-audio-tools' own `model.safetensors` /
`model.ckpt` / `model_config.json`, which we do not read.

Inference settings, and where each comes from:
- 100 steps, guidance (CFG) 7: the model card's stable-audio-tools example (`generate_diffusion_cond(steps=100,
  cfg_scale=7, sigma_min=0.3, sigma_max=500, sampler_type="dpmpp-3m-sde")`) and `StableAudioPipeline.__call__`'s
  defaults (`num_inference_steps=100`, `guidance_scale=7.0`); the TangoFlux README's comparison table ran it at
  100 steps.
- Sampler: the folder's scheduler, `CosineDPMSolverMultistepScheduler` as diffusers' `scripts/convert_stable_audio.py`
  writes it (sigma_min 0.3, sigma_max 500, v-prediction, exponential sigmas, `solver_order=2`, Brownian-tree SDE
  noise). stable-audio-tools' k-diffusion `dpmpp-3m-sde` is a third-order variant of the same sampler over the
  same sigma range; we run diffusers' (the issue's choice), a deliberate difference written in docs/baselines.md.
- Conditioning: `seconds_start` = 0 and `seconds_total` = the requested duration (the pipeline's
  `audio_start_in_s` / `audio_end_in_s`); no negative prompt (the model card's example has none), so the
  unconditional branch is the zero text-and-timing embedding, as in stable-audio-tools' CFG.
- Length: the pipeline always generates the transformer's full `sample_size` (1024 latent frames x 2048 =
  47.55 s) and keeps [0, duration); `--duration` may be anything in (0, 47.55].

One `torch.Generator` per prompt: its initial latents come from it, and the scheduler's Brownian-tree noise
is seeded per prompt from its seed (diffusers seeds one tree per generator), so a clip does not depend on
its batch. Output is float (the model card peak-normalises to int16; the protocol scores the float audio).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch

from bench.errors import MissingFileError, UsageError
from bench.plugins._hub import WEIGHT_SUFFIXES, cached_snapshot, files_identity
from bench.plugins.base import (
    InferenceSettings,
    PluginInfo,
    RandomWeightsTwin,
    TextToAudioPlugin,
    cpu_generators,
)
from genau_core.baselines._common import TINY_T5_ENCODER_CONFIG
from genau_core.baselines.tangoflux import OobleckConfig

REPO_ID = "stabilityai/stable-audio-open-1.0"
HUB_PAGE = f"https://huggingface.co/{REPO_ID}"
# The diffusers components of the released folder: subfolder -> (config file, files of which one must exist)
COMPONENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "transformer": ("config.json", ("diffusion_pytorch_model.safetensors",)),
    "vae": ("config.json", ("diffusion_pytorch_model.safetensors",)),
    "projection_model": ("config.json", ("diffusion_pytorch_model.safetensors",)),
    "text_encoder": ("config.json", ("model.safetensors",)),
    "tokenizer": ("tokenizer_config.json", ("spiece.model", "tokenizer.json")),
    "scheduler": ("scheduler_config.json", ()),
}
WEIGHT_FOLDERS = ("transformer", "vae", "projection_model", "text_encoder")
# what `snapshot_download` fetches: the diffusers files only, not stable-audio-tools' 2 x 4.9 GB copies at the root
DOWNLOAD_PATTERNS = ["model_index.json", *[f"{c}/*" for c in COMPONENTS]]
FILES_TEXT = (
    "model_index.json, transformer/{config.json,diffusion_pytorch_model.safetensors}, "
    "vae/{config.json,diffusion_pytorch_model.safetensors}, projection_model/{config.json,diffusion_pytorch_model."
    "safetensors}, text_encoder/{config.json,model.safetensors}, tokenizer/{tokenizer_config.json,spiece.model,"
    "tokenizer.json,special_tokens_map.json}, scheduler/scheduler_config.json"
)
LICENSE = (
    "Stability AI Community License: research and non-commercial use (commercial use needs a Stability AI license); "
    f"gated on the Hugging Face hub: accept its terms at {HUB_PAGE} with your account"
)


def missing_files(folder: Path) -> list[str]:
    """The diffusers files of the released layout that `folder` lacks (empty: complete)."""
    missing = [] if (folder / "model_index.json").is_file() else ["model_index.json"]
    for sub, (config, weights) in COMPONENTS.items():
        if not (folder / sub / config).is_file():
            missing.append(f"{sub}/{config}")
        if weights and not any((folder / sub / w).is_file() for w in weights):
            have_other = sub in WEIGHT_FOLDERS and any(p.suffix in WEIGHT_SUFFIXES for p in (folder / sub).glob("*"))
            if not have_other:
                missing.append(f"{sub}/{' or '.join(weights)}")
    return missing


def hf_token() -> str | None:
    """The user's Hugging Face token: $HF_TOKEN, else the one `huggingface-cli login` stored; None when neither."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:
        return None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _looks_like_hub_id(text: str) -> bool:
    return (
        not text.startswith((".", "~", "/")) and "\\" not in text and text.count("/") == 1 and not Path(text).exists()
    )


def component_identity(folder: Path) -> str:
    """sha256 over (relative path, sha256) of the weight files of the diffusers components only (the folder may also
    hold stable-audio-tools' own checkpoint copies, which this model never reads)."""
    files = sorted(
        p for sub in WEIGHT_FOLDERS for p in (folder / sub).glob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES
    )
    if not files:
        raise MissingFileError(f"{folder}: no weight files in {', '.join(WEIGHT_FOLDERS)}")
    return files_identity(folder, files)


def download_folder(repo_id: str, model: str) -> Path:
    """Fetch the diffusers files of a gated hub repo with the user's token; one clear line when that fails."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    token = hf_token()
    fix = f"or download it yourself and pass the folder with --model-checkpoint {model}=PATH"
    try:
        return Path(snapshot_download(repo_id, allow_patterns=DOWNLOAD_PATTERNS, token=token))
    except GatedRepoError:
        raise MissingFileError(
            f"{model}: hf:{repo_id} is gated and this token has no access: accept its terms at https://huggingface.co/"
            f"{repo_id} with the account of your HF token, then run again ({fix})"
        ) from None
    except RepositoryNotFoundError:
        raise MissingFileError(
            f"{model}: hf:{repo_id}: no such repository, or your HF token cannot see it ({fix})"
        ) from None
    except Exception as e:  # offline, proxy, disk: the reason in one line
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise MissingFileError(
            f"{model}: could not download hf:{repo_id} ({type(e).__name__}: {reason}); {fix}"
        ) from None


class _StableAudioPipelinePlugin(TextToAudioPlugin):
    """A model run by diffusers' `StableAudioPipeline` (stereo, 44.1 kHz for Stable Audio Open)."""

    pipe = None

    def load(self) -> None:
        self.pipe = self._build_pipeline().to(self.device)
        self.pipe.set_progress_bar_config(disable=True)  # the harness shows one bar per run
        for m in self._modules().values():
            m.eval()

    def _build_pipeline(self):
        raise NotImplementedError

    def _modules(self) -> dict:
        p = self.pipe
        return dict(
            transformer=p.transformer, vae=p.vae, text_encoder=p.text_encoder, projection_model=p.projection_model
        )

    def parameter_count(self) -> int:
        self._ensure_loaded()
        return sum(p.numel() for m in self._modules().values() for p in m.parameters())

    @property
    def max_duration_s(self) -> float:
        """The longest clip the loaded model generates: transformer sample_size x VAE hop / rate."""
        self._ensure_loaded()
        p = self.pipe
        return p.transformer.config.sample_size * p.vae.hop_length / p.vae.config.sampling_rate

    def generation_extra(self) -> dict:
        if self.pipe is None:
            return {}
        s = self.pipe.scheduler
        keep = (
            "sigma_min",
            "sigma_max",
            "sigma_data",
            "sigma_schedule",
            "solver_order",
            "prediction_type",
            "final_sigmas_type",
        )
        return {
            "scheduler": type(s).__name__,
            "scheduler_config": {k: s.config[k] for k in keep if k in s.config},
            "negative_prompt": None,
            "seconds_start": 0.0,  # seconds_total: the run's duration
            "generated_s": round(self.max_duration_s, 4),
        }

    def _generate(self, prompts: Sequence[str], *, seeds, steps, guidance, duration_s) -> list[np.ndarray]:
        longest = self.max_duration_s
        if not 0 < duration_s <= longest:
            raise UsageError(
                f"{self.name}: --duration {duration_s}: this model generates between 0 and {longest:.2f} s"
            )
        with warnings.catch_warnings():
            # diffusers queries the Brownian tree (built on [sigma_min, sigma_max] = [0.3, 500]) at the final sigma 0
            # and at float32-rounded ends (e.g. tb = 0.29999998); torchsde clamps those to the tree's ends (zero noise
            # on the last step) and warns at each query. The same numbers with or without the warnings.
            warnings.filterwarnings("ignore", message="Should have (ta|tb)", category=UserWarning, module="torchsde")
            out = self._call_pipeline(prompts, seeds, steps, guidance, duration_s)
        return [np.asarray(a, np.float32) for a in out.audios]  # (2, samples) each

    def _call_pipeline(self, prompts, seeds, steps, guidance, duration_s):
        return self.pipe(
            prompt=list(prompts),
            audio_start_in_s=0.0,
            audio_end_in_s=float(duration_s),
            num_inference_steps=steps,
            guidance_scale=guidance,
            num_waveforms_per_prompt=1,
            generator=cpu_generators(seeds),
            output_type="np",
        )


_SAO_NOTES = (
    "Run by diffusers' StableAudioPipeline on the released diffusers folder. Defaults: 100 steps, CFG 7 (model card, "
    "pipeline defaults); the folder's CosineDPMSolverMultistepScheduler (DPM-Solver++ 2M SDE, sigma 0.3-500; "
    "stable-audio-tools' model-card example uses its 3rd-order dpmpp-3m-sde over the same sigmas). seconds_start 0, "
    "seconds_total = duration; no negative prompt; generates 47.55 s and keeps [0, duration). One generator per prompt "
    "(latents and Brownian-tree noise); float output (model card: peak-normalised int16). Native 44.1 kHz stereo; the "
    "genau protocol scores the channel mean resampled to 16 kHz."
)


class StableAudioOpen(_StableAudioPipelinePlugin):
    info = PluginInfo(
        name="stable-audio-open",
        family="stable-audio",
        native_sample_rate=44_100,
        native_channels=2,
        defaults=InferenceSettings(sampler="DPM++ 2M SDE (cosine)", steps=100, guidance=7.0, duration_s=10.0),
        training_data="486k CC-licensed recordings from Freesound and the Free Music Archive (Stable Audio Open paper)",
        text_encoder="T5-base (frozen) + seconds_start / seconds_total number conditioners",
        source=f"hf:{REPO_ID} (gated; diffusers folder: {FILES_TEXT})",
        paper_params="1056M",  # the DiT (TangoFlux README table); 1.32B with VAE, T5-base and projection (counted here)
        notes=_SAO_NOTES,
        license=LICENSE,
    )
    repo_id: ClassVar[str] = REPO_ID

    def _locate(self) -> tuple[Path | None, str]:
        """(complete local folder or None, status ending with what to do)."""
        fix = f"pass the downloaded folder with --model-checkpoint {self.name}=PATH"
        given = self.checkpoint
        if given and Path(given).expanduser().is_dir():
            folder = Path(given).expanduser()
        elif given and not _looks_like_hub_id(given):
            return (
                None,
                f"{given}: no such folder; it should hold the diffusers files of hf:{self.repo_id} "
                f"({FILES_TEXT}); {fix}",
            )
        else:
            target = given or self.repo_id
            folder = cached_snapshot(target)
            if folder is None:
                how = (
                    "it will be downloaded with your HF token on first use"
                    if hf_token() and not _hub_offline()
                    else f"it is gated: accept its terms at https://huggingface.co/{target}, then set HF_TOKEN (or "
                    f"`huggingface-cli login`) and run again, or `huggingface-cli download {target} "
                    f"--exclude 'model.*'` (the diffusers files only) and {fix}"
                )
                return None, f"hf:{target} not found locally ({FILES_TEXT}); {how}"
        missing = missing_files(folder)
        if missing:
            return None, f"{folder}: missing {', '.join(missing)} (the diffusers files of hf:{self.repo_id}); {fix}"
        return folder, f"local folder {folder}"

    def _will_download(self) -> bool:
        given = self.checkpoint
        return (not given or _looks_like_hub_id(given)) and bool(hf_token()) and not _hub_offline()

    def _model_folder(self) -> Path:
        folder, status = self._locate()
        if folder is None and self._will_download() and cached_snapshot(self.checkpoint or self.repo_id) is None:
            folder = download_folder(self.checkpoint or self.repo_id, self.name)
            missing = missing_files(folder)
            if missing:
                raise MissingFileError(f"{self.name}: {folder}: missing {', '.join(missing)} after the download")
            return folder
        return self._found_or_raise(folder, status)

    def checkpoint_status(self) -> tuple[bool, str]:
        folder, status = self._locate()
        if folder is None and self._will_download() and status.startswith("hf:"):
            return True, status  # "... will be downloaded with your HF token on first use"
        return folder is not None, status

    def checkpoint_identity(self) -> str:
        return component_identity(self._model_folder())

    def _build_pipeline(self):
        from diffusers import StableAudioPipeline

        return StableAudioPipeline.from_pretrained(str(self._model_folder()), dtype=torch.float32)


# --- the offline tiny twin -----------------------------------------------------------------------

# SAO's VAE layout (hop 2048, 44.1 kHz, stereo) with tiny widths and 8 latent channels (real: 64)
TINY_OOBLECK = OobleckConfig(
    encoder_hidden_size=16, channel_multiples=(1, 2, 2, 4, 4), decoder_channels=2, decoder_input_channels=8
)
TINY_SAMPLE_SIZE = 256  # latent frames: 256 x 2048 / 44100 = 11.89 s, enough for the protocol's 10 s


def tiny_t5_config() -> dict:
    """T5-base's layout (v1.0: ReLU feed-forward, tied-free encoder) at tiny size, for the in-process tokenizer."""
    return dict(TINY_T5_ENCODER_CONFIG, feed_forward_proj="relu")


def sao_scheduler():
    """The scheduler diffusers' scripts/convert_stable_audio.py writes into the released folder."""
    from diffusers import CosineDPMSolverMultistepScheduler

    return CosineDPMSolverMultistepScheduler(
        sigma_min=0.3,
        sigma_max=500,
        solver_order=2,
        prediction_type="v_prediction",
        sigma_data=1.0,
        sigma_schedule="exponential",
    )


def build_tiny_stable_audio_components(seed: int = 0, sample_size: int = TINY_SAMPLE_SIZE) -> dict:
    """Tiny `StableAudioPipeline` components (the released folder's classes), random weights, eval mode.

    Widths follow the released ratios: cross-attention width = key/value heads x head width (the conversion script's
    `num_key_value_attention_heads = cond_token_dim // head_dim`), global input = 2 x conditioning width."""
    from diffusers import StableAudioDiTModel, StableAudioProjectionModel
    from transformers import T5Config, T5EncoderModel

    from genau_core.tokenizers import t5_style_tokenizer

    t5 = tiny_t5_config()
    tokenizer = t5_style_tokenizer(vocab_size=t5["vocab_size"], model_max_length=32)
    cond = 16  # conditioning width (real: 768)
    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(T5Config(**t5))
    torch.manual_seed(seed)
    projection_model = StableAudioProjectionModel(
        text_encoder_dim=t5["d_model"], conditioning_dim=cond, min_value=0, max_value=512
    )
    torch.manual_seed(seed)
    transformer = StableAudioDiTModel(
        sample_size=sample_size,
        in_channels=TINY_OOBLECK.decoder_input_channels,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=4,
        num_key_value_attention_heads=cond // 8,
        out_channels=TINY_OOBLECK.decoder_input_channels,
        cross_attention_dim=cond,
        time_proj_dim=16,
        global_states_input_dim=2 * cond,
        cross_attention_input_dim=cond,
    )
    torch.manual_seed(seed)
    vae = TINY_OOBLECK.build()
    for m in (text_encoder, projection_model, transformer, vae):
        m.eval()  # dropout off: the same seed must give the same clip
    return dict(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        projection_model=projection_model,
        tokenizer=tokenizer,
        scheduler=sao_scheduler(),
    )


class StableAudioOpenTiny(RandomWeightsTwin, _StableAudioPipelinePlugin):
    info = PluginInfo(
        name="stable-audio-open-tiny",
        family="stable-audio",
        native_sample_rate=44_100,
        native_channels=2,
        defaults=InferenceSettings(sampler="DPM++ 2M SDE (cosine)", steps=10, guidance=7.0, duration_s=10.0),
        training_data="none (random weights, seed 0)",
        text_encoder="tiny T5 encoder, in-process Unigram tokenizer",
        source="in-process (bench.plugins.stable_audio_open.build_tiny_stable_audio_components)",
        tiny=True,
        notes="Offline twin of stable-audio-open: the same StableAudioPipeline, scheduler and conditioning, tiny "
        "random components (seed 0; 44.1 kHz stereo VAE layout with hop 2048), 256 latent frames (11.89 s; real: "
        "1024 = 47.55 s), "
        "10 steps instead of 100.",
    )
    seed = 0

    def _build_pipeline(self):
        from diffusers import StableAudioPipeline

        return StableAudioPipeline(**build_tiny_stable_audio_components(self.seed))


__all__ = [
    "COMPONENTS",
    "REPO_ID",
    "TINY_OOBLECK",
    "StableAudioOpen",
    "StableAudioOpenTiny",
    "build_tiny_stable_audio_components",
    "component_identity",
    "download_folder",
    "hf_token",
    "missing_files",
    "sao_scheduler",
]
