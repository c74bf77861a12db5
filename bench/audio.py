"""Decoding, mono mixdown and resampling: the single place audio enters the metric suite.

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
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.errors import GenauBenchError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


class AudioError(GenauBenchError, ValueError):
    """A file that cannot be scored; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _soxr(quality: str):
    def run(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
        import soxr

        return soxr.resample(x, sr_in, sr_out, quality=quality)

    return run


def _polyphase(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(sr_in, sr_out)
    return resample_poly(x, sr_out // g, sr_in // g).astype(np.float32)


def _torchaudio_sinc(kernel_dtype: str):
    """torchaudio's default Hann-windowed sinc (width 6, rolloff 0.99), its kernel built in float32
    (`functional.resample` on float32 audio) or in float64 (`transforms.Resample()`)."""

    def run(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
        import torch

        from genau_core.audio.resample import sinc_resample_numpy

        return sinc_resample_numpy(x, sr_in, sr_out, kernel_dtype=torch.float32 if kernel_dtype == "float32" else None)

    return run


def _librosa_soxr_hq(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """`librosa.resample(res_type="soxr_hq")`, as `librosa.load(sr=...)` calls it (librosa >= 0.10):
    soxr HQ, then `util.fix_length` to ceil(n * sr_out / sr_in), which zero-pads soxr's rounded
    length by one sample at the end for some lengths (44100 -> 48000 Hz, 88213 samples: 96014 -> 96015)."""
    import soxr

    y = soxr.resample(x, sr_in, sr_out, quality="HQ")
    n = int(np.ceil(x.shape[-1] * (float(sr_out) / sr_in)))
    return y[:n] if len(y) >= n else np.concatenate([y, np.zeros(n - len(y), dtype=y.dtype)])


RESAMPLERS = {
    "soxr-hq": _soxr("HQ"),
    "soxr-vhq": _soxr("VHQ"),
    "soxr-mq": _soxr("MQ"),
    "scipy-polyphase": _polyphase,
    "torchaudio-functional": _torchaudio_sinc("float32"),  # audioldm_eval WaveDataset.read_from_file
    "torchaudio-transforms": _torchaudio_sinc("float64"),  # msclap CLAPWrapper.read_audio
    "librosa-soxr-hq": _librosa_soxr_hq,  # laion_clap: librosa.load(path, sr=48000)
}
REFERENCE = "reference"  # the scoring default: each backbone's reference tool's resampler (InputPath.resampler)


def known_resamplers() -> tuple[str, ...]:
    """Every name `--resampler` accepts: the resamplers, then "reference" (each backbone's own)."""
    return (*sorted(RESAMPLERS), REFERENCE)


def resample(x: np.ndarray, sr_in: int, sr_out: int, resampler: str = "soxr-hq") -> np.ndarray:
    if sr_in == sr_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    try:
        fn = RESAMPLERS[resampler]
    except KeyError:
        hint = " ('reference' is resolved per backbone: InputPath.resampler_for)" if resampler == REFERENCE else ""
        raise ValueError(f"unknown resampler {resampler!r}{hint}; choose one of {sorted(RESAMPLERS)}") from None
    return np.ascontiguousarray(fn(np.asarray(x, dtype=np.float32), sr_in, sr_out), dtype=np.float32)


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
        return {"input_path": self.name, "follows": self.tool, "channels": self.channels,
                "remove_mean": self.remove_mean, "resampler": self.resampler_for(choice)}


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


def read_audio_channels(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a file to float32 (samples, channels) at its native rate, enforcing the bad-input policy."""
    path = Path(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001 - soundfile raises several types for corrupt/unknown files
        raise AudioError(path, f"cannot decode audio ({type(e).__name__}: {e})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "file holds no samples")
    if not np.isfinite(data).all():
        raise AudioError(path, "audio contains NaN or inf samples")
    return data, int(sr)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a file to mono float32 at its native rate, enforcing the bad-input policy."""
    data, sr = read_audio_channels(path)
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(mono, dtype=np.float32), sr


def load_audio(
    path: str | Path,
    sample_rate: int,
    *,
    resampler: str = "soxr-hq",
    min_duration_s: float = 1.0,
    max_duration_s: float | None = 10.0,
) -> np.ndarray:
    x, sr = read_audio(path)
    duration = len(x) / sr
    if duration < min_duration_s:
        raise AudioError(path, f"too short: {duration:.3f} s < minimum {min_duration_s} s")
    if max_duration_s is not None and duration > max_duration_s:
        x = x[: int(round(max_duration_s * sr))]
    return resample(x, sr, sample_rate, resampler)


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """32-bit float WAV with no timestamped chunk (libsndfile adds a PEAK chunk with the time of
    writing), so the same samples always give the same bytes and the same content hash. `audio` is
    (samples,) mono or (channels, samples), written interleaved (mono bytes are as before)."""
    import struct

    x = np.asarray(audio, dtype="<f4")
    if x.ndim > 2:
        raise ValueError(f"audio must be (samples,) or (channels, samples), got shape {x.shape}")
    channels = 1 if x.ndim == 1 else int(x.shape[0])
    data = np.ascontiguousarray(x.reshape(-1) if x.ndim == 1 else x.T.reshape(-1)).tobytes()
    frames = len(data) // (4 * channels)
    fmt = struct.pack("<HHIIHH", 3, channels, sample_rate, sample_rate * 4 * channels, 4 * channels, 32)
    fact = struct.pack("<I", frames)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<I", 4) + fact
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write a float waveform atomically (temp file + rename): a killed run leaves no partial clip."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(wav_bytes(audio, sample_rate))
    os.replace(tmp, path)


class DuplicateClipError(GenauBenchError, ValueError):
    """Two files in one folder give the same clip id (e.g. `a.wav` and `a.flac`)."""


def list_audio_files(folder: str | Path) -> list[Path]:
    """The audio files of `folder` (sorted), one per clip id (the file stem). Two files with one stem
    (`a.wav` and `a.flac`) are an error naming both: keeping either one silently changes the score."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith("."))
    by_stem: dict[str, list[Path]] = {}
    for p in files:
        by_stem.setdefault(p.stem, []).append(p)
    dups = {stem: ps for stem, ps in by_stem.items() if len(ps) > 1}
    if dups:
        first = next(iter(dups.values()))
        more = f" ({len(dups) - 1} more clip ids have several files)" if len(dups) > 1 else ""
        raise DuplicateClipError(
            f"{first[0].parent}: {' and '.join(p.name for p in first)} both give clip id {first[0].stem!r}{more}; "
            "keep one file per clip id (move or rename the others)"
        )
    return files
