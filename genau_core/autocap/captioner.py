"""AutoCap behind the `genau_core.captioning.Captioner` interface, plus file captioning.

from genau_core.autocap import load_captioner
cap = load_captioner("autocap-tiny")
cap.caption([waveform_32k], [{"title": "..."}])          # -> ["a steady pure sine tone ..."]
cap.caption_files(["a.wav", "b.flac"], on_error="skip")  # -> [FileCaption(...), ...]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Mapping, Sequence

import numpy as np
import torch

from genau_core.audio.io import AudioError
from genau_core.autocap.configs import GenerationSettings
from genau_core.autocap.data import load_clip
from genau_core.autocap.model import AutoCapModel
from genau_core.autocap.text import check_metadata
from genau_core.captioning import Captioner


@dataclass
class FileCaption:
    path: Path
    caption: str | None
    error: str | None = None  # AudioError message naming the file, when on_error="skip"


def _check_waveform(x, index: int) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"AutoCap: waveform {index} has shape {a.shape}; expected 1-D mono samples")
    if a.size == 0:
        raise ValueError(f"AutoCap: waveform {index} is empty")
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"AutoCap: waveform {index} has dtype {a.dtype}; expected float samples in [-1, 1]")
    if not np.isfinite(a).all():
        raise ValueError(f"AutoCap: waveform {index} contains NaN or inf samples")
    return np.ascontiguousarray(a, dtype=np.float32)


class AutoCapCaptioner(Captioner):
    name: ClassVar[str] = "autocap"
    sample_rate: ClassVar[int] = 32000
    max_duration_s: ClassVar[float] = 10.0

    def __init__(
        self, model: AutoCapModel, *, model_name: str | None = None, num_beams: int | None = None, progress: bool = True
    ):
        self.model = model.train(False)
        if model_name is not None:
            self.name = model_name  # instance value: which AutoCap (autocap / autocap-tiny / folder)
        fe = model.cfg.frontend
        if fe.sample_rate != type(self).sample_rate or fe.clip_seconds != type(self).max_duration_s:
            self.sample_rate = fe.sample_rate
            self.max_duration_s = fe.clip_seconds
        g = model.cfg.generation
        self.generation = g if num_beams is None else GenerationSettings(**{**g.__dict__, "num_beams": int(num_beams)})
        self.progress = progress

    @property
    def identity(self) -> str:
        return self.model.identity

    def caption(
        self,
        waveforms: Sequence[np.ndarray],
        metadata: Sequence[Mapping[str, str]] | None = None,
        *,
        batch_size: int = 8,
    ) -> list[str]:
        if isinstance(waveforms, np.ndarray) and waveforms.ndim == 1:
            raise TypeError("AutoCap: caption() takes a sequence of waveforms, not one waveform")
        clips = [_check_waveform(w, i) for i, w in enumerate(waveforms)]
        meta = check_metadata(metadata, len(clips))
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out: list[str] = []
        bar = None
        if self.progress and len(clips) > batch_size:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(clips), desc=f"{self.name}: captioning", unit="clip")
        with torch.inference_mode():
            for k in range(0, len(clips), batch_size):
                batch = self.model.prepare(clips[k : k + batch_size], meta[k : k + batch_size])
                out.extend(self.model.generate(batch, self.generation))
                if bar is not None:
                    bar.update(len(clips[k : k + batch_size]))
        if bar is not None:
            bar.close()
        return out

    def caption_files(
        self,
        paths: Sequence[str | Path],
        metadata: Sequence[Mapping[str, str]] | None = None,
        *,
        batch_size: int = 8,
        on_error: str = "raise",
    ) -> list[FileCaption]:
        """Caption audio files (any rate / channels; the first `max_duration_s` seconds).
        A file that cannot be used raises its `AudioError` (file and reason) with
        `on_error="raise"`; with "skip" it gets `caption=None` and the error text."""
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        paths = [Path(p) for p in paths]
        meta = check_metadata(metadata, len(paths))
        results: list[FileCaption | None] = [None] * len(paths)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(paths), desc=f"{self.name}: captioning", unit="file")
        for k in range(0, len(paths), batch_size):
            chunk = list(range(k, min(k + batch_size, len(paths))))
            clips, ok = [], []
            for i in chunk:
                try:
                    clips.append(load_clip(paths[i], self.model.cfg))
                    ok.append(i)
                except AudioError as e:
                    if on_error == "raise":
                        raise
                    results[i] = FileCaption(paths[i], None, str(e))
            if clips:
                with torch.inference_mode():
                    caps = self.model.generate(self.model.prepare(clips, [meta[i] for i in ok]), self.generation)
                for i, c in zip(ok, caps):
                    results[i] = FileCaption(paths[i], c)
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return [r for r in results if r is not None]


def load_captioner(
    name: str = "autocap-tiny",
    *,
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    num_beams: int | None = None,
    progress: bool = True,
    allow_pickle: bool = False,
) -> AutoCapCaptioner:
    """`autocap` (official release files), `autocap-tiny` (shipped) or a save_pretrained folder."""
    from genau_core.autocap.pretrained import load_autocap

    model = load_autocap(name, checkpoint=checkpoint, device=device, allow_pickle=allow_pickle)
    label = name if name in ("autocap", "autocap-tiny") else Path(name).name
    return AutoCapCaptioner(model, model_name=label, num_beams=num_beams, progress=progress)
