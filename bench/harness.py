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
from bench.checkpoints import model_weights_label
from bench.errors import UsageError
from bench.metrics.cache import EmbeddingCache
from bench.metrics.suite import ScoreConfig, ScoreResult, score_protocols
from bench.plugins.base import TextToAudioPlugin, clip_seed
from bench.process_policy import current_policy
from bench.protocol import PROTOCOL
from bench.runs.store import RunDir, RunStore, settings_hash
from bench.splits.base import Split, SplitItem, clip_set_identity
from genau_core.files import atomic_path, remove_stale_temporaries

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
            raise UsageError(f"shard {i}/{n}: need 0 <= i < n (e.g. 0/{max(n, 1)})")
        if self.batch_size < 1:
            raise UsageError(f"batch size {self.batch_size}: must be >= 1")


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
    # the generation rules' version (bench.protocol.GENERATION_VERSION), not the scoring protocols'
    protocol_version: str = PROTOCOL.generation_version
    # the run store keeps what the model produced: its native rate and channel count
    output_sample_rate: int = PROTOCOL.sample_rate
    candidates_per_prompt: int = PROTOCOL.candidates_per_prompt
    overrides: dict = field(default_factory=dict)
    output_channels: int = 1

    def audio_settings(self) -> dict:
        """Everything that changes the audio; hashed into the run folder name (a mono run's dict, and so
        its folder, is the same as before native-rate storage)."""
        d = dict(self.__dict__)
        d.pop("overrides")
        if d["output_channels"] == 1:
            d.pop("output_channels")
        return d


def resolve_settings(plugin: TextToAudioPlugin, cfg: GenerationConfig) -> RunSettings:
    d = plugin.info.defaults
    overrides = {
        k: v
        for k, v, default in (
            ("steps", cfg.steps, d.steps),
            ("guidance", cfg.guidance, d.guidance),
            ("duration_s", cfg.duration_s, d.duration_s),
        )
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
        output_sample_rate=plugin.info.native_sample_rate,
        output_channels=plugin.info.native_channels,
        overrides=overrides,
    )


def selected_items(split: Split, cfg: GenerationConfig) -> list[SplitItem]:
    """The prompts this invocation runs: the split's first `limit` items, or all of them."""
    return split.items[: cfg.limit] if cfg.limit else list(split.items)


def generate_run(plugin: TextToAudioPlugin, split: Split, cfg: GenerationConfig, store: RunStore) -> RunDir:
    settings = resolve_settings(plugin, cfg)
    run = store.run_dir(split.name, plugin.name, settings_hash(settings.audio_settings()))
    items = selected_items(split, cfg)
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
    for folder in (run.path, run.clips_dir, run.results_dir):
        remove_stale_temporaries(folder)  # a killed writer's `.<clip>.wav.<pid>.tmp`: never published

    shard_i, shard_n = cfg.shard
    batches = [items[s : s + cfg.batch_size] for s in range(0, len(items), cfg.batch_size)]
    mine = [b for k, b in enumerate(batches) if k % shard_n == shard_i]
    done = run.finished_clips()
    todo = [b for b in mine if any(it.id not in done for it in b)]
    if todo:
        bar = tqdm(
            total=sum(len(b) for b in todo),
            desc=f"generating {plugin.name} on {split.name}",
            unit="clip",
            disable=not cfg.progress,
        )
        for batch in todo:
            waves = plugin.generate(
                [it.prompt for it in batch],
                seed=[seeds[it.id] for it in batch],
                steps=settings.steps,
                guidance=settings.guidance,
                duration=settings.duration_s,
                batch_size=len(batch),
                native=True,  # the store keeps what the model produced; each protocol derives its input
            )
            for it, w in zip(batch, waves):
                if it.id not in done:
                    write_wav(run.clip_path(it.id), w, settings.output_sample_rate)
            bar.update(len(batch))
        bar.close()
        rec = plugin.last_record
        m = run.manifest()
        m["parameter_count"] = plugin.parameter_count()
        m["generation"] = rec.to_manifest()
        run.write_manifest(m)
    return run


def score_run(
    run: RunDir,
    split: Split,
    config: ScoreConfig,
    cache: EmbeddingCache | None = None,
    *,
    clip_ids: list[str] | None = None,
) -> tuple[dict, Path]:
    """Score a run dir under every protocol of `config.protocols` (see `score_run_protocols`);
    -> (record, path) of the first protocol."""
    return next(iter(score_run_protocols(run, split, config, cache, clip_ids=clip_ids).values()))


