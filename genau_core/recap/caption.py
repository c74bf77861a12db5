"""Captioners by name, loaded lazily, and batched captioning through `Captioner` only.

Names:
    autocap-tiny   the small AutoCap shipped in the package (genau_core.autocap)
    autocap        the official AutoCap checkpoint (`--checkpoint` names its folder / file)
    pkg.module:obj a Captioner subclass or a factory returning a Captioner; called with the
                   keyword arguments it accepts among `device` and `checkpoint`

The pipeline never imports a model before it needs one, so `genau recap --help` and the
segment planning run without torch or the AutoCap weights.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Sequence

import numpy as np

from genau_core.captioning import Captioner
from genau_core.errors import GenauBenchError

BUILTIN = ("autocap-tiny", "autocap")


class CaptionerError(GenauBenchError, RuntimeError):
    """A captioner that cannot be found, built or run; the message names it and why."""


def _autocap(name: str, device: str, checkpoint: str | None) -> Captioner:
    try:
        mod = importlib.import_module("genau_core.autocap")
    except ImportError as e:
        raise CaptionerError(
            f"captioner {name!r} needs genau_core.autocap, which cannot be imported here ({e})"
        ) from None
    loader = getattr(mod, "load_captioner", None)
    if loader is None:
        raise CaptionerError(
            f"genau_core.autocap has no load_captioner(name, device=..., checkpoint=...) to build {name!r}"
        )
    return _call(loader, name, device=device, checkpoint=checkpoint)


def _call(fn, *args, device: str, checkpoint: str | None):
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs: dict = {}
    if "device" in params or takes_any:
        kwargs["device"] = device
    if checkpoint is not None:
        if not ("checkpoint" in params or takes_any):
            raise CaptionerError(
                f"{getattr(fn, '__qualname__', fn)} takes no checkpoint, but one was given ({checkpoint})"
            )
        kwargs["checkpoint"] = checkpoint
    return fn(*args, **kwargs)


def load_captioner(spec: str, *, device: str = "cpu", checkpoint: str | None = None) -> Captioner:
    if spec in BUILTIN:
        cap = _autocap(spec, device, checkpoint)
    elif ":" in spec:
        module, _, attr = spec.partition(":")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise CaptionerError(f"cannot import captioner {spec!r} ({type(e).__name__}: {e})") from None
        cap = _call(obj, device=device, checkpoint=checkpoint)
    else:
        raise CaptionerError(f"unknown captioner {spec!r}: one of {', '.join(BUILTIN)} or 'package.module:Class'")
    if not isinstance(cap, Captioner):
        raise CaptionerError(f"{spec!r} built a {type(cap).__name__}, not a genau_core.captioning.Captioner")
    return cap


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; anything else unchanged."""
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def captioner_label(cap: Captioner) -> str:
    """What every manifest row records about its captioner: name and checkpoint identity."""
    return f"{cap.name}@{cap.identity}"


def normalize_caption(text: str) -> str:
    return " ".join(str(text).split())


def caption_waves(
    cap: Captioner, waves: Sequence[np.ndarray], metadata: Sequence[dict[str, str]], *, batch_size: int
) -> list[str]:
    """Captions for `waves` (mono float32 at `cap.sample_rate`), in order, whitespace-normalised."""
    if len(waves) != len(metadata):
        raise ValueError(f"{len(waves)} waveforms but {len(metadata)} metadata entries")
    if not waves:
        return []
    out = cap.caption(list(waves), list(metadata), batch_size=batch_size)
    if len(out) != len(waves):
        raise CaptionerError(f"captioner {cap.name!r} returned {len(out)} captions for {len(waves)} clips")
    return [normalize_caption(c) for c in out]
