"""GenAu-S / GenAu-L (official release of snap-research/GenAU, HF `mali6/autocap`) and the offline genau-tiny.

The model code is ours (`genau_core.genau`); the official files are loaded by path through an
explicit key mapping (`genau_core.genau.official`). Default inference settings follow the
official evaluation path: `scripts/generate_and_eval.py` samples with the config's
`evaluation_params` (DDIM, 200 steps, guidance 3.5 in `settings/simple_runs/genau.yaml`),
`ddim_eta=1.0`, dataset id of AudioCaps, one candidate; `scripts/text_to_audio.py` uses
100 steps and guidance 4.0 instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np

from bench.checkpoints import CheckpointNotFound, checkpoint_dirs, find_checkpoint, sha256_file
from bench.plugins.base import InferenceSettings, PluginInfo, TextToAudioPlugin

OFFICIAL_SOURCE = "hf:mali6/autocap (snap-research/GenAU)"
_COMMON_NOTES = (
    "DDIM eta=1.0, AudioCaps dataset id, classifier-free guidance against the empty prompt; "
    "defaults from the official evaluation (settings/simple_runs/genau.yaml evaluation_params via "
    "scripts/generate_and_eval.py; scripts/text_to_audio.py uses 100 steps, guidance 4.0). "
    "Generates the native 10.24 s window, cut to the requested duration, each clip peak-normalised "
    "to 0.8 as the official save_waveform; one candidate, no CLAP re-ranking."
)


class _GenAuPlugin(TextToAudioPlugin):
    model = None
    pipeline = None

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()
            self._loaded = True

    def parameter_count(self) -> int:
        self._ensure_loaded()
        return int(self.model.parameter_count())

    def component_parameters(self) -> dict[str, int]:
        self._ensure_loaded()
        return self.model.component_parameters()

    def _generate(self, prompts: Sequence[str], *, seeds, steps, guidance, duration_s) -> list[np.ndarray]:
        self._ensure_loaded()
        return self.pipeline(list(prompts), list(seeds), steps=steps, guidance=guidance, duration_s=duration_s)


class GenAuTiny(_GenAuPlugin):
    """The `genau-tiny` configuration with fixed-seed random weights (or our own trained weights via --checkpoint)."""

    SEED: ClassVar[int] = 0
    info = PluginInfo(
        name="genau-tiny",
        family="genau",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM", steps=10, guidance=3.5, duration_s=10.0),
        training_data="none: random weights (seed 0); --checkpoint loads a folder written by genau_core save_pretrained",
        text_encoder="tiny T5 encoder + tiny CLAP text tower (in-process tokenizers)",
        source="genau_core config genau-tiny (built in-process)",
        paper_params="",
        tiny=True,
        notes="Offline twin of GenAu: same pipeline (FIT, 1D-VAE, HiFi-GAN 16 kHz), tiny widths; "
        "10 DDIM steps by default (the official models use 200) so a batch of 4 runs in seconds on CPU. "
        + _COMMON_NOTES,
    )

    @property
    def weights(self) -> str:
        return "tiny-trained" if self.checkpoint else "random"

    def _weights_file(self) -> Path:
        from genau_core.genau.model import WEIGHTS_NAME

        return Path(self.checkpoint).expanduser() / WEIGHTS_NAME

    def checkpoint_status(self) -> tuple[bool, str]:
        if not self.checkpoint:
            return True, f"built in-process: random weights (seed {self.SEED}), no files needed"
        f = self._weights_file()
        return (f.exists(), str(f) if f.exists() else f"{f} not found (a folder written by genau_core.genau.save_pretrained)")

    def checkpoint_identity(self) -> str:
        if not self.checkpoint:
            return f"random:seed={self.SEED}"
        return "sha256:" + sha256_file(self._weights_file())

    def load(self) -> None:
        from genau_core.genau import GENAU_TINY, GenAuPipeline, build_genau, load_pretrained

        if self.checkpoint:
            ok, status = self.checkpoint_status()
            if not ok:
                raise FileNotFoundError(f"{self.name}: {status}")
            self.model = load_pretrained(Path(self.checkpoint).expanduser(), device=self.device)
        else:
            self.model = build_genau(GENAU_TINY, device=self.device, seed=self.SEED)
        self.pipeline = GenAuPipeline(self.model)


class _OfficialGenAu(_GenAuPlugin):
    """Official release files; `checkpoint` may name the main .ckpt or a folder holding all files."""

    size: ClassVar[str]

    def _file_table(self) -> list[tuple[str, str, str]]:
        release = "hf:mali6/autocap"
        return [
            ("ckpt", f"genau-full-{self.size}.ckpt", release),
            ("yaml", f"genau-full-{self.size}.yaml", release),
            ("vae_ckpt", "1dvae_64_344999.ckpt", release),
            ("hifigan_ckpt", "hifigan_16k_64bins.ckpt", release),
            ("hifigan_json", "hifigan_16k_64bins.json", release),
            ("clap_ckpt", "clap_htsat_tiny.pt", release),
            ("t5_dir", "flan-t5-large", "folder: a snapshot of hf:google/flan-t5-large"),
            ("roberta_dir", "roberta-base", "folder: a snapshot of hf:roberta-base, the CLAP tokenizer"),
        ]

    def _search_dirs(self) -> list[Path]:
        dirs: list[Path] = []
        if self.checkpoint:
            p = Path(self.checkpoint).expanduser()
            dirs.append(p if p.is_dir() else p.parent)
        return dirs + checkpoint_dirs()

    def _locate(self) -> tuple[dict[str, Path], list[str]]:
        found: dict[str, Path] = {}
        missing: list[str] = []
        explicit = Path(self.checkpoint).expanduser() if self.checkpoint else None
        for key, filename, what in self._file_table():
            try:
                if key == "ckpt" and explicit is not None and explicit.is_file():
                    found[key] = find_checkpoint(filename, explicit, what=what)
                    continue
                local = next((d / filename for d in self._search_dirs() if (d / filename).exists()), None)
                found[key] = local if local is not None else find_checkpoint(filename, what=what)
            except CheckpointNotFound:
                missing.append(f"{filename} [{what}]")
        return found, missing

    def checkpoint_status(self) -> tuple[bool, str]:
        found, missing = self._locate()
        if missing:
            where = " or ".join(str(d) for d in self._search_dirs())
            return False, f"{self.name}: missing {', '.join(missing)}. Put them in {where}, or pass their folder (or the main .ckpt) as the checkpoint."
        return True, str(found["ckpt"])

    def checkpoint_identity(self) -> str:
        found, missing = self._locate()
        if missing:
            raise FileNotFoundError(self.checkpoint_status()[1])
        return "sha256:" + sha256_file(found["ckpt"])

    def load(self) -> None:
        from genau_core.genau import GenAuPipeline
        from genau_core.genau.official import OfficialFiles, load_official_genau

        found, missing = self._locate()
        if missing:
            raise FileNotFoundError(self.checkpoint_status()[1])
        self.model = load_official_genau(OfficialFiles(**found), name=self.name, device=self.device)
        self.pipeline = GenAuPipeline(self.model)


class GenAuSmall(_OfficialGenAu):
    size = "s"
    info = PluginInfo(
        name="genau-s",
        family="genau",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM", steps=200, guidance=3.5, duration_s=10.0),
        training_data="AutoReCap (AudioCaps, Clotho, WavCaps, AudioSet and VGGSound re-captioned by AutoCap; ~760k clips)",
        text_encoder="FLAN-T5-large (pooled) + LAION-CLAP HTSAT-tiny text tower",
        source=OFFICIAL_SOURCE + " genau-full-s",
        paper_params="493M",
        notes=_COMMON_NOTES,
    )


class GenAuLarge(_OfficialGenAu):
    size = "l"
    info = PluginInfo(
        name="genau-l",
        family="genau",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM", steps=200, guidance=3.5, duration_s=10.0),
        training_data="AutoReCap (AudioCaps, Clotho, WavCaps, AudioSet and VGGSound re-captioned by AutoCap; ~760k clips)",
        text_encoder="FLAN-T5-large (pooled) + LAION-CLAP HTSAT-tiny text tower",
        source=OFFICIAL_SOURCE + " genau-full-l",
        paper_params="1.25B",
        notes=_COMMON_NOTES,
    )
