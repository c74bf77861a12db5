"""`bench score --impl reference`: the same inputs scored by the field's reference tools.

The reference packages (audioldm_eval, laion_clap, msclap) pin old stacks, so they usually
live in another virtualenv. This module never imports them: it stages the clips under their
clip ids, finds and hashes the checkpoint files exactly as our suite does, runs
`_reference_driver.py` with the other interpreter, and turns its JSON into a results record
with the keys `bench score` writes, plus `impl: "reference"`. Its metric columns name the tool
(`FD_audioldm_eval-cnn14@16k`), so they never merge with ours (`FD_panns-cnn14@16k`).

audioldm_eval is pinned to its Cnn14 backbone (`backbone="cnn14"`; its default became MERT in
2024-09); an installed version that cannot be pinned is refused with one line (ReferenceImplError)
and nothing is recorded. `reference_backbones` records each tool's version and network.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from bench.checkpoints import combined_weights_label, file_provenance, file_weights_label, sha256_files
from bench.errors import GenauBenchError
from bench.metrics.registry import METRICS as REGISTRY
from bench.metrics.suite import DEFAULT_BACKBONES, METRICS, ScoreConfig, locate_checkpoint, metric_column

DRIVER = Path(__file__).with_name("_reference_driver.py")
NO_INTERVALS = "the reference tools compute no intervals"
STDERR_TAIL_LINES = 25


@dataclass(frozen=True)
class ReferenceTool:
    """One reference network: which driver group computes it, the checkpoints it reads."""

    group: str
    label: str  # column suffix, e.g. "audioldm_eval-cnn14"
    sample_rate: int
    backbones: tuple[str, ...]


CNN14 = ReferenceTool("audioldm_eval", "audioldm_eval-cnn14", 16000, ("panns-cnn14-16k", "vggish"))
VGGISH = ReferenceTool("audioldm_eval", "audioldm_eval-vggish", 16000, ("panns-cnn14-16k", "vggish"))
LAION = ReferenceTool("laion_clap", "laion_clap-htsat-base", 48000, ("laion-clap-htsat-base",))
MSCLAP = ReferenceTool("msclap", "msclap-2023", 44100, ("ms-clap-2023",))

TOOLS = {t.label: t for t in (CNN14, VGGISH, LAION, MSCLAP)}
EXTRA_METRICS = ("KID",)  # not ours; computed by audioldm_eval's main() anyway: recorded when that group runs
# Read from the metric registry: each MetricSpec names its --impl reference network (and why a tool cannot compute it).
TOOL_OF_METRIC: dict[str, ReferenceTool] = {
    **{name: TOOLS[spec.reference_impl] for name, spec in REGISTRY.items() if spec.reference_impl},
    "KID": CNN14,
}
NOT_IN_REFERENCE = {name: spec.reference_impl_missing for name, spec in REGISTRY.items() if spec.reference_impl_missing}
DRIVER_CHECKPOINT_FLAG = {
    "panns-cnn14-16k": "--cnn14",
    "vggish": "--vggish",
    "laion-clap-htsat-base": "--laion-clap",
    "ms-clap-2023": "--ms-clap",
}
BACKBONE_TOOL = {
    "panns-cnn14-16k": "audioldm_eval Cnn14 (16 kHz)",
    "vggish": "audioldm_eval FrechetAudioDistance (torchvggish)",
    "laion-clap-htsat-base": "laion_clap CLAP_Module(HTSAT-base, roberta)",
    "ms-clap-2023": "msclap CLAPWrapper(version='2023')",
}


class ReferenceImplError(GenauBenchError, RuntimeError):
    """The reference interpreter is missing, or the driver failed."""


@dataclass
class StagedInputs:
    gen_dir: Path
    ref_dir: Path
    captions: Path
    n_generated: int
    n_reference: int
    n_captioned: int


@dataclass
class LocatedCheckpoints:
    paths: dict[str, Path] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- inputs
def check_backbone_choice(config: ScoreConfig) -> None:
    """The reference tools are fixed networks: the protocol's default backbones only."""
    chosen = {role: config.backbones.get(role) for role in DEFAULT_BACKBONES}
    if chosen != DEFAULT_BACKBONES:
        raise ReferenceImplError(
            f"--impl reference computes the protocol's default backbones {DEFAULT_BACKBONES}; the config asks for "
            f"{chosen}"
        )


