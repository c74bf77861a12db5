"""The spine: generate a split's clips with a plugin into the run store, then score them.

Batches are formed over the split's fixed clip order, so a batch always has the same
members: a resumed or sharded run regenerates a batch with exactly the inputs it had the
first time and writes only its missing clips. Shards take whole batches (batch k goes to
shard k mod n), by hand (`--shard i/n`) or from torchrun / accelerate's RANK / WORLD_SIZE.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import os
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from bench.audio import write_wav
from bench.metrics.cache import EmbeddingCache
from bench.metrics.suite import ScoreConfig, ScoreResult, score
from bench.plugins.base import TextToAudioPlugin, clip_seed
from bench.protocol import PROTOCOL
from bench.runs.store import RunDir, RunStore, settings_hash
from bench.splits.base import Split

PACKAGES = ("genau-bench", "torch", "numpy", "scipy", "diffusers", "transformers", "soxr", "soundfile", "librosa")


def package_versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "not installed"
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class GenerationConfig:
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    duration_s: float | None = None
    batch_size: int = 4
    limit: int | None = None
    shard: tuple[int, int] = (0, 1)
    progress: bool = True

    def __post_init__(self) -> None:
        i, n = self.shard
        if n < 1 or not 0 <= i < n:
            raise ValueError(f"shard {i}/{n}: need 0 <= i < n")
        if self.batch_size < 1:
            raise ValueError("batch size must be >= 1")


def shard_from_env() -> tuple[int, int] | None:
    """(rank, world size) when launched by torchrun or accelerate, else None."""
    if "WORLD_SIZE" in os.environ and "RANK" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return None


@dataclass
class RunSettings:
    model: str
    checkpoint_identity: str
    weights: str
    sampler: str
    steps: int
    guidance: float
    duration_s: float
    seed: int
    batch_size: int
    protocol_version: str = PROTOCOL.version
    output_sample_rate: int = PROTOCOL.sample_rate
    candidates_per_prompt: int = PROTOCOL.candidates_per_prompt
    overrides: dict = field(default_factory=dict)

    def audio_settings(self) -> dict:
        """Everything that changes the audio; hashed into the run folder name."""
        d = dict(self.__dict__)
        d.pop("overrides")
        return d


def resolve_settings(plugin: TextToAudioPlugin, cfg: GenerationConfig) -> RunSettings:
    d = plugin.info.defaults
    overrides = {
        k: v
        for k, v, default in (("steps", cfg.steps, d.steps), ("guidance", cfg.guidance, d.guidance), ("duration_s", cfg.duration_s, d.duration_s))
        if v is not None and v != default
    }
    return RunSettings(
        model=plugin.name,
        checkpoint_identity=plugin.checkpoint_identity(),
        weights=plugin.weights,
        sampler=d.sampler,
        steps=cfg.steps if cfg.steps is not None else d.steps,
        guidance=cfg.guidance if cfg.guidance is not None else d.guidance,
        duration_s=cfg.duration_s if cfg.duration_s is not None else d.duration_s,
        seed=cfg.seed,
        batch_size=cfg.batch_size,
        overrides=overrides,
    )


def generate_run(plugin: TextToAudioPlugin, split: Split, cfg: GenerationConfig, store: RunStore) -> RunDir:
    settings = resolve_settings(plugin, cfg)
    run = store.run_dir(split.name, plugin.name, settings_hash(settings.audio_settings()))
    items = split.items[: cfg.limit] if cfg.limit else split.items
    seeds = {it.id: clip_seed(settings.seed, it.id) for it in items}
    facts = plugin.prompt_records([it.prompt for it in items])  # e.g. Make-An-Audio 2's structured caption + source
    manifest = {
        "manifest_version": 1,
        "created": _now(),
        "protocol": PROTOCOL.to_dict(),
        "split": split.summary(),
        "model": plugin.info.to_dict(),
        "settings": settings.__dict__,
        "settings_hash": run.path.name,
        "packages": package_versions(),
        "clips": {it.id: {"prompt": it.prompt, "seed": seeds[it.id], **f} for it, f in zip(items, facts)},
    }
    run.write_manifest(manifest)
    _remove_stale_temp_files(run)

    shard_i, shard_n = cfg.shard
    batches = [items[s : s + cfg.batch_size] for s in range(0, len(items), cfg.batch_size)]
    mine = [b for k, b in enumerate(batches) if k % shard_n == shard_i]
    done = run.finished_clips()
    todo = [b for b in mine if any(it.id not in done for it in b)]
    if todo:
        bar = tqdm(total=sum(len(b) for b in todo), desc=f"generating {plugin.name} on {split.name}", unit="clip", disable=not cfg.progress)
        for batch in todo:
            waves = plugin.generate(
                [it.prompt for it in batch],
                seed=[seeds[it.id] for it in batch],
                steps=settings.steps,
                guidance=settings.guidance,
                duration=settings.duration_s,
                batch_size=len(batch),
            )
            for it, w in zip(batch, waves):
                if it.id not in done:
                    write_wav(run.clip_path(it.id), w, PROTOCOL.sample_rate)
            bar.update(len(batch))
        bar.close()
        rec = plugin.last_record
        m = run.manifest()
        m["parameter_count"] = plugin.parameter_count()
        m["generation"] = rec.to_manifest()
        run.write_manifest(m)
    return run


def _remove_stale_temp_files(run: RunDir) -> None:
    """A killed writer can leave `.<clip>.wav.<pid>.tmp`; the clip itself was never published."""
    if run.clips_dir.is_dir():
        for tmp in run.clips_dir.glob(".*.tmp"):
            try:
                pid = int(tmp.name.rsplit(".", 2)[-2])
            except ValueError:
                continue
            if not _pid_alive(pid):
                tmp.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def score_run(run: RunDir, split: Split, config: ScoreConfig, cache: EmbeddingCache | None = None) -> tuple[dict, Path]:
    """Score a run dir against the split's references and store one results record."""
    manifest = run.manifest()
    clip_ids = list(manifest["clips"])
    finished = run.finished_clips()
    not_generated = [c for c in clip_ids if c not in finished]
    gen = {c: run.clip_path(c) for c in clip_ids if c in finished}
    by_id = {it.id: it for it in split.items}
    ref = {c: by_id[c].reference for c in clip_ids if c in by_id and by_id[c].reference is not None}
    texts = {c: manifest["clips"][c]["prompt"] for c in gen}
    result = score(gen, ref, texts, config, cache)
    record = results_record(manifest, split, result, config, n_missing_ref=len([c for c in clip_ids if c not in ref]), not_generated=not_generated)
    path = run.write_result(record["scoring_key"], record)
    return record, path


