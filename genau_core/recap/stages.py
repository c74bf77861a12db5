"""The per-video stages, pure functions shared by the local and the Ray engine.

    plan_video      transcript -> cues; media duration (list metadata or a probe); segments
    decode_segments segment audio, mono, at the native rate; checks where the audio really ends
    (captioning)    batched across videos by the engine, through the Captioner interface, on
                    the audio as it is written: native -> clip rate (16 kHz) -> captioner rate
    finalize_video  merge identical consecutive captions of one gap, drop speech/music captions
    write_clips     decode each kept clip from its source and write it as a WAV file

Captions describe the written clips: a clip written at 16 kHz holds nothing above 8 kHz, so the
captioner hears it band-limited the same way (the written clip, resampled to the captioner's
rate, is exactly what was captioned). Captioning the full-band source instead gave captions of
sounds the clip does not hold (issue 20).

Media that decode shorter than declared (a truncated download; a list duration the file does
not have) keep their usable audio and get a `short_note` that the runner reports in
report.json's "warnings" with the declared and the decoded duration. No segment passes the end
of the decoded audio, nor the declared end (AAC end padding decodes past it).

A problem with one video's files (malformed transcript, missing or undecodable media) is
recorded on its `VideoPlan` (status, file, reason) and never raised: the run goes on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from genau_core.audio.io import AudioError, write_wav
from genau_core.audio.resamplers import resample
from genau_core.captioning import Captioner
from genau_core.recap.caption import caption_waves
from genau_core.recap.decode import decode_media, decode_spans, ms_to_index, probe_duration_ms
from genau_core.recap.fetch import Fetcher, FetchError
from genau_core.recap.filters import Clip, FilterRules, Piece
from genau_core.recap.inputs import VideoItem, safe_id
from genau_core.recap.keyword_rules import Hit
from genau_core.recap.segments import SegmentRules, plan_segments
from genau_core.recap.transcripts import TranscriptError, read_transcript

OK, NO_TRANSCRIPT, TRANSCRIPT_ERROR, MEDIA_ERROR = "ok", "no_transcript", "transcript_error", "media_error"
STATUSES = (OK, NO_TRANSCRIPT, TRANSCRIPT_ERROR, MEDIA_ERROR)
# Decoded audio shorter than declared by more than this is reported. Against the media's own
# header: 50 ms or two codec frames (AAC in Matroska at 48 kHz decodes 11 ms short of the
# container's duration, untruncated); against a list duration: 1 s (yt-dlp durations are whole
# seconds).
MEDIA_SHORT_TOLERANCE_MS = 50
LIST_SHORT_TOLERANCE_MS = 1000


@dataclass
class VideoPlan:
    vidx: int  # position in the shard
    item: VideoItem
    status: str = OK
    stage: str = ""  # where it failed: transcript / probe / decode / write
    error_file: str = ""
    error: str = ""
    transcript_format: str = ""
    duration_ms: int = 0
    covered_ms: int = 0
    gap_ms: int = 0
    n_cues: int = 0
    n_empty_cues: int = 0
    n_cues_past_end: int = 0
    n_gaps: int = 0
    n_gaps_kept: int = 0
    segments: list[tuple[int, int]] = field(default_factory=list)  # planned from the transcript
    segment_gaps: list[int] = field(default_factory=list)  # per segment: its cue-free gap's index
    n_short_audio: int = 0  # planned segments the audio turned out too short for
    media_declared_ms: int = -1  # what the media's header / container declares (-1: nothing, or not decoded)
    decoded_ms: int = -1  # where its decoded audio ends (-1: not decoded)
    short_declared_by: str = ""  # "media" or "list" when the audio decodes short of that duration
    short_note: str = ""  # why it is short / the decoding error that ended it

    def fail(self, status: str, stage: str, where: str, reason: str) -> "VideoPlan":
        self.status, self.stage, self.error_file, self.error = status, stage, where, reason
        return self

    def to_json(self) -> str:
        d = asdict(self)
        d["item"] = json.loads(self.item.to_json())
        return json.dumps(d, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "VideoPlan":
        d = json.loads(text)
        d["item"] = VideoItem(**d["item"])
        d["segments"] = [tuple(s) for s in d["segments"]]
        return cls(**{f.name: d[f.name] for f in fields(cls)})


@dataclass
class DecodedSegment:
    vidx: int
    seg_idx: int
    start_ms: int
    end_ms: int
    wave: np.ndarray  # mono float32 at the media's native rate
    sample_rate: int


@dataclass(frozen=True)
class CaptionedSegment:
    seg_idx: int
    start_ms: int
    end_ms: int
    caption: str
    captioner: str


def plan_video(vidx: int, item: VideoItem, rules: SegmentRules, fetcher: Fetcher) -> VideoPlan:
    plan = VideoPlan(vidx=vidx, item=item)
    if not item.transcript:
        return plan.fail(
            NO_TRANSCRIPT, "transcript", f"video {item.video_id}", "no transcript (discarded, as in the paper)"
        )
    try:
        tr = read_transcript(item.transcript)
    except TranscriptError as e:
        return plan.fail(TRANSCRIPT_ERROR, "transcript", e.path, e.reason)
    plan.transcript_format, plan.n_empty_cues = tr.format, tr.n_empty
    if item.duration_s is not None:
        duration_ms = int(round(item.duration_s * 1000))
    else:
        try:
            duration_ms = probe_duration_ms(fetcher.fetch(item))
        except (FetchError, AudioError) as e:
            return plan.fail(MEDIA_ERROR, "probe", e.path, e.reason)
    sp = plan_segments(tr.cues, duration_ms, rules)
    plan.duration_ms, plan.covered_ms, plan.gap_ms = sp.duration_ms, sp.covered_ms, sp.gap_ms
    plan.n_cues, plan.n_cues_past_end, plan.n_gaps, plan.n_gaps_kept = (
        sp.n_cues,
        sp.n_cues_past_end,
        sp.n_gaps,
        sp.n_gaps_kept,
    )
    plan.segments = list(sp.segments)
    plan.segment_gaps = list(sp.gaps_of)
    return plan


def _trim(wave: np.ndarray, sr: int, start_ms: int, end_ms: int) -> tuple[np.ndarray, int]:
    """If decoding found less audio than planned, the segment ends where the audio does."""
    want = ms_to_index(end_ms, sr) - ms_to_index(start_ms, sr)
    if len(wave) >= want:
        return wave[:want], end_ms
    end = start_ms + len(wave) * 1000 // sr
    return wave[: ms_to_index(end, sr) - ms_to_index(start_ms, sr)], end


def _check_length(plan: VideoPlan, media) -> None:
    """Record the declared and decoded length; note a decoded track that ends early."""
    plan.media_declared_ms = -1 if media.declared is None else media.ms(media.declared)
    plan.decoded_ms = -1 if media.decoded is None else media.ms(media.decoded)
    if media.decoded is None:
        return
    tol = max(MEDIA_SHORT_TOLERANCE_MS, 2 * media.frame_size * 1000 // media.sample_rate)
    decoded = plan.decoded_ms
    if plan.media_declared_ms >= 0 and decoded < plan.media_declared_ms - tol:
        plan.short_declared_by = "media"
        plan.short_note = (
            f"audio decodes to {decoded / 1000:.3f} s but the file declares {plan.media_declared_ms / 1000:.3f} s "
            "(truncated?): clips end where the audio does"
        )
    elif plan.item.duration_s is not None and decoded < plan.duration_ms - LIST_SHORT_TOLERANCE_MS:
        plan.short_declared_by = "list"
        plan.short_note = (
            f"audio decodes to {decoded / 1000:.3f} s but the video list says {plan.duration_ms / 1000:.3f} s: "
            "clips end where the audio does"
        )
    if plan.short_note and media.stop_reason:
        plan.short_note += f"; {media.stop_reason}"


def decode_segments(plan: VideoPlan, fetcher: Fetcher, rules: SegmentRules) -> list[DecodedSegment]:
    """Audio of the planned segments (native rate); on failure the plan records the error."""
    if plan.status != OK or not plan.segments:
        return []
    try:
        media = decode_media(fetcher.fetch(plan.item), plan.segments)
    except (FetchError, AudioError) as e:
        plan.fail(MEDIA_ERROR, "decode", e.path, e.reason)
        return []
    _check_length(plan, media)
    waves, sr = media.waves, media.sample_rate
    out = []
    for k, ((s, e), w) in enumerate(zip(plan.segments, waves)):
        w, end = _trim(w, sr, s, e)
        if end - s <= rules.min_ms:
            plan.n_short_audio += 1
            continue
        out.append(DecodedSegment(plan.vidx, k, s, end, w, sr))
    return out


def caption_input(wave: np.ndarray, sample_rate: int, clip_rate: int | None, caption_rate: int) -> np.ndarray:
    """What the captioner hears: the clip as written (at `clip_rate`; None = the native rate),
    resampled to the captioner's rate, exactly as re-captioning the written file would."""
    if clip_rate and clip_rate != sample_rate:
        wave, sample_rate = resample(wave, sample_rate, clip_rate), clip_rate
    return resample(wave, sample_rate, caption_rate)