def score_run_protocols(
    run: RunDir,
    split: Split,
    config: ScoreConfig,
    cache: EmbeddingCache | None = None,
    *,
    clip_ids: list[str] | None = None,
) -> dict[str, tuple[dict, Path]]:
    """Score a run dir against the split's references and store one results record per protocol
    (plus its per-clip values in `results/<key>.per_clip.parquet`). The clips are decoded once for
    all protocols. -> {protocol name: (record, path)}.

    `clip_ids`: the prompts this invocation ran (`selected_items`); default: every clip of the
    run's manifest. A run folder keeps the clips of earlier, larger runs, so `bench run --limit 2`
    passes its 2 ids and scores exactly those, under its own results key."""
    manifest = run.manifest()
    clip_ids = list(manifest["clips"]) if clip_ids is None else list(clip_ids)
    unknown = [c for c in clip_ids if c not in manifest["clips"]]
    if unknown:
        raise ValueError(f"{run.manifest_path}: clip(s) {unknown[:3]} were never generated in this run folder")
    remove_stale_temporaries(run.results_dir)
    finished = run.finished_clips()
    not_generated = [c for c in clip_ids if c not in finished]
    gen = {c: run.clip_path(c) for c in clip_ids if c in finished}
    by_id = {it.id: it for it in split.items}
    ref = {c: by_id[c].reference for c in clip_ids if c in by_id and by_id[c].reference is not None}
    texts = {c: manifest["clips"][c]["prompt"] for c in gen}
    out: dict[str, tuple[dict, Path]] = {}
    for name, result in score_protocols(gen, ref, texts, config, cache).items():
        record = results_record(
            manifest,
            split,
            result,
            config,
            clip_ids=clip_ids,
            n_missing_ref=len([c for c in clip_ids if c not in ref]),
            not_generated=not_generated,
        )
        if result.per_clip:
            record["per_clip_file"] = write_per_clip(
                run.results_dir / f"{record['scoring_key']}.per_clip.parquet", result
            )
        out[name] = (record, run.write_result(record["scoring_key"], record))
    return out


def write_per_clip(path: Path, result: ScoreResult) -> str:
    """Per-clip values (one row per clip id, one column per per-clip metric column) as Parquet or CSV
    (by the suffix), written atomically. -> the file's name."""
    path = Path(path)
    frame = result.per_clip_frame()
    with atomic_path(path, clean=False) as tmp:
        frame.to_csv(tmp, index=False) if path.suffix == ".csv" else frame.to_parquet(tmp, index=False)
    return path.name


def scoring_key(split: Split, result: ScoreResult, config: ScoreConfig, prompt_set: dict | None = None) -> str:
    """Names one scoring configuration of a run: the exact prompt set and reference set (so a
    partial run never overwrites, nor is mistaken for, the full one), backbones, metrics, resampler
    and bootstrap settings."""
    import hashlib
    import json

    payload = {
        "protocol": [result.protocol["name"], result.protocol["version"]],
        "references": split.reference_list_hash(),
        "prompt_set": (prompt_set or result.prompt_set)["sha256"],
        "reference_set": result.reference_set["sha256"],
        "backbones": {k: v.get("checkpoint_id", v.get("error")) for k, v in sorted(result.backbones.items())},
        "metrics": [m.column for m in result.metrics],
        "resampler": config.resampler,
        "bootstrap": [config.bootstrap, config.confidence, config.bootstrap_seed],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def results_record(
    manifest: dict,
    split: Split,
    result: ScoreResult,
    config: ScoreConfig,
    *,
    clip_ids: list[str],
    n_missing_ref: int,
    not_generated: list[str],
) -> dict:
    """The stored record. `prompt_set` (sha256 of the sorted clip ids run + count) and
    `reference_set` (sha256 of the sorted (id, content sha256) pairs of the references used + count)
    say exactly which clips the numbers cover; the leaderboard ranks only rows that share both.
    `prompt_list_sha256` stays the hash of the split's whole prompt list."""
    model_weights = model_weights_label(manifest["settings"]["weights"], manifest["settings"]["checkpoint_identity"])
    # the manifest's settings (hashed into the run folder's name) keep the plugin's word for its real checkpoint;
    # the record says what is known about the file instead
    s = {**manifest["settings"], "weights": model_weights}
    prompt_set = clip_set_identity(clip_ids)
    out = {
        "record_version": 2,
        "scoring_key": scoring_key(split, result, config, prompt_set),
        "date": _now(),
        "protocol_version": result.protocol["version"],
        "split": split.name,
        "prompt_list_sha256": manifest["split"]["prompt_list_sha256"],
        "split_n_prompts": manifest["split"]["n_prompts"],
        "reference_list_sha256": split.reference_list_hash(),
        "model": s["model"],
        "model_weights": model_weights,
        "checkpoint_identity": s["checkpoint_identity"],
        "parameter_count": manifest.get("parameter_count"),
        "training_data": manifest["model"]["training_data"],
        "text_encoder": manifest["model"]["text_encoder"],
        "settings": s,
        "settings_hash": manifest["settings_hash"],
        "generation": manifest.get("generation"),
        "n_prompts": len(clip_ids),
        "n_generated": result.n_generated,
        "n_not_generated": len(not_generated),
        "n_failed": len(result.failures),
        "n_evaluated": result.n_generated - sum(1 for f in result.failures if f["side"] == "generated"),
        "n_missing_reference": n_missing_ref,
        **result.to_dict(),
    }
    out["prompt_set"] = prompt_set  # the prompts run (ids generated or not), not only the generated files
    out["process_policy"] = current_policy()  # CPU kernels, allocator, fast exit: bench.process_policy
    return out
