"""Reading official checkpoint files and loading mapped state dicts strictly, with clear reports."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

import torch
from torch import nn

# One checkpoint error type for every reader (genau_core.errors); the old name stays importable from here.
from genau_core.checkpoint_io import ALLOW_PICKLE_ENV, read_state_dict
from genau_core.errors import CheckpointMappingError


def read_checkpoint(path: str | Path, *, what: str, container: str | None = "state_dict") -> dict[str, torch.Tensor]:
    """The state dict of a released baseline file (a Lightning `.ckpt` keeps it under "state_dict"): the one
    checkpoint reader (`genau_core.checkpoint_io.read_state_dict`), with training objects read as inert
    stand-ins and GENAU_BENCH_ALLOW_PICKLE=1 allowing plain pickle for a trusted file."""
    return read_state_dict(
        path,
        (container,) if container else (),
        what=what,
        allow_pickle=os.environ.get(ALLOW_PICKLE_ENV, "") == "1",
        inert_objects=True,
        pickle_hint=f"If you trust the file, {ALLOW_PICKLE_ENV}=1 also tries plain pickle.",
    )


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


def load_strict(
    module: nn.Module, sd: Mapping[str, torch.Tensor], what: str, *, allow_missing: Iterable[str] = ()
) -> None:
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


def split_prefixes(
    sd: Mapping[str, torch.Tensor], prefixes: Mapping[str, str]
) -> tuple[dict[str, dict[str, torch.Tensor]], list[str]]:
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
