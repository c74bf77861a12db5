"""GenAuModel (all inference components in one module) and `build_genau`, the single factory."""

from __future__ import annotations

import torch
from torch import nn

from genau_core.audio.griffinlim import GriffinLimVocoder
from genau_core.audio.hifigan import HiFiGANGenerator
from genau_core.audio.mel import MelSpectrogram
from genau_core.genau.conditioning import TextConditioner
from genau_core.genau.configs import GenAuConfig, get_config
from genau_core.genau.fit import FITBackbone
from genau_core.genau.tokenizers import load_tokenizer
from genau_core.genau.vae import AutoencoderKL1D


class GenAuModel(nn.Module):
    """mel front end, 1D-VAE, FIT backbone, text conditioner, vocoder; `scale_factor` scales VAE latents.

    The vocoder is the HiFi-GAN (`cfg.vocoder`) unless `cfg.vocoder_type` is "griffin-lim" (no weights).
    """

    def __init__(self, cfg: GenAuConfig, t5_tokenizer=None, clap_tokenizer=None):
        super().__init__()
        self.cfg = cfg
        self.mel = MelSpectrogram(cfg.mel)
        self.vae = AutoencoderKL1D(cfg.vae)
        self.backbone = FITBackbone(cfg.fit)
        self.conditioner = TextConditioner(cfg.conditioning, t5_tokenizer, clap_tokenizer)
        if cfg.vocoder_type == "griffin-lim":
            self.vocoder: nn.Module = GriffinLimVocoder(cfg.mel, cfg.griffin_lim)
        else:
            self.vocoder = HiFiGANGenerator(cfg.vocoder)
        self.register_buffer("scale_factor", torch.tensor(float(cfg.diffusion.scale_factor)))

    @property
    def device(self) -> torch.device:
        return self.scale_factor.device

    def component_parameters(self) -> dict[str, int]:
        parts = {
            "backbone": self.backbone,
            "vae": self.vae,
            "vocoder": self.vocoder,
            "t5_encoder": self.conditioner.t5,
            "clap_text": self.conditioner.clap,
        }
        return {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}

    def parameter_count(self) -> int:
        return sum(self.component_parameters().values())

    def encode_mel(
        self, mel: torch.Tensor, *, sample: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """log-mel (B, n_mels, T) -> scaled diffusion latents (B, embed_dim, T / 4)."""
        posterior = self.vae.encode(mel)
        z = posterior.sample(generator) if sample else posterior.mode()
        return z * self.scale_factor

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z / self.scale_factor)

    def mel_to_waveform(self, mel: torch.Tensor) -> torch.Tensor:
        return self.vocoder(mel)[:, 0]


def build_genau(
    config: GenAuConfig | str,
    *,
    device: str | torch.device = "cpu",
    seed: int | None = None,
    t5_tokenizer=None,
    clap_tokenizer=None,
    load_tokenizers: bool = True,
) -> GenAuModel:
    """Build a GenAuModel from its config with fixed-seed random weights.

    `device="meta"` builds shapes only (parameter counts of the large configs). Tokenizers come
    from the config's sources ("tiny" -> built in-process; otherwise a local directory) unless given.
    """
    cfg = get_config(config) if isinstance(config, str) else config
    c = cfg.conditioning
    if load_tokenizers and t5_tokenizer is None:
        t5_tokenizer = load_tokenizer(
            c.t5_tokenizer, "t5", vocab_size=int(c.t5.get("vocab_size", 32128)), max_length=c.t5_max_length
        )
    if load_tokenizers and clap_tokenizer is None:
        clap_tokenizer = load_tokenizer(
            c.clap_tokenizer, "clap", vocab_size=int(c.clap_text.get("vocab_size", 50265)), max_length=c.clap_max_length
        )
    for tok, limit, name in (
        (t5_tokenizer, c.t5.get("vocab_size"), "T5"),
        (clap_tokenizer, c.clap_text.get("vocab_size"), "CLAP"),
    ):
        if tok is not None and limit is not None and len(tok) > int(limit):
            raise ValueError(f"{name} tokenizer has {len(tok)} tokens, the encoder's embedding only {limit}")
    device = torch.device(device)
    if device.type == "meta":
        with torch.device("meta"):
            return GenAuModel(cfg, t5_tokenizer, clap_tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.init_seed if seed is None else seed)
        model = GenAuModel(cfg, t5_tokenizer, clap_tokenizer)
    return model.to(device).eval()


WEIGHTS_NAME = "genau.safetensors"
CONFIG_NAME = "genau_config.json"


def save_pretrained(model: GenAuModel, folder) -> None:
    """Write `genau_config.json` + `genau.safetensors` (all parameters and persistent buffers)."""
    import json
    from pathlib import Path

    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_NAME).write_text(json.dumps(model.cfg.to_dict(), indent=2, sort_keys=True))
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    # tied tensors (T5 shared / encoder.embed_tokens) are stored once
    seen: dict[int, str] = {}
    unique = {}
    for k, v in state.items():
        ptr = v.data_ptr()
        if ptr in seen and v.numel() > 0:
            continue
        seen[ptr] = k
        unique[k] = v
    save_file(unique, str(folder / WEIGHTS_NAME))


def load_pretrained(
    folder, *, device: str | torch.device = "cpu", t5_tokenizer=None, clap_tokenizer=None
) -> GenAuModel:
    """Inverse of `save_pretrained` (tokenizers from the config's sources unless given)."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file

    folder = Path(folder)
    cfg = GenAuConfig.from_dict(json.loads((folder / CONFIG_NAME).read_text()))
    model = build_genau(cfg, t5_tokenizer=t5_tokenizer, clap_tokenizer=clap_tokenizer)
    state = load_file(str(folder / WEIGHTS_NAME))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"conditioner.t5.encoder.embed_tokens.weight", "conditioner.t5.shared.weight"}
    if unexpected or set(missing) - tied:
        raise ValueError(f"{folder}: weights do not match the config (missing {missing}, unexpected {unexpected})")
    return model.to(device).eval()
