"""Audio as the metric suite reads it: decoding and resampling (genau_core.audio.io / .resamplers), and each
backbone's input derived as its reference tool reads files (`InputPath`, `derive_input`).

Bad-input policy (documented in README, "Bad inputs"):
- unreadable / corrupt / zero-length file -> AudioError naming the file
- NaN or inf samples                      -> AudioError
- shorter than the protocol minimum (1 s) -> AudioError
- silent (all zeros)                      -> accepted as is (a valid, if poor, generation)
- stereo / multichannel                   -> averaged to mono (`read_audio`); scoring derives each
                                             backbone's input as its reference tool does (`derive_input`)
- any sample rate                         -> resampled with the named resampler
- longer than the protocol duration       -> the first `max_duration_s` seconds are kept (`load_audio`)

Resamplers (`RESAMPLERS`, `known_resamplers()`): soxr (HQ / VHQ / MQ), scipy polyphase, and the
reference tools' own: torchaudio's windowed sinc as `functional.resample` (audioldm_eval) and as
`transforms.Resample` (msclap) compute it (genau_core.audio.resample, no torchaudio needed), and
librosa.load's default (soxr HQ, then `fix_length`). `"reference"` is not a resampler but the
scoring default: each backbone's `InputPath.resampler`, the one its reference tool uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Decoding, writing and resampling live at the bottom layer; bench code and plugins import them from here.
from genau_core.audio.io import (  # noqa: F401
    AUDIO_EXTENSIONS,
    AudioError,
    DuplicateClipError,
    list_audio_files,
    load_audio,
    read_audio,
    read_audio_channels,
    wav_bytes,
    write_wav,
)
from genau_core.audio.resamplers import RESAMPLERS, resample

REFERENCE = "reference"  # the scoring default: each backbone's reference tool's resampler (InputPath.resampler)


def known_resamplers() -> tuple[str, ...]:
    """Every name `--resampler` accepts: the resamplers, then "reference" (each backbone's own)."""
    return (*sorted(RESAMPLERS), REFERENCE)


# "native": the backbone derives its own input from the decoded native audio (`derive_native`, e.g.
# stable-audio-metrics' stereo OpenL3 with one peak gain for both channels); the resampler is its tool's, fixed.
CHANNEL_MODES = ("mean", "first", "concatenate", "native")


@dataclass(frozen=True)
class InputPath:
    """How a backbone's reference tool turns a decoded file into the waveform its network gets
    (before the backbone's own `prepare` / crop): channel handling, mean removal, resampler.

    channels: "mean" (librosa.load's to_mono), "first" (audioldm_eval keeps `audio[0:1]`),
    "concatenate" (msclap's `reshape(-1)` of a (channels, samples) tensor: channel 0, then 1, ...).
    remove_mean: subtract the clip's mean before resampling, in float32 torch (audioldm_eval).
    resampler: the tool's own resampler, used when scoring asks for "reference".
    """

    name: str  # short tag, part of the embedding-cache key
    tool: str  # the code it follows, e.g. "audioldm_eval datasets/load_mel.py WaveDataset.read_from_file"
    channels: str
    remove_mean: bool
    resampler: str

    def __post_init__(self) -> None:
        if self.channels not in CHANNEL_MODES:
            raise ValueError(f"InputPath {self.name}: channels must be one of {CHANNEL_MODES}, not {self.channels!r}")
        if self.resampler not in RESAMPLERS:
            raise ValueError(f"InputPath {self.name}: unknown resampler {self.resampler!r}")

    def resampler_for(self, choice: str) -> str:
        """The resampler that runs when scoring asks for `choice` ("reference" -> the tool's own; a
        "native" path always runs its tool's own)."""
        return self.resampler if choice == REFERENCE or self.channels == "native" else choice

    def key(self, choice: str) -> str:
        """Embedding-cache tag: the path and the resampler that runs."""
        return f"{self.name}.{self.resampler_for(choice)}"

    def describe(self, choice: str) -> dict:
        return {
            "input_path": self.name,
            "follows": self.tool,
            "channels": self.channels,
            "remove_mean": self.remove_mean,
            "resampler": self.resampler_for(choice),
        }


# The default of a backbone that names no reference tool: read_audio's mono mixdown, soxr HQ.
PLAIN_INPUT = InputPath("mono-mean", "genau-bench: channels averaged, no mean removal", "mean", False, "soxr-hq")


def derive_input(audio: np.ndarray, sr: int, rate: int, path: InputPath, resampler: str = REFERENCE) -> np.ndarray:
    """A backbone's mono float32 input at `rate` from decoded `audio` ((samples,) or (samples, channels)
    at `sr`, as `read_audio_channels` returns it), following `path`; `resampler` "reference" = the tool's."""
    if path.channels == "native":
        raise ValueError(f"InputPath {path.name}: derived by its backbone's derive_native, not derive_input")
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    name = path.resampler_for(resampler)
    if data.shape[1] == 1 or path.channels == "first":
        x = data[:, 0]
    elif path.channels == "concatenate":  # msclap resamples the (channels, samples) tensor, then reshape(-1)
        rows = np.ascontiguousarray(data.T)
        if path.remove_mean:
            raise ValueError(f"InputPath {path.name}: mean removal of concatenated channels is not defined")
        return _resample_rows(rows, sr, rate, name).reshape(-1)
    else:
        x = np.mean(data.T, axis=0)  # librosa.to_mono on the (channels, samples) view it reads
    x = np.ascontiguousarray(x, dtype=np.float32)
    if path.remove_mean:
        import torch

        t = torch.from_numpy(x)
        x = (t - t.mean()).numpy()
    return resample(x, sr, rate, name)


def _resample_rows(rows: np.ndarray, sr: int, rate: int, resampler: str) -> np.ndarray:
    """(channels, samples) -> (channels, resampled). torchaudio's resamplers take the rows as one batch, as
    torchaudio does (one conv1d call: its float32 sums depend on the batch, so a row alone can differ in the
    last bit); the others run row by row."""
    if sr == rate:
        return rows
    if resampler.startswith("torchaudio-"):
        return np.ascontiguousarray(RESAMPLERS[resampler](rows, sr, rate), dtype=np.float32)
    return np.stack([resample(r, sr, rate, resampler) for r in rows])