def scoring_key(split: Split, result: ScoreResult, config: ScoreConfig) -> str:
    import hashlib
    import json

    payload = {
        "protocol": PROTOCOL.version,
        "references": split.reference_list_hash(),
        "backbones": {k: v.get("checkpoint_id", v.get("error")) for k, v in sorted(result.backbones.items())},
        "metrics": list(config.metrics),
        "resampler": config.resampler,
        "bootstrap": [config.bootstrap, config.confidence, config.bootstrap_seed],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def results_record(manifest: dict, split: Split, result: ScoreResult, config: ScoreConfig, *, n_missing_ref: int, not_generated: list[str]) -> dict:
    s = manifest["settings"]
    return {
        "record_version": 1,
        "scoring_key": scoring_key(split, result, config),
        "date": _now(),
        "protocol_version": PROTOCOL.version,
        "split": split.name,
        "prompt_list_sha256": manifest["split"]["prompt_list_sha256"],
        "reference_list_sha256": split.reference_list_hash(),
        "model": s["model"],
        "model_weights": s["weights"],
        "checkpoint_identity": s["checkpoint_identity"],
        "parameter_count": manifest.get("parameter_count"),
        "training_data": manifest["model"]["training_data"],
        "text_encoder": manifest["model"]["text_encoder"],
        "settings": s,
        "settings_hash": manifest["settings_hash"],
        "generation": manifest.get("generation"),
        "n_prompts": len(manifest["clips"]),
        "n_generated": result.n_generated,
        "n_not_generated": len(not_generated),
        "n_failed": len(result.failures),
        "n_evaluated": result.n_generated - sum(1 for f in result.failures if f["side"] == "generated"),
        "n_missing_reference": n_missing_ref,
        **result.to_dict(),
    }