def stage_clips(
    gen: Mapping[str, Path], ref: Mapping[str, Path], texts: Mapping[str, str], folder: Path
) -> StagedInputs:
    """Links named <clip id>.wav (the tools pair files by name) and captions.json {clip id: prompt}."""
    gen_dir, ref_dir = folder / "gen", folder / "ref"
    for side, clips in ((gen_dir, gen), (ref_dir, ref)):
        side.mkdir(parents=True)
        for clip_id, path in clips.items():
            (side / f"{clip_id}.wav").symlink_to(Path(path).resolve())
    captions = {cid: texts[cid] for cid in sorted(gen) if cid in texts}
    captions_path = folder / "captions.json"
    captions_path.write_text(json.dumps(captions, ensure_ascii=False), encoding="utf-8")
    return StagedInputs(gen_dir, ref_dir, captions_path, len(gen), len(ref), len(captions))


def locate_reference_checkpoints(metrics: list[str], config: ScoreConfig) -> LocatedCheckpoints:
    """Our --checkpoint NAME=PATH flags and checkpoint folders, for every backbone the metrics need."""
    found = LocatedCheckpoints()
    needed = sorted({b for m in metrics if m not in NOT_IN_REFERENCE for b in TOOL_OF_METRIC[m].backbones})
    for name in needed:
        try:
            found.paths[name] = locate_checkpoint(name, config)
        except (FileNotFoundError, KeyError, ImportError, RuntimeError, ValueError) as e:
            found.errors[name] = str(e)
    return found


def groups_to_run(metrics: list[str], checkpoints: LocatedCheckpoints) -> list[str]:
    groups = {TOOL_OF_METRIC[m].group for m in metrics if m not in NOT_IN_REFERENCE}
    runnable = {t.group for t in TOOL_OF_METRIC.values() if not any(b in checkpoints.errors for b in t.backbones)}
    return sorted(groups & runnable)


# ----------------------------------------------------------------------------- the driver
def resolve_interpreter(python: str | os.PathLike) -> Path:
    text = str(python)
    found = (
        shutil.which(text)
        if os.sep not in text
        else (text if os.access(text, os.X_OK) and Path(text).is_file() else None)
    )
    if not found:
        raise ReferenceImplError(
            f"--reference-python {text}: no such interpreter (give the python of the environment that holds the "
            "reference packages)"
        )
    return Path(found).absolute()  # not resolved: a venv's python is a link whose location selects the venv


