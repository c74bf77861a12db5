"""GenAu-S / GenAu-L / GenAu-L-HQ (official release of snap-research/GenAU, HF `mali6/autocap`) and
the offline genau-tiny.

The model code is ours (`genau_core.genau`); the official files are loaded by path through an
explicit key mapping (`genau_core.genau.official`), with the release `.yaml` as the authority for
the architecture. Default inference settings:
- genau-s / genau-l follow the official evaluation path: `scripts/generate_and_eval.py` samples
  with the release yaml's `evaluation_params` (read from the yaml when it is found; without it,
  those of `settings/simple_runs/genau.yaml`: DDIM, 200 steps, guidance 3.5);
- genau-l-full-hq-data is the default model of `scripts/text_to_audio.py`,
  `scripts/inference_file.py` and `scripts/gradio_demo.py`; it takes `text_to_audio.py`'s
  defaults (100 DDIM steps, guidance 4.0; the Gradio demo's sliders start at the same values).
All use `ddim_eta=1.0`, the AudioCaps dataset id and one candidate. Weights: "raw" by default
(`generate_and_eval.py --strategy wo_ema`, `text_to_audio.py`); `weight_set="ema"` (`bench run
--weights ema`) samples with the checkpoint's `model_ema.*` copy, as `inference_file.py` and the
Gradio demo do. EMA is part of the checkpoint identity (`sha256:...+weights:ema`, so of the run
folder's settings hash and the leaderboard row's `checkpoint` column); the choice ("raw" / "ema",
with the EMA update count) is in the manifest's `generation.extra`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np

from bench.checkpoints import CheckpointNotFound, checkpoint_dirs, find_checkpoint, sha256_file
from bench.plugins.base import InferenceSettings, PluginInfo, TextToAudioPlugin

OFFICIAL_SOURCE = "hf:mali6/autocap (snap-research/GenAU)"
TINY_STEPS = 10
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
    """genau-tiny: by default the weights shipped in the package (trained by `genau train` on the demo split).

    `checkpoint=None`: `genau_core/genau/weights/genau-tiny/` (see `genau_core.genau.tiny_weights`);
    `checkpoint="random"`: the `genau-tiny` configuration built in-process with seed-0 random weights
    (HiFi-GAN vocoder); any other value: a folder written by `genau_core.genau.save_pretrained`.
    """

    SEED: ClassVar[int] = 0
    RANDOM: ClassVar[str] = "random"
    info = PluginInfo(
        name="genau-tiny",
        family="genau",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM (eta 1)", steps=TINY_STEPS, guidance=3.5, duration_s=10.0),
        training_data="the bench `demo` split only (10 synthesised 10 s clips with exact captions), trained by our "
        "`genau train` (VAE, then LDM) in a few CPU minutes: genau_core/genau/weights/genau-tiny/training.json; "
        "--model-checkpoint genau-tiny=random gives seed-0 random weights instead",
        text_encoder="tiny T5 encoder + tiny CLAP text tower (in-process tokenizers; frozen at their seed-0 random "
        "weights)",
        source="genau_core/genau/weights/genau-tiny (shipped; rebuilt by python -m bench.tiny_genau)",
        paper_params="",
        tiny=True,
        notes="Offline twin of GenAu: same pipeline (FIT, 1D-VAE, DDIM with guidance), tiny widths. The shipped "
        "weights "
        "use a Griffin-Lim inversion of the mel (32 fast-Griffin-Lim iterations) instead of a HiFi-GAN: a vocoder "
        "trained in a few CPU minutes is not recognisable audio, Griffin-Lim of the generated mel is; it also uses "
        "v-prediction and a normalised VAE input (genau_core.genau.tiny_weights says why). Trained on the 10 demo "
        "captions only: the tone prompts give a spectral peak near the captioned frequency, the noise prompts "
        "broadband noise (measurements in training.json); any other prompt gives one of these demo-like sounds. "
        f"{TINY_STEPS} DDIM steps by default (the official models use 200). " + _COMMON_NOTES,
    )

    @property
    def random(self) -> bool:
        return self.checkpoint == self.RANDOM

    @property
    def weights(self) -> str:
        return "random" if self.random else "tiny-trained"

    def _folder(self) -> Path:
        from genau_core.genau.tiny_weights import WEIGHTS_DIR

        return Path(self.checkpoint).expanduser() if self.checkpoint else WEIGHTS_DIR

    def _weights_file(self) -> Path:
        from genau_core.genau.model import WEIGHTS_NAME

        return self._folder() / WEIGHTS_NAME

    def checkpoint_status(self) -> tuple[bool, str]:
        if self.random:
            return True, f"built in-process: random weights (seed {self.SEED}), no files needed"
        f = self._weights_file()
        if f.exists():
            return True, str(f)
        if not self.checkpoint:
            return False, (
                f"{f} not found: the shipped genau-tiny weights are missing from this installation; rebuild them "
                "with `python -m bench.tiny_genau` or pass --model-checkpoint genau-tiny=random"
            )
        return False, f"{f} not found (a folder written by genau_core.genau.save_pretrained)"

    def checkpoint_identity(self) -> str:
        if self.random:
            return f"random:seed={self.SEED}"
        return "sha256:" + sha256_file(self._weights_file())

    def load(self) -> None:
        from genau_core.genau import GENAU_TINY, GenAuPipeline, build_genau, load_pretrained

        if self.random:
            self.model = build_genau(GENAU_TINY, device=self.device, seed=self.SEED)
        else:
            ok, status = self.checkpoint_status()
            if not ok:
                raise FileNotFoundError(f"{self.name}: {status}")
            self.model = load_pretrained(self._folder(), device=self.device)
        self.pipeline = GenAuPipeline(self.model)


WEIGHT_SETS = ("raw", "ema")  # genau_core.genau.official.WEIGHT_SETS (not imported here: it needs torch)
DEFAULT_WEIGHTS = "raw"  # official generate_and_eval.py --strategy wo_ema


class _OfficialGenAu(_GenAuPlugin):
    """Official release files; `checkpoint` may name the main .ckpt or a folder holding all files.
    `weight_set`: "raw" (default) or "ema" (see the module docstring)."""

    stem: ClassVar[str]  # release file name without extension: genau-full-s, genau-full-l, genau-l-full-hq-data
    defaults_from_yaml: ClassVar[bool] = True  # steps / guidance from the yaml's evaluation_params
    WEIGHT_SETS: ClassVar[tuple[str, ...]] = WEIGHT_SETS

    def __init__(self, checkpoint: str | None = None, device: str = "cpu", weight_set: str | None = None):
        super().__init__(checkpoint=checkpoint, device=device)
        self.weight_set = DEFAULT_WEIGHTS if weight_set is None else weight_set
        if self.weight_set not in WEIGHT_SETS:
            raise ValueError(f"{self.name}: weights {weight_set!r}: expected one of {', '.join(WEIGHT_SETS)}")
        if self.defaults_from_yaml:
            self.info = self._info_from_release_yaml()

    def _info_from_release_yaml(self) -> PluginInfo:
        """The class defaults, with steps / guidance from the release yaml's `evaluation_params`
        when the yaml is found (the yaml is the authority; `generate_and_eval.py` reads them there).
        An unreadable yaml leaves the class defaults: `load` then names the file and the problem."""
        info = type(self).info
        found, _ = self._locate()
        if "yaml" not in found:
            return info
        from genau_core.genau.official import OfficialCheckpointError, evaluation_defaults, read_release_yaml

        try:
            steps, guidance = evaluation_defaults(read_release_yaml(found["yaml"]))
        except OfficialCheckpointError:
            return info
        d = info.defaults
        steps = d.steps if steps is None else steps
        defaults = replace(d, steps=steps, guidance=d.guidance if guidance is None else guidance)
        if defaults == d:
            return info
        note = f" Defaults read from {found['yaml']} (evaluation_params)."
        return replace(info, defaults=defaults, notes=info.notes + note)

    def _file_table(self) -> list[tuple[str, str, str]]:
        release = "hf:mali6/autocap"
        return [
            ("ckpt", f"{self.stem}.ckpt", release),
            ("yaml", f"{self.stem}.yaml", release),
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
            return (
                False,
                f"{self.name}: missing {', '.join(missing)}. Put them in {where}, or pass their folder (or the main "
                f".ckpt) with --model-checkpoint {self.name}=PATH.",
            )
        return True, str(found["ckpt"])

    def checkpoint_identity(self) -> str:
        """The main checkpoint's sha256; with EMA weights `+weights:ema` is appended (the composite
        form other plugins use), so raw and EMA runs never share a run folder and the leaderboard's
        `checkpoint` column says which ran. Raw keeps the plain file hash (the file as published)."""
        found, missing = self._locate()
        if missing:
            raise FileNotFoundError(self.checkpoint_status()[1])
        digest = "sha256:" + sha256_file(found["ckpt"])
        return digest if self.weight_set == DEFAULT_WEIGHTS else f"{digest}+weights:{self.weight_set}"

    def generation_extra(self) -> dict:
        sel = getattr(self.model, "weight_selection", None)
        extra = sel.to_dict() if sel is not None else {"weights": self.weight_set}
        extra["weights_source"] = (
            "model_ema.* (official LitEma copy of the FIT; inference_file.py / Gradio demo)"
            if self.weight_set == "ema"
            else "state_dict model.* (raw; official generate_and_eval.py / text_to_audio.py)"
        )
        return extra

    def load(self) -> None:
        from genau_core.genau import GenAuPipeline
        from genau_core.genau.official import OfficialFiles, load_official_genau

        found, missing = self._locate()
        if missing:
            raise FileNotFoundError(self.checkpoint_status()[1])
        files = OfficialFiles(**found)
        self.model = load_official_genau(files, name=self.name, device=self.device, weights=self.weight_set)
        self.pipeline = GenAuPipeline(self.model)


_YAML_NOTE = (
    " Architecture from the release yaml beside the checkpoint (the authority); the named genau-s / genau-l "
    "configs of genau_core are fitted to the paper's parameter counts only, since the release yamls are not in "
    "the official repository."
)


class GenAuSmall(_OfficialGenAu):
    stem = "genau-full-s"
    info = PluginInfo(
        name="genau-s",
        family="genau",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM (eta 1)", steps=200, guidance=3.5, duration_s=10.0),
        training_data="AutoReCap (AudioCaps, Clotho, WavCaps, AudioSet and VGGSound re-captioned by AutoCap; ~760k "
        "clips)",
        text_encoder="FLAN-T5-large (pooled) + LAION-CLAP HTSAT-tiny text tower",
        source=OFFICIAL_SOURCE + " genau-full-s",
        paper_params="493M",
        notes=_COMMON_NOTES + _YAML_NOTE + " Weights: raw (official generate_and_eval.py) unless --weights ema.",
    )


class GenAuLarge(_OfficialGenAu):
    stem = "genau-full-l"
    info = replace(GenAuSmall.info, name="genau-l", source=OFFICIAL_SOURCE + " genau-full-l", paper_params="1.25B")


class GenAuLargeHQ(_OfficialGenAu):
    """genau-l-full-hq-data: the default model of the official text_to_audio.py, inference_file.py
    and gradio_demo.py; its defaults are text_to_audio.py's (100 steps, guidance 4.0), not the yaml's."""

    stem = "genau-l-full-hq-data"
    defaults_from_yaml = False
    info = PluginInfo(
        name="genau-l-full-hq-data",
        family="genau",
        native_sample_rate=16_000,
        defaults=InferenceSettings(sampler="DDIM (eta 1)", steps=100, guidance=4.0, duration_s=10.0),
        training_data="AutoReCap-XL filtered to CLAP score >= 0.4 (20.7M clips; official GenAU README)",
        text_encoder="FLAN-T5-large (pooled) + LAION-CLAP HTSAT-tiny text tower",
        source=OFFICIAL_SOURCE + " genau-l-full-hq-data",
        paper_params="",  # not in the paper; the official README lists 1.25B parameters
        notes="The default model of the official scripts/text_to_audio.py, inference_file.py and gradio_demo.py; "
        "defaults from text_to_audio.py (100 DDIM steps, guidance 4.0, raw weights, one candidate); inference_file.py "
        "uses 200 steps, EMA weights and 3 CLAP-re-ranked candidates, the Gradio demo 100 steps and EMA weights "
        "(--weights ema). 1.25B parameters per the official README. DDIM eta=1.0, AudioCaps dataset id, "
        "classifier-free guidance against the empty prompt; native 10.24 s window cut to the requested duration, "
        "peak-normalised to 0.8; no CLAP re-ranking." + _YAML_NOTE,
    )
