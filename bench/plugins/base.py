"""The one interface every text-to-audio model implements (the harness knows nothing else).

A plugin is described by class attributes (name, native sample rate, default inference
settings from the model's paper / official code, training-data note, source) and does two
things: `load()` its weights and `generate(...)` waveforms. The protocol (one candidate per
prompt, no CLAP re-ranking, 10 s, 16 kHz output) is applied here for every model: plugins
implement `_generate` at their native rate and channel count (`native_sample_rate`,
`native_channels`); `generate` downmixes (channel mean) and resamples to the protocol rate with the
protocol's named resampler and records that it did. `generate(..., native=True)` returns the
native audio instead (only cut / zero-padded to the exact duration), for a run store that keeps
what the model produced.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, ClassVar, Sequence, TypeVar

import numpy as np

from bench.audio import resample
from bench.errors import MissingFileError
from bench.protocol import PROTOCOL

if TYPE_CHECKING:
    import torch

Found = TypeVar("Found")


@dataclass(frozen=True)
class InferenceSettings:
    sampler: str
    steps: int
    guidance: float
    duration_s: float = 10.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PluginInfo:
    """Static facts shown by `bench models` and copied into every manifest / leaderboard row."""

    name: str
    family: str
    native_sample_rate: int
    defaults: InferenceSettings
    training_data: str
    text_encoder: str
    source: str
    paper_params: str = ""
    tiny: bool = False
    notes: str = ""
    native_channels: int = 1  # 2: `_generate` returns (2, samples) arrays (e.g. 44.1 kHz stereo models)
    license: str = ""  # the weights' license terms, when they restrict use (shown by `bench models`)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["defaults"] = self.defaults.to_dict()
        return d


@dataclass
class GenerationRecord:
    """What actually happened in one `generate` call, for the run manifest."""

    native_sample_rate: int
    output_sample_rate: int
    resampled: bool
    resampler: str | None
    native_channels: int = 1
    downmix: str | None = None  # how several native channels became the protocol's mono ("mean"), or None
    native_output: bool = False  # `generate(native=True)`: the returned audio is the native audio
    extra: dict = field(default_factory=dict)  # run-level facts a plugin reports (`generation_extra`)
    prompts: list[dict] = field(default_factory=list)  # one dict per prompt of the call (`prompt_records`)

    def to_manifest(self) -> dict:
        """The run-level part (per-prompt records go to the manifest's clips)."""
        d = {
            "native_sample_rate": self.native_sample_rate,
            "output_sample_rate": self.output_sample_rate,
            "resampled": self.resampled,
            "resampler": self.resampler,
        }
        if self.native_channels != 1 or self.native_output:  # absent for mono plugins: their manifests are unchanged
            d.update(native_channels=self.native_channels, downmix=self.downmix, native_output=self.native_output)
        if self.extra:
            d["extra"] = dict(self.extra)
        return d


def clip_seed(base_seed: int, clip_id: str) -> int:
    """Per-clip seed that depends only on the run seed and the clip id.

    Generation is then independent of sharding and of which clips an earlier,
    interrupted run already finished.
    """
    digest = hashlib.sha256(f"{base_seed}:{clip_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class TextToAudioPlugin(ABC):
    info: ClassVar[PluginInfo]

    def __init__(self, checkpoint: str | None = None, device: str = "cpu"):
        self.checkpoint = checkpoint
        self.device = device
        self._loaded = False
        self.last_record: GenerationRecord | None = None

    # -- identity --------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def output_sample_rate(self) -> int:
        return PROTOCOL.sample_rate

    @abstractmethod
    def checkpoint_status(self) -> tuple[bool, str]:
        """(available, where it is or what is missing and how to get it); cheap, loads nothing."""

    @abstractmethod
    def checkpoint_identity(self) -> str:
        """File sha256 ("sha256:...") or hub revision ("hub:<id>@<rev>") or "random:seed=N" (tiny)."""

    @property
    def weights(self) -> str:
        """'official' for released checkpoints, 'random' / 'tiny-trained' for the offline twins."""
        return "random" if self.info.tiny else "official"

    @abstractmethod
    def parameter_count(self) -> int:
        """Parameters of the loaded model (all components that run at inference)."""

    # -- work ------------------------------------------------------------------------
    def prompt_records(self, prompts: Sequence[str]) -> list[dict]:
        """Per-prompt facts to record with each clip (e.g. conditioning derived from the prompt).

        Must be deterministic in the prompt and must not need the weights (callable before `load`,
        so a run manifest can list them before generating). `generate` puts them in
        `last_record.prompts`. Default: nothing."""
        return [{} for _ in prompts]

    def generation_extra(self) -> dict:
        """Run-level facts to record (e.g. which auxiliary input file was used). Default: nothing."""
        return {}

    @abstractmethod
    def load(self) -> None:
        """Build / load the weights. Raises a clear error naming missing files."""

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()
            self._loaded = True

    def _found_or_raise(self, found: Found | None, status: str) -> Found:
        """What a checkpoint lookup found, or MissingFileError (a FileNotFoundError) naming this model and the
        lookup's status (which ends with the flag that fixes it)."""
        if found is None:
            raise MissingFileError(f"{self.name}: {status}")
        return found

    @abstractmethod
    def _generate(
        self, prompts: Sequence[str], *, seeds: Sequence[int], steps: int, guidance: float, duration_s: float
    ) -> list[np.ndarray]:
        """One float32 waveform per prompt at `info.native_sample_rate`; one candidate each.

        Mono plugins return (samples,) arrays, plugins with `info.native_channels` = C > 1 (C, samples)."""

    def generate(
        self,
        prompts: Sequence[str],
        *,
        seed: int | Sequence[int],
        steps: int | None = None,
        guidance: float | None = None,
        duration: float | None = None,
        batch_size: int = 8,
        native: bool = False,
    ) -> list[np.ndarray]:
        """Waveforms at the protocol rate (16 kHz, mono: the channel mean), exactly `duration` seconds each.

        `seed` is one int (prompt i gets seed + i) or one seed per prompt. `native=True`: the model's own
        audio instead, at `info.native_sample_rate` with `info.native_channels` channels ((samples,) when
        mono, (channels, samples) otherwise), only cut or zero-padded to exactly `duration` seconds.
        """
        self._ensure_loaded()
        d = self.info.defaults
        steps = d.steps if steps is None else steps
        guidance = d.guidance if guidance is None else guidance
        duration = d.duration_s if duration is None else duration
        seeds = [seed + i for i in range(len(prompts))] if isinstance(seed, int) else list(seed)
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        records = self.prompt_records(list(prompts))
        if len(records) != len(prompts):
            raise ValueError(f"{self.name}: prompt_records gave {len(records)} records for {len(prompts)} prompts")
        out: list[np.ndarray] = []
        for start in range(0, len(prompts), batch_size):
            waves = self._generate(
                list(prompts[start : start + batch_size]),
                seeds=seeds[start : start + batch_size],
                steps=steps,
                guidance=guidance,
                duration_s=duration,
            )
            out.extend(waves)
        native_sr, channels = self.info.native_sample_rate, self.info.native_channels
        waves = [_native_channels(w, channels, self.name) for w in out]
        if native:
            n = int(round(duration * native_sr))
            result = [_fit_length(w, n) for w in waves]
            target, resampled, downmix = native_sr, False, None
        else:
            target = PROTOCOL.sample_rate
            resampled, downmix = native_sr != target, "mean" if channels > 1 else None
            n = int(round(duration * target))
            mono = [w.mean(axis=0, dtype=np.float32) if w.ndim == 2 else w for w in waves]
            result = [_fit_length(resample(w, native_sr, target, PROTOCOL.resampler), n) for w in mono]
        self.last_record = GenerationRecord(
            native_sample_rate=native_sr,
            output_sample_rate=target,
            resampled=resampled,
            resampler=PROTOCOL.resampler if resampled else None,
            native_channels=channels,
            downmix=downmix,
            native_output=native,
            extra=self.generation_extra(),
            prompts=records,
        )
        return result


def cpu_generators(seeds: Sequence[int]) -> list["torch.Generator"]:
    """One CPU generator per prompt: a clip's noise depends neither on its batch nor on the device."""
    import torch  # here, so that listing plugins does not import torch

    return [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]


class RandomWeightsTwin:
    """Mixin (listed before the plugin base) for an offline twin whose weights are built in-process from `seed`."""

    seed: int = 0

    def checkpoint_status(self) -> tuple[bool, str]:
        return True, f"built in-process (random weights, seed {self.seed})"

    def checkpoint_identity(self) -> str:
        return f"random:seed={self.seed}"


class SamplingModelPlugin(TextToAudioPlugin):
    """A plugin around a model object with `sample(prompts, generators, ...)` and `parameter_count()`."""

    model = None

    def parameter_count(self) -> int:
        self._ensure_loaded()
        return self.model.parameter_count()

    def _generate(self, prompts: Sequence[str], *, seeds, steps, guidance, duration_s) -> list[np.ndarray]:
        waves = self.model.sample(
            list(prompts), cpu_generators(seeds), steps=steps, guidance=guidance, duration_s=duration_s
        )
        return [w.numpy().astype(np.float32) for w in waves]


def _native_channels(w, channels: int, name: str) -> np.ndarray:
    """A plugin's waveform as float32 (samples,) when mono, (channels, samples) otherwise; a shape that
    does not match the declared channel count is an error (never silently flattened)."""
    x = np.asarray(w, np.float32)
    if channels == 1:
        if x.ndim > 1 and sum(d > 1 for d in x.shape) <= 1:  # (1, samples), (samples, 1): as before, flattened
            x = x.reshape(-1)
        if x.ndim != 1:
            raise ValueError(f"{name}: _generate gave shape {x.shape}; a mono plugin returns (samples,)")
        return x
    if x.ndim != 2 or x.shape[0] != channels:
        raise ValueError(
            f"{name}: _generate gave shape {x.shape}; native_channels={channels} needs ({channels}, samples)"
        )
    return x


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Pad with zeros or cut (the last axis) so every clip is exactly the requested duration."""
    if x.shape[-1] >= n:
        return np.ascontiguousarray(x[..., :n])
    pad = [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])]
    return np.pad(x, pad).astype(np.float32, copy=False)
