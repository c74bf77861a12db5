"""Creating a study: sample the prompts, prepare the clips, freeze the config.

Prompts come from a CSV (``id,caption`` or ``audiocap_id,caption``), a bench split (``--split``,
which also supplies reference clips for the anchor trials), or the bench run manifests of the
systems; the list's SHA-256 is frozen with the config.

Sampling (paper appendix C.3): the prompts every system has a clip for are ranked by caption
length in whitespace-separated words (``length_unit="words"``, ties broken by length in
characters, then by id; ``"chars"`` ranks by characters first); the `pool` longest form the
pool, and `n_items` prompts are drawn from it with ``random.Random(seed).sample``. Prompts a
system has no clip for are listed in the frozen config (``missing``) and printed, never
dropped silently; so are top-ranked prompts that were skipped for that reason.

With k systems, each sampled prompt yields one item per unordered pair of systems (system
A is the one named first on the command line). Catch trials are added: anchor trials
(reference clip vs. its 3.5 kHz low-pass, when a reference folder is given) and repeated
pairs (shown again to each participant with the sides swapped).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm import tqdm

from . import audio
from .db import AuditEvent, Clip, Item, Study
from .protocol import (
    ANCHOR_SYSTEM,
    CRITERIA,
    ITEM_CATCH_ANCHOR,
    ITEM_CATCH_REPEAT,
    ITEM_MAIN,
    REFERENCE_SYSTEM,
    STUDY_PROTOCOL_VERSION,
    ExclusionRules,
    LoudnessRule,
    PlaybackRule,
)
from .sources import (
    Prompt,
    SourceError,
    SystemSource,
    prompts_from_manifests,
    prompts_from_split,
    read_prompts,
    resolve_system,
)
from .tokens import canonical_json, hash_token, new_token, sha256_text

LENGTH_UNITS = ("words", "chars")
RESERVED_NAMES = (REFERENCE_SYSTEM, ANCHOR_SYSTEM)


class StudyError(ValueError):
    """A study that cannot be created or found; the message says why."""


@dataclass(frozen=True)
class StudySpec:
    name: str
    systems: list[tuple[str, str]]  # (name, folder); the first is system A
    out_dir: Path
    prompts_csv: Path | None = None  # else from `split`, else from the runs' manifests
    split: str | None = None  # a bench split name (prompts, and reference clips for anchors)
    n_items: int = 50
    pool: int = 200
    seed: int = 0
    length_unit: str = "words"
    reference_dir: Path | None = None  # default with `split`: the split's reference clips
    n_catch_anchor: int = 2  # used only when reference clips are known
    n_catch_repeat: int = 2
    rules: ExclusionRules = field(default_factory=ExclusionRules)
    playback: PlaybackRule = field(default_factory=PlaybackRule)
    loudness: LoudnessRule = field(default_factory=LoudnessRule)


@dataclass(frozen=True)
class CreatedStudy:
    study_id: int
    name: str
    owner_token: str
    config: dict
    config_sha256: str
    n_items: int
    warnings: list[str]


def length_key(prompt: Prompt, unit: str) -> tuple:
    words, chars = len(prompt.caption.split()), len(prompt.caption)
    primary, secondary = (words, chars) if unit == "words" else (chars, words)
    return (-primary, -secondary, prompt.id)


def select_sample(
    prompts: list[Prompt], available: set[str], n_items: int, pool: int, seed: int, unit: str
) -> tuple[list[Prompt], list[Prompt], list[str]]:
    """(pool prompts in rank order, sampled prompts in draw order, top-ranked ids skipped as missing)."""
    if unit not in LENGTH_UNITS:
        raise StudyError(f"length unit must be one of {LENGTH_UNITS}, got {unit!r}")
    if not 0 < n_items <= pool:
        raise StudyError(f"need 0 < n_items <= pool, got n_items={n_items}, pool={pool}")
    ranked = sorted(prompts, key=lambda p: length_key(p, unit))
    skipped = [p.id for p in ranked[:pool] if p.id not in available]
    pool_prompts = [p for p in ranked if p.id in available][:pool]
    if len(pool_prompts) < n_items:
        raise StudyError(f"only {len(pool_prompts)} prompts have a clip from every system; cannot draw {n_items} items")
    sample = random.Random(seed).sample(pool_prompts, n_items)
    return pool_prompts, sample, skipped


@dataclass(frozen=True)
class ClipJob:
    """One clip to prepare: its key (system, prompt id), source file, and the group of clips
    (one prompt's clips across systems, or one anchor pair) padded to a common length."""

    system: str
    prompt_id: str
    src: Path
    group: str
    low_pass: bool = False


@dataclass(frozen=True)
class MediaPlan:
    sample_rate: int  # the one rate every served clip of the study has
    length: dict[str, int]  # group -> samples at sample_rate (the longest clip of the group)


def plan_media(jobs: list[ClipJob]) -> MediaPlan:
    """The study's common rate (the highest source rate) and each group's padded length, read
    from the file headers only."""
    infos = {j.src: audio.clip_info(j.src) for j in jobs}
    rate = max(sr for _, sr in infos.values())
    length: dict[str, int] = {}
    for j in jobs:
        n, sr = infos[j.src]
        length[j.group] = max(length.get(j.group, 0), audio.resampled_length(n, sr, rate))
    return MediaPlan(rate, length)


def _prepare_clip(job: ClipJob, plan: MediaPlan, media_dir: Path, rule: LoudnessRule) -> Clip:
    """Read, (low-pass,) resample to the study rate, normalise loudness, pad, write as 16-bit WAV
    under a random name."""
    src = job.src
    x, sr = audio.read_clip(src)
    if job.low_pass:
        try:
            x = audio.lowpass(x, sr)
        except ValueError as e:
            raise audio.ClipError(src, str(e)) from None
    x = audio.resample_to(x, sr, plan.sample_rate)
    norm = audio.normalise_loudness(x, plan.sample_rate, rule)
    samples = audio.pad_to(norm.samples, plan.length[job.group])
    name = secrets.token_hex(16) + ".wav"
    out = media_dir / name
    audio.write_wav(out, samples, plan.sample_rate)
    return Clip(
        media_name=name,
        system=job.system,
        prompt_id=job.prompt_id,
        source_path=str(src),
        source_sha256=audio.file_sha256(src),
        sample_rate=plan.sample_rate,
        duration_s=len(samples) / float(plan.sample_rate),
        loudness_in=norm.loudness_in,
        gain_db=norm.gain_db,
        loudness_method=norm.method,
        peak_limited=norm.peak_limited,
    )


def _choose_anchors(
    reference: SystemSource, pool: list[Prompt], sample: list[Prompt], n: int, rng: random.Random
) -> list[Prompt]:
    """Anchor prompts with a reference clip: pool prompts outside the sample first (so the anchor
    does not repeat a main item's prompt), then sampled ones."""
    sampled_ids = {p.id for p in sample}
    first = [p for p in pool if p.id in reference.clips and p.id not in sampled_ids]
    second = [p for p in sample if p.id in reference.clips]
    if len(first) + len(second) < n:
        raise StudyError(
            f"{reference.clips_dir}: only {len(first) + len(second)} pool prompts have a reference clip; "
            f"cannot make {n} anchor catch trials"
        )
    chosen = rng.sample(first, min(n, len(first)))
    return chosen + rng.sample(second, n - len(chosen))


def create_study(session: Session, spec: StudySpec, log=print) -> CreatedStudy:
    """Validate the inputs, draw the sample, prepare the clips, store items and the frozen config.
    Nothing is left behind on failure (the transaction is rolled back, written media deleted)."""
    names = [n for n, _ in spec.systems]
    if len(names) < 2:
        raise StudyError("a pairwise study needs at least two --system NAME=DIR")
    if len(set(names)) != len(names):
        raise StudyError(f"system names must be distinct, got {names}")
    for n in names:
        if n in RESERVED_NAMES:
            raise StudyError(f"system name {n!r} is reserved for catch trials")
    if session.scalar(select(Study.id).where(Study.name == spec.name)) is not None:
        raise StudyError(f"a study named {spec.name!r} already exists in this database")
    if spec.n_catch_anchor < 0 or spec.n_catch_repeat < 0:
        raise StudyError("catch-trial counts must be >= 0")
    out_dir = Path(spec.out_dir).resolve()
    if (out_dir / "study.json").exists():
        raise StudyError(f"{out_dir}: already holds a study (study.json); choose another --out")

    systems: list[SystemSource] = [resolve_system(n, d) for n, d in spec.systems]
    prompts, prompt_source, split_refs = _load_prompts(spec, systems)
    prompt_ids = {p.id for p in prompts}
    warnings: list[str] = []
    missing = {s.name: [p.id for p in prompts if p.id not in s.clips] for s in systems}
    extra = {s.name: sorted(set(s.clips) - prompt_ids) for s in systems}
    for s in systems:
        if missing[s.name]:
            warnings.append(
                f"system {s.name!r} ({s.clips_dir}) has no clip for {len(missing[s.name])} of {len(prompts)} prompts"
            )
        if extra[s.name]:
            warnings.append(
                f"system {s.name!r} ({s.clips_dir}) has {len(extra[s.name])} clips not in the prompt list (ignored)"
            )
    available = set.intersection(*(set(s.clips) for s in systems)) & prompt_ids
    pool_prompts, sample, skipped = select_sample(
        prompts, available, spec.n_items, spec.pool, spec.seed, spec.length_unit
    )
    if skipped:
        warnings.append(
            f"{len(skipped)} of the {spec.pool} longest prompts lack a clip from some system and were skipped"
        )
    if len(pool_prompts) < spec.pool:
        warnings.append(f"the pool holds only {len(pool_prompts)} prompts (asked for {spec.pool})")
    rng = random.Random(f"catch:{spec.seed}")

    reference: SystemSource | None = None
    anchor_prompts: list[Prompt] = []
    missing_reference: list[str] = []
    if spec.reference_dir is not None:
        reference = resolve_system(REFERENCE_SYSTEM, spec.reference_dir)
    elif split_refs:
        ref_root = Path(os.path.commonpath([str(p.parent) for p in split_refs.values()]))
        reference = SystemSource(REFERENCE_SYSTEM, ref_root, ref_root, None, split_refs)
    n_anchor = spec.n_catch_anchor if reference is not None else 0
    if reference is not None:
        missing_reference = [p.id for p in pool_prompts if p.id not in reference.clips]
        anchor_prompts = _choose_anchors(reference, pool_prompts, sample, n_anchor, rng)
    elif spec.n_catch_anchor:
        warnings.append(
            "anchor catch trials disabled: no reference clips (--reference DIR or a --split with references)"
        )

    pairs = list(itertools.combinations(range(len(systems)), 2))
    n_main = len(sample) * len(pairs)
    if spec.n_catch_repeat > n_main:
        raise StudyError(f"cannot repeat {spec.n_catch_repeat} of {n_main} main items")
    repeat_seqs = sorted(rng.sample(range(n_main), spec.n_catch_repeat))

    media_dir = out_dir / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        jobs = [ClipJob(sy.name, p.id, sy.clips[p.id], f"main:{p.id}") for p in sample for sy in systems]
        for p in anchor_prompts:
            assert reference is not None
            jobs.append(ClipJob(REFERENCE_SYSTEM, p.id, reference.clips[p.id], f"anchor:{p.id}"))
            jobs.append(ClipJob(ANCHOR_SYSTEM, p.id, reference.clips[p.id], f"anchor:{p.id}", low_pass=True))
        plan = plan_media(jobs)
        # Written in an order drawn from the OS's random source (no seed to reconstruct it from),
        # then all given one file time: neither order nor times follow the system (issue 14:
        # A's clip was written before B's for every prompt, and served file times showed it).
        random.SystemRandom().shuffle(jobs)
        created_at = time.time()
        clips: dict[tuple[str, str], Clip] = {}
        for job in tqdm(jobs, desc="preparing clips", unit="clip", disable=len(jobs) < 20, file=sys.stderr):
            c = _prepare_clip(job, plan, media_dir, spec.loudness)
            written.append(media_dir / c.media_name)
            clips[(job.system, job.prompt_id)] = c
        file_time_ns = int(created_at) * 1_000_000_000
        for f in written:
            os.utime(f, ns=(file_time_ns, file_time_ns))

        config = {
            "protocol_version": STUDY_PROTOCOL_VERSION,
            "name": spec.name,
            "systems": [s.to_dict() for s in systems],
            "system_a": systems[0].name,
            "pairs": [[systems[i].name, systems[j].name] for i, j in pairs],
            "prompts": prompt_source,
            "sampling": {
                "n_items": spec.n_items,
                "pool": spec.pool,
                "seed": spec.seed,
                "length_unit": spec.length_unit,
                "rng": "python random.Random(seed).sample(pool ranked longest first, n_items)",
                "pool_ids": [p.id for p in pool_prompts],
                "sample_ids": [p.id for p in sample],
                "sample_sha256": sha256_text("\n".join(p.id for p in sample) + "\n"),
            },
            "missing": {
                "by_system": missing,
                "top_ranked_skipped": skipped,
                "extra_clips_ignored": extra,
                "reference_missing_in_pool": missing_reference,
            },
            "catch_trials": {
                "anchor": {
                    "n": n_anchor,
                    "cutoff_hz": audio.ANCHOR_CUTOFF_HZ,
                    "filter": "butterworth order 8, zero-phase (sosfiltfilt)",
                    "reference": reference.to_dict() if reference else None,
                    "prompt_ids": [p.id for p in anchor_prompts],
                },
                "repeat": {"n": spec.n_catch_repeat, "of_main_seq": repeat_seqs, "sides": "swapped per participant"},
            },
            "exclusion_rules": spec.rules.to_dict(),
            "playback_rule": spec.playback.to_dict(),
            "loudness": {
                **spec.loudness.to_dict(),
                "method": spec.loudness.method if audio.pyloudnorm_available() else "rms",
            },
            "media": {
                "format": "WAV, 16-bit PCM, mono",
                "sample_rate": plan.sample_rate,
                "sample_rate_rule": "the highest source rate; others resampled with scipy.signal.resample_poly",
                "length_rule": "each prompt's clips (each anchor pair) padded with trailing silence to the longest",
                "write_order": "random.SystemRandom().shuffle; one file time (the creation second) for all",
                "served_dither": "per audio URL TPDF +-1 LSB (RMS -93.3 dBFS), seeded by HMAC(media name, URL token)",
            },
            "criteria": [
                {"key": c.key, "title": c.title, "question": c.question, "shows_prompt": c.shows_prompt}
                for c in CRITERIA
            ],
        }
        config_sha = sha256_text(canonical_json(config))
        owner_token = new_token()
        study = Study(
            name=spec.name,
            created_at=created_at,
            protocol_version=STUDY_PROTOCOL_VERSION,
            seed=spec.seed,
            config_json=canonical_json(config),
            config_sha256=config_sha,
            media_dir=str(media_dir),
            owner_token_hash=hash_token(owner_token),
        )
        session.add(study)
        session.flush()
        for c in clips.values():
            c.study_id = study.id
            session.add(c)
        session.flush()

        seq = 0
        main_items: list[Item] = []
        for p in sample:
            for i, j in pairs:
                a, b = systems[i].name, systems[j].name
                item = Item(
                    study_id=study.id,
                    seq=seq,
                    kind=ITEM_MAIN,
                    prompt_id=p.id,
                    caption=p.caption,
                    clip_a_id=clips[(a, p.id)].id,
                    clip_b_id=clips[(b, p.id)].id,
                    system_a=a,
                    system_b=b,
                )
                session.add(item)
                main_items.append(item)
                seq += 1
        for p in anchor_prompts:
            session.add(
                Item(
                    study_id=study.id,
                    seq=seq,
                    kind=ITEM_CATCH_ANCHOR,
                    prompt_id=p.id,
                    caption=p.caption,
                    clip_a_id=clips[(REFERENCE_SYSTEM, p.id)].id,
                    clip_b_id=clips[(ANCHOR_SYSTEM, p.id)].id,
                    system_a=REFERENCE_SYSTEM,
                    system_b=ANCHOR_SYSTEM,
                )
            )
            seq += 1
        session.flush()
        for k in repeat_seqs:
            orig = main_items[k]
            session.add(
                Item(
                    study_id=study.id,
                    seq=seq,
                    kind=ITEM_CATCH_REPEAT,
                    prompt_id=orig.prompt_id,
                    caption=orig.caption,
                    clip_a_id=orig.clip_a_id,
                    clip_b_id=orig.clip_b_id,
                    system_a=orig.system_a,
                    system_b=orig.system_b,
                    repeat_of_id=orig.id,
                )
            )
            seq += 1
        session.commit()
    except BaseException:
        session.rollback()
        for f in written:
            f.unlink(missing_ok=True)
        raise
    (out_dir / "study.json").write_text(
        json.dumps({"study_id": study.id, "config_sha256": config_sha, "config": config}, indent=2, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    for w in warnings:
        log(f"warning: {w}")
    return CreatedStudy(study.id, spec.name, owner_token, config, config_sha, seq, warnings)


def prompt_list_sha256(prompts: list[Prompt]) -> str:
    """sha256 of the ordered [[id, caption], ...] list (the same rule as bench's prompt_list_hash)."""
    return sha256_text(json.dumps([[p.id, p.caption] for p in prompts], ensure_ascii=False))


def _load_prompts(spec: StudySpec, systems: list[SystemSource]) -> tuple[list[Prompt], dict, dict[str, Path]]:
    """(prompts, description for the frozen config, reference clips by id from a split)."""
    refs: dict[str, Path] = {}
    if spec.prompts_csv is not None:
        path = Path(spec.prompts_csv)
        prompts = read_prompts(path)
        info = {"kind": "csv", "path": str(path.resolve()), "file_sha256": audio.file_sha256(path)}
    elif spec.split is not None:
        prompts, refs, desc = prompts_from_split(spec.split)
        info = {"kind": "split", "split": spec.split, "description": desc}
    else:
        prompts = prompts_from_manifests(systems)
        info = {"kind": "manifests", "paths": [str(s.manifest) for s in systems]}
    info["n_prompts"] = len(prompts)
    info["prompt_list_sha256"] = prompt_list_sha256(prompts)
    return prompts, info, refs


def find_study(session: Session, ref: str | int | None) -> Study:
    """A study by numeric id or name; with `ref` None, the only study in the database."""
    if ref is None:
        studies = session.scalars(select(Study)).all()
        if len(studies) != 1:
            raise StudyError(f"the database holds {len(studies)} studies; name one with --study")
        return studies[0]
    ref = str(ref)
    study = session.scalar(select(Study).where(Study.name == ref))
    if study is None and ref.isdigit():
        study = session.get(Study, int(ref))
    if study is None:
        raise StudyError(f"no study {ref!r} in this database")
    return study


def study_config(study: Study) -> dict:
    return json.loads(study.config_json)


def rotate_owner_token(session: Session, study: Study) -> str:
    """A new owner token (the old one stops working); recorded in the audit log, without the token."""
    token = new_token()
    study.owner_token_hash = hash_token(token)
    session.add(
        AuditEvent(study_id=study.id, at=time.time(), action="rotate_owner_token", participant=None, detail_json="{}")
    )
    session.commit()
    return token


__all__ = [
    "CreatedStudy",
    "SourceError",
    "StudyError",
    "StudySpec",
    "create_study",
    "find_study",
    "rotate_owner_token",
    "select_sample",
    "study_config",
]