def stderr_tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_driver(
    python: Path, staged: StagedInputs, checkpoints: LocatedCheckpoints, groups: list[str], device: str, workdir: Path
) -> dict:
    """Run the driver with `python` from a folder holding only the driver (nothing of ours on its path)."""
    driver_dir = workdir / "driver"
    driver_dir.mkdir()
    driver = driver_dir / DRIVER.name
    shutil.copyfile(DRIVER, driver)
    out = workdir / "reference.json"
    cmd = [
        str(python),
        str(driver),
        "--gen",
        str(staged.gen_dir),
        "--ref",
        str(staged.ref_dir),
        "--captions",
        str(staged.captions),
        "--groups",
        ",".join(groups),
        "--device",
        device,
        "--out",
        str(out),
    ]
    for name, path in sorted(checkpoints.paths.items()):
        cmd += [DRIVER_CHECKPOINT_FLAG[name], str(path)]
    log = workdir / "driver.stdout.log"
    try:
        with open(log, "w", encoding="utf-8") as stdout:
            proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        raise ReferenceImplError(f"--reference-python {python}: cannot run it ({e})") from None
    if proc.returncode != 0 or not out.exists():
        raise ReferenceImplError(
            f"the reference driver failed in {python} (exit status {proc.returncode}); last lines of its "
            f"stderr:\n{stderr_tail(proc.stderr)}"
        )
    return json.loads(out.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- the record
def metric_row(metric: str, value: float, reason: str, n: int) -> dict:
    tool = TOOL_OF_METRIC[metric]
    return {
        "metric": metric,
        "column": metric_column(metric, tool.label, tool.sample_rate),
        "value": float(value),
        "ci_low": math.nan,
        "ci_high": math.nan,
        "n": n,
        "backbone": tool.label,
        "reason": reason,
        "ci_reason": NO_INTERVALS,
    }


def metric_count(metric: str, driver_out: dict, n_paired: int) -> int:
    if metric.startswith("CLAP_"):
        return int(driver_out.get("n", {}).get(TOOL_OF_METRIC[metric].group, {}).get("pairs", 0))
    if metric.startswith("KL_"):
        return n_paired
    return int(driver_out.get("n", {}).get("audioldm_eval", {}).get("generated", 0))


def metric_rows(metrics: list[str], driver_out: dict, checkpoints: LocatedCheckpoints, n_paired: int) -> list[dict]:
    values, reasons = driver_out.get("values", {}), driver_out.get("reasons", {})
    ran = set(driver_out.get("groups", []))
    rows = []
    wanted = list(metrics) + [m for m in EXTRA_METRICS if CNN14.group in ran and m not in metrics]
    for metric in wanted:
        tool = TOOL_OF_METRIC[metric]
        missing = [b for b in tool.backbones if b in checkpoints.errors]
        if metric in NOT_IN_REFERENCE:
            rows.append(metric_row(metric, math.nan, NOT_IN_REFERENCE[metric], 0))
        elif missing:
            reason = "; ".join(f"backbone {b} unavailable: {checkpoints.errors[b]}" for b in missing)
            rows.append(metric_row(metric, math.nan, reason, 0))
        else:
            value = values.get(metric)
            value = math.nan if value is None else float(value)
            n = 0 if math.isnan(value) else metric_count(metric, driver_out, n_paired)
            rows.append(metric_row(metric, value, reasons.get(metric, ""), n))
    return rows


def backbone_identities(checkpoints: LocatedCheckpoints) -> dict[str, dict]:
    by_file = sha256_files(checkpoints.paths.values())
    digests = {name: by_file[path.resolve()] for name, path in checkpoints.paths.items()}
    identities: dict[str, dict] = {name: {"error": err} for name, err in checkpoints.errors.items()}
    for name, path in checkpoints.paths.items():
        tool = next(t for t in TOOL_OF_METRIC.values() if name in t.backbones)
        identities[name] = {
            "name": name,
            "sample_rate": tool.sample_rate,
            "checkpoint_id": f"sha256:{digests[name]}",
            "weights": file_weights_label(digests[name]),
            **file_provenance(path, digests[name]),
            "source": str(path),
            "reference_tool": BACKBONE_TOOL[name],
        }
    return identities


def weights_label(identities: dict[str, dict]) -> str:
    return combined_weights_label(b.get("weights", "unavailable") for b in identities.values() if "error" not in b)


def reference_notes(driver_out: dict) -> list[str]:
    notes = [n for group_notes in driver_out.get("notes", {}).values() for n in group_notes]
    notes.append(
        "the reference tools report no unreadable files (audioldm_eval skips them silently): failed files unknown"
    )
    notes.append("each tool decodes and resamples the files itself (see resamplers); LSD / PSNR / SSIM switched off")
    if driver_out.get("shims"):
        notes.append(
            f"offline stand-ins imported before the tools ($GENAU_BENCH_REFERENCE_SHIMS={driver_out['shims']})"
        )
    return notes


def score_with_reference_tools(
    gen: Mapping[str, Path],
    ref: Mapping[str, Path],
    texts: Mapping[str, str],
    config: ScoreConfig,
    python: str | os.PathLike,
) -> dict:
    """Score with the reference tools in interpreter `python`; the record's metric and run fields."""
    check_backbone_choice(config)
    interpreter = resolve_interpreter(python)
    # the reference tools compute the genau protocol; None = all of its metrics
    metrics = list(config.metrics) if config.metrics is not None else list(METRICS)
    checkpoints = locate_reference_checkpoints(metrics, config)
    groups = groups_to_run(metrics, checkpoints)
    n_paired = len(set(gen) & set(ref))
    with tempfile.TemporaryDirectory(prefix="genau-bench-reference-") as tmp:
        staged = stage_clips(gen, ref, texts, Path(tmp) / "clips")
        driver_out = run_driver(interpreter, staged, checkpoints, groups, config.device, Path(tmp)) if groups else {}
    if driver_out.get("refused"):
        raise ReferenceImplError(str(driver_out["refused"].get("reason", driver_out["refused"])))
    identities = backbone_identities(checkpoints)
    return {
        "impl": "reference",
        "reference_python": str(interpreter),
        "reference_tools": driver_out.get("versions", {}),
        "reference_backbones": driver_out.get("backbones", {}),
        "resamplers": driver_out.get("resamplers", {}),
        "reference_seconds": driver_out.get("seconds", {}),
        "reference_notes": reference_notes(driver_out),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": metric_rows(metrics, driver_out, checkpoints, n_paired),
        "backbones": identities,
        "backbone_weights": weights_label(identities),
        "failures": [],
        "n_generated": len(gen),
        "n_reference": len(ref),
        "n_paired": n_paired,
        "resampler": "each reference tool's own (see resamplers)",
        "cache": {"hits": 0, "misses": 0},
    }