def caption_segments(
    cap: Captioner,
    label: str,
    segs: Sequence[DecodedSegment],
    metadata: Sequence[dict[str, str]],
    batch_size: int,
    clip_rate: int | None = None,
) -> list[CaptionedSegment]:
    """One captioner call for `segs` (as written at `clip_rate`, then at the captioner's rate)."""
    waves = [caption_input(d.wave, d.sample_rate, clip_rate, cap.sample_rate) for d in segs]
    captions = caption_waves(cap, waves, metadata, batch_size=batch_size)
    return [CaptionedSegment(d.seg_idx, d.start_ms, d.end_ms, c, label) for d, c in zip(segs, captions)]


def finalize_video(
    captioned: Sequence[CaptionedSegment], filters: FilterRules, segment_gaps: Sequence[int]
) -> tuple[list[Clip], list[tuple[Clip, Hit]]]:
    """Merge (pieces of one gap only) and filter; `segment_gaps[seg_idx]` is a segment's gap."""
    pieces = [Piece(c.start_ms, c.end_ms, c.caption, segment_gaps[c.seg_idx]) for c in captioned if c.caption]
    return filters.apply(pieces)


def clip_id(video_id: str, start_ms: int, end_ms: int) -> str:
    return f"{safe_id(video_id)}_{start_ms:09d}_{end_ms:09d}"


