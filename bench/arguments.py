"""Checking `bench` arguments before any work starts.

Every check raises `UsageError` with one line that names the flag, the value and what to do;
`bench.cli.main` prints it as `error: ...` and exits with status 1. Nothing here loads a model,
decodes audio or reads a checkpoint: a wrong flag costs seconds, not a scoring run.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable
from pathlib import Path

from bench.errors import UsageError


def did_you_mean(value: str, known: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the closest known names (empty when none is close)."""
    close = difflib.get_close_matches(value, list(known), n=2, cutoff=0.5)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def check_metrics(text: str | None, protocols: tuple[str, ...] = ("genau",)) -> list[str] | None:
    """`--metrics A,B`: every name a metric of the chosen protocols, none twice, at least one.
    None (the option not given): every metric of each protocol."""
    from bench.metrics.protocols import protocol

    if text is None:
        return None
    known = list(dict.fromkeys(pm.metric for p in protocols for pm in protocol(p).metrics))
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise UsageError(f"--metrics {text!r}: no metric named; choose from {','.join(known)}")
    for m in names:
        if m not in known:
            raise UsageError(
                f"--metrics: unknown metric {m!r} for --protocols {','.join(protocols)}.{did_you_mean(m, known)} "
                f"Choose from {','.join(known)}"
            )
    dup = sorted({m for m in names if names.count(m) > 1})
    if dup:
        raise UsageError(f"--metrics: {', '.join(dup)} named twice; name each metric once")
    return names


def check_resampler(name: str, flag: str = "--resampler") -> str:
    """A resampler bench.audio knows (`known_resamplers()`), whether or not any file will need resampling."""
    from bench.audio import known_resamplers

    known = known_resamplers()
    if name not in known:
        raise UsageError(
            f"{flag} {name!r}: unknown resampler.{did_you_mean(name, known)} Choose one of {', '.join(known)}"
        )
    return name


def check_shard(text: str) -> tuple[int, int]:
    """`--shard i/n` with 0 <= i < n."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard expects i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        example = f"0/{n} ... {n - 1}/{n}" if n >= 1 else "0/4"
        raise UsageError(f"--shard {text}: shard i of n needs 0 <= i < n (e.g. {example})")
    return i, n


def check_folder(path: str, flag: str, what: str) -> Path:
    """An existing folder given by `flag`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UsageError(f"{flag} {path}: no such folder; give {what}")
    if not p.is_dir():
        raise UsageError(f"{flag} {path}: not a folder; give {what}")
    return p


def check_device(text: str) -> str:
    """`--device`: cpu, cuda, cuda:N, mps, xpu:N ... (the spelling torch accepts; availability is checked by torch)."""
    if not re.fullmatch(r"(cpu|cuda|mps|xpu|hpu|npu|meta)(:\d+)?", text):
        raise UsageError(f"--device {text!r}: not a device name; use cpu, cuda, cuda:N or mps")
    return text


def check_backbone_keys(mapping: dict[str, str], flag: str, models: Iterable[str] = ()) -> None:
    """--checkpoint / --tokenizer NAME=...: NAME is a metric backbone (a model name gets the right flag)."""
    from bench.metrics.backbones import BACKBONES

    models = set(models)
    for name in mapping:
        if name in BACKBONES:
            continue
        if name in models or _is_model_name(name):
            raise UsageError(
                f"{flag} {name}=...: {name!r} is a model, not a metric backbone; "
                f"pass the model's files with --model-checkpoint {name}=PATH"
            )
        raise UsageError(
            f"{flag} {name}=...: unknown metric backbone {name!r}.{did_you_mean(name, BACKBONES)} "
            f"Backbones: {', '.join(sorted(BACKBONES))}"
        )


def check_backbone_roles(mapping: dict[str, str], where: str) -> None:
    """`backbones: {role: name}` of a --config file: known roles, known backbones."""
    from bench.metrics.backbones import BACKBONES
    from bench.metrics.suite import DEFAULT_BACKBONES

    for role, name in mapping.items():
        if role not in DEFAULT_BACKBONES:
            raise UsageError(
                f"{where}: backbones: unknown role {role!r}.{did_you_mean(role, DEFAULT_BACKBONES)} "
                f"Roles: {', '.join(DEFAULT_BACKBONES)}"
            )
        if name not in BACKBONES:
            raise UsageError(
                f"{where}: backbones: {role}: unknown backbone {name!r}.{did_you_mean(str(name), BACKBONES)} "
                f"Backbones: {', '.join(sorted(BACKBONES))}"
            )


def _is_model_name(name: str) -> bool:
    from bench.plugins.registry import BUILTIN_PLUGINS

    return name in BUILTIN_PLUGINS


def check_model_checkpoint_keys(mapping: dict[str, str], models: list[str]) -> None:
    """--model-checkpoint MODEL=PATH: MODEL is one of --models (else it would be ignored silently)."""
    for name in mapping:
        if name not in models:
            raise UsageError(
                f"--model-checkpoint {name}=...: {name!r} is not in --models {','.join(models)}."
                f"{did_you_mean(name, models)} Use --model-checkpoint MODEL=PATH with MODEL one of this run's models"
            )


def check_split_locations(
    split: str, *, csv: str | None, ref_dir: str | None, ref_flag: str, csv_flag: str = "--split-csv"
) -> None:
    """--split-csv / --ref-dir are read by the audiocaps and bigsoundbank splits only; elsewhere: an error."""
    from bench.splits import SPLITS

    if split in SPLITS and split not in ("demo",):
        return
    if split == "demo":
        why = "the demo split's prompts and references are embedded in the package"
        todo = "drop it, or write a manifest (id,caption,audio) and pass --split path/to/manifest.csv"
    elif split not in SPLITS and Path(split).suffix.lower() in (".csv", ".jsonl"):
        why = "a manifest names its own reference files (its `audio` column, relative to the manifest)"
        todo = "drop it, or put the reference paths in the manifest's audio column"
    else:
        return  # an unknown split name: load_split's error suggests the closest one
    for flag, value in ((csv_flag, csv), (ref_flag, ref_dir)):
        if value:
            raise UsageError(f"{flag} {value}: not used with --split {split} ({why}); {todo}")


def check_protocols(text: str | None) -> tuple[str, ...]:
    """`--protocols genau,stable-audio`: every name a shipped protocol (default: genau)."""
    from bench.metrics.protocols import PROTOCOLS, parse_protocols

    try:
        return parse_protocols(text)
    except KeyError as e:
        raise UsageError(f"--protocols: {e.args[0]}") from None
    except Exception:  # noqa: BLE001 - defensive: any other parse problem is the user's value
        raise UsageError(f"--protocols {text!r}: choose from {','.join(PROTOCOLS)}") from None
