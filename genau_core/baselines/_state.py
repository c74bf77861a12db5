"""Reading official checkpoint files and loading mapped state dicts strictly, with clear reports."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

import torch
from torch import nn

# One checkpoint error type for every reader (genau_core.errors); the old name stays importable from here.
from genau_core.errors import CheckpointMappingError

ALLOW_PICKLE_ENV = "GENAU_BENCH_ALLOW_PICKLE"


class _Inert:
    """Stands in for any pickled object outside the tensor allowlist (Lightning callbacks, OmegaConf
    hyper-parameters, ...): takes any arguments and state, runs nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # bytes of numpy scalars under pickle protocol 2
    ("torch", "Size"),
    ("torch", "device"),
    ("torch", "dtype"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


def _tensor_only_pickle_module():
    """A pickle module whose Unpickler resolves only tensor-rebuilding globals; every other class
    becomes an inert stand-in, so a training checkpoint loads without its training packages and
    without running code from the file."""
    import pickle
    import types

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in _ALLOWED_GLOBALS or (module == "torch._utils" and name.startswith("_rebuild")) or (
                module == "torch" and name.endswith("Storage")
            ):
                return super().find_class(module, name)
            if module.startswith("numpy") and name.endswith("DType"):
                return super().find_class(module, name)
            return type(name, (_Inert,), {"__module__": f"inert.{module}"})

    mod = types.ModuleType("tensor_only_pickle")
    mod.Unpickler = Unpickler
    mod.load = pickle.load
    mod.__name__ = "tensor_only_pickle"
    return mod


def read_checkpoint(path: str | Path, *, what: str, container: str | None = "state_dict") -> dict[str, torch.Tensor]:
    """The state dict of a `torch.save`d file (a Lightning `.ckpt` keeps it under "state_dict").

    Tries `weights_only=True`; a training checkpoint that also pickles other objects (callbacks,
    hyper-parameters) is then read with an unpickler that rebuilds tensors only and replaces every
    other object by an inert stand-in (no code from the file runs, no training packages needed).
    Memory-maps when the file format allows it. GENAU_BENCH_ALLOW_PICKLE=1 falls back to plain
    pickle for a trusted file that needs it.
    """
    path = Path(path)
    attempts = [dict(weights_only=True), dict(weights_only=False, pickle_module=_tensor_only_pickle_module())]
    if os.environ.get(ALLOW_PICKLE_ENV, "") == "1":
        attempts.append(dict(weights_only=False))
    obj = None
    errors = []
    for kwargs in attempts:
        for mmap in (True, False):
            try:
                obj = torch.load(path, map_location="cpu", mmap=mmap, **kwargs)
                break
            except Exception as e:  # torch raises several types for legacy / unsafe / corrupt files
                errors.append(f"{type(e).__name__}: {e}")
        if obj is not None:
            break
    if obj is None:
        hint = "" if os.environ.get(ALLOW_PICKLE_ENV, "") == "1" else f" If you trust the file, {ALLOW_PICKLE_ENV}=1 also tries plain pickle."
        raise CheckpointMappingError(f"{path}: cannot read {what} ({errors[-1][:300]}).{hint}")
    if container is not None and isinstance(obj, Mapping) and isinstance(obj.get(container), Mapping):
        obj = obj[container]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointMappingError(f"{path}: {what}: expected a state dict{f' under {container!r}' if container else ''}")
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if len(state) != len(obj):
        odd = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)][:5]
        raise CheckpointMappingError(f"{path}: {what}: non-tensor entries in the state dict, e.g. {odd}")
    return state


_WEIGHT_NORM_SUFFIXES = (
    (".weight_g", "g"),
    (".weight_v", "v"),
    (".parametrizations.weight.original0", "g"),
    (".parametrizations.weight.original1", "v"),
)


def fold_weight_norm(sd: Mapping[str, torch.Tensor], *, what: str) -> dict[str, torch.Tensor]:
    """`weight_g`/`weight_v` (torch.nn.utils.weight_norm, old or parametrization names) -> `weight`."""
    out: dict[str, torch.Tensor] = {}
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        for suffix, slot in _WEIGHT_NORM_SUFFIXES:
            if key.endswith(suffix):
                pairs.setdefault(key[: -len(suffix)], {})[slot] = value
                break
        else:
            out[key] = value
    for prefix, gv in pairs.items():
        if set(gv) != {"g", "v"}:
            raise CheckpointMappingError(f"{what}: incomplete weight-norm pair for {prefix!r}")
        v = gv["v"].float()
        norm = v.flatten(1).norm(dim=1).reshape(-1, *([1] * (v.dim() - 1)))
        out[f"{prefix}.weight"] = gv["g"].float() * v / norm
    return out


def load_strict(module: nn.Module, sd: Mapping[str, torch.Tensor], what: str, *, allow_missing: Iterable[str] = ()) -> None:
    """`load_state_dict(strict=True)` with a report that names missing, unexpected and mis-shaped keys.

    `allow_missing` lists keys the module may keep as built (tied copies, derived buffers)."""
    own = module.state_dict()
    allow = set(allow_missing)
    missing = sorted(k for k in own if k not in sd and k not in allow)
    unexpected = sorted(k for k in sd if k not in own)
    wrong = sorted(k for k in sd if k in own and tuple(sd[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong:
        raise CheckpointMappingError(
            f"{what}: {len(missing)} missing {missing[:5]}, {len(unexpected)} unexpected {unexpected[:5]}, "
            f"{len(wrong)} with wrong shape {[(k, tuple(sd[k].shape), tuple(own[k].shape)) for k in wrong[:3]]}"
        )
    full = {k: own[k] for k in own if k not in sd}
    full.update(sd)
    module.load_state_dict(full, strict=True)


def split_prefixes(sd: Mapping[str, torch.Tensor], prefixes: Mapping[str, str]) -> tuple[dict[str, dict[str, torch.Tensor]], list[str]]:
    """Group keys by the first matching prefix (prefix stripped); keys matching none are returned apart."""
    groups: dict[str, dict[str, torch.Tensor]] = {name: {} for name in prefixes.values()}
    rest: list[str] = []
    for key, value in sd.items():
        for prefix, name in prefixes.items():
            if key.startswith(prefix):
                groups[name][key[len(prefix) :]] = value
                break
        else:
            rest.append(key)
    return groups, rest