@dataclass
class WriteJob:
    vidx: int
    item: VideoItem
    clips: list[Clip]
    folder: str  # relative to the output root, e.g. clips/00003

    def to_json(self) -> str:
        return json.dumps(
            {
                "vidx": self.vidx,
                "item": json.loads(self.item.to_json()),
                "clips": [asdict(c) for c in self.clips],
                "folder": self.folder,
            },
            sort_keys=True,
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> "WriteJob":
        d = json.loads(text)
        return cls(d["vidx"], VideoItem(**d["item"]), [Clip(**c) for c in d["clips"]], d["folder"])


@dataclass
class WriteResult:
    vidx: int
    audio: list[str]  # relative path per clip ("" when it failed)
    sample_rate: int = 0
    error_file: str = ""
    error: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "WriteResult":
        return cls(**json.loads(text))


def write_clips(job: WriteJob, out_root: str | Path, clip_sample_rate: int | None, fetcher: Fetcher) -> WriteResult:
    """Decode each clip's interval from the source and write `<folder>/<clip id>.wav` (atomic)."""
    out_root = Path(out_root)
    try:
        waves, sr = decode_spans(fetcher.fetch(job.item), [(c.start_ms, c.end_ms) for c in job.clips])
    except (FetchError, AudioError) as e:
        return WriteResult(job.vidx, [""] * len(job.clips), 0, e.path, e.reason)
    rate = clip_sample_rate or sr
    paths = []
    for c, w in zip(job.clips, waves):
        want = ms_to_index(c.end_ms, sr) - ms_to_index(c.start_ms, sr)
        if len(w) < want:
            return WriteResult(
                job.vidx,
                [""] * len(job.clips),
                0,
                job.item.media or job.item.video_id,
                f"clip {c.start_ms}-{c.end_ms} ms decodes {len(w)} of {want} samples",
            )
        rel = f"{job.folder}/{clip_id(job.item.video_id, c.start_ms, c.end_ms)}.wav"
        write_wav(out_root / rel, resample(w[:want], sr, rate), rate)
        paths.append(rel)
    return WriteResult(job.vidx, paths, rate)
