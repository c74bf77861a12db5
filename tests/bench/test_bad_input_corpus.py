"""The bad-input corpus of issue 15 ("Done when"), through both `bench score` and `bench run`.

Audio cases (one folder; scoring goes on, each case is named once):
    corrupt, 0-byte, NaN, inf, short   -> one line `unreadable <side> file <path>: <reason>`, left out
    stereo, 8 kHz                      -> one line `note: ... <path>` (made mono / resampled as each backbone's
                                          reference tool does), scored
    silent, flac, mp3                  -> scored as is, no line (counted in `evaluated`)
Fatal cases (one line `error: ...` naming the file and line, non-zero exit, nothing generated or scored):
    duplicate ids across extensions (a.wav + a.flac), and manifests that are malformed (missing column,
    duplicate id, wrong field count, invalid JSON line), non-UTF-8, empty, header-only, missing, or hold an
    unterminated quote.
Through `bench score` the audio is the generated side (`--gen`) and the manifests are `--prompts`; through
`bench run` (audioldm-l-tiny, `--backbones random`) the audio is the reference side (a manifest's `audio`
column) and the manifests are `--split`. README "Bad inputs" lists the same behaviour.

Every case asserts: no traceback (no exception other than SystemExit leaves `main`, and no "Traceback"
is printed), and exactly one output line names the case's file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.audio import wav_bytes, write_wav
from bench.cli import main

SR = 16000
GOOD = [f"good_{i}" for i in range(4)]


def _noise(seconds: float, sr: int = SR, seed: int = 0, channels: int = 1) -> np.ndarray:
    x = 0.1 * np.random.default_rng(seed).standard_normal((int(seconds * sr), channels)).astype(np.float32)
    return x[:, 0] if channels == 1 else x


def _with(value: float) -> np.ndarray:
    x = _noise(2, seed=5)
    x[100] = value
    return x


# name -> (file name, writer(path), expected: ("rejected", reason regex) | ("note", regex) | ("scored", None))
AUDIO_CASES = {
    "corrupt": (
        "corrupt.wav",
        lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4),
        ("rejected", r"cannot decode audio"),
    ),
    "zero-byte": ("zero_byte.wav", lambda p: p.write_bytes(b""), ("rejected", r"cannot decode audio|holds no samples")),
    "nan": ("nan.wav", lambda p: p.write_bytes(wav_bytes(_with(np.nan), SR)), ("rejected", r"NaN or inf samples")),
    "inf": ("inf.wav", lambda p: p.write_bytes(wav_bytes(_with(np.inf), SR)), ("rejected", r"NaN or inf samples")),
    "short": ("short.wav", lambda p: write_wav(p, _noise(0.5, seed=6), SR), ("rejected", r"too short: 0\.500 s")),
    "stereo": (
        "stereo.wav",
        lambda p: sf.write(str(p), _noise(2, seed=7, channels=2), SR, subtype="FLOAT"),
        (
            "note",
            r"note: 1 {side} file with 2 channels, made mono as each backbone's reference tool does "
            r"\(panns-cnn14-16k: first channel\): ",
        ),
    ),
    "8 kHz": (
        "rate8k.wav",
        lambda p: sf.write(str(p), _noise(2, sr=8000, seed=8), 8000, subtype="FLOAT"),
        (
            "note",
            r"note: 1 {side} file at 8000 Hz \(not 16000 Hz\), resampled to each backbone's rate "
            r"with each backbone's reference-tool resampler: ",
        ),
    ),
    "silent": ("silent.wav", lambda p: write_wav(p, np.zeros(2 * SR, np.float32), SR), ("scored", None)),
    "flac": ("flac_clip.flac", lambda p: sf.write(str(p), _noise(2, seed=9), SR, format="FLAC"), ("scored", None)),
    "mp3": ("mp3_clip.mp3", lambda p: sf.write(str(p), _noise(2, seed=10), SR, format="MP3"), ("scored", None)),
}
MP3_WRITABLE = "MP3" in sf.available_formats()  # libsndfile >= 1.1 (1.2.2 here); else the mp3 case is skipped


def _audio_cases() -> dict:
    return {k: v for k, v in AUDIO_CASES.items() if k != "mp3" or MP3_WRITABLE}


@pytest.fixture(autouse=True)
def _pytorch_kernels(monkeypatch):
    """PyTorch's own CPU kernels: on 28 two-second clips the faster kernels' weight preparation costs more than
    it saves (`bench score` on this corpus, random Cnn14: 15.9 s CPU with them, 8.0 s without)."""
    monkeypatch.setenv("GENAU_BENCH_CPU_KERNELS", "default")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    audio, ref = root / "audio", root / "ref"
    audio.mkdir()
    for i, stem in enumerate(GOOD):
        write_wav(audio / f"{stem}.wav", _noise(2, seed=20 + i), SR)
    for file_name, write, _ in _audio_cases().values():
        write(audio / file_name)
    for i, p in enumerate(sorted(audio.iterdir())):  # references: one good clip per id
        write_wav(ref / f"{p.stem}.wav", _noise(2, seed=40 + i), SR)
    rows = ["id,caption,audio"] + [
        f"{p.stem},sound number {i},audio/{p.name}" for i, p in enumerate(sorted(audio.iterdir()))
    ]
    (root / "split.csv").write_text("\n".join(rows) + "\n")
    return root


def _lines(captured) -> list[str]:
    text = captured.out + "\n" + captured.err
    return [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]


def _check_audio_cases(lines: list[str], folder: Path, side: str) -> None:
    for case, (file_name, _, (kind, pattern)) in _audio_cases().items():
        path = str(folder / file_name)
        naming = [line for line in lines if path in line]
        if kind == "scored":
            assert naming == [], (case, naming)
            continue
        assert len(naming) == 1, (case, naming)
        if kind == "rejected":
            assert re.fullmatch(rf"unreadable {side} file {re.escape(path)}: .*({pattern}).*", naming[0]), (
                case,
                naming[0],
            )
        else:
            assert re.match(pattern.format(side=side), naming[0]) and naming[0].endswith(path), (case, naming[0])
    assert not any("Traceback" in line for line in lines)


N_REJECTED = sum(1 for *_, (kind, _) in AUDIO_CASES.values() if kind == "rejected")


def test_audio_corpus_through_bench_score(corpus, tmp_path, capsys):
    out = tmp_path / "score.json"
    assert (
        main(
            [
                "score",
                "--gen",
                str(corpus / "audio"),
                "--ref",
                str(corpus / "ref"),
                "--backbones",
                "random",
                "--metrics",
                "FD",
                "--bootstrap",
                "0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    _check_audio_cases(_lines(capsys.readouterr()), corpus / "audio", "generated")
    record = json.loads(out.read_text())
    n_files = len(GOOD) + len(_audio_cases())
    assert record["n_evaluated"] == n_files - N_REJECTED  # silent, stereo, 8 kHz, flac, mp3 are scored
    assert {Path(f["file"]).name for f in record["failures"]} == {
        name for name, _, (kind, _) in _audio_cases().values() if kind == "rejected"
    }
    fd = record["metrics"][0]
    assert fd["n"] == n_files - N_REJECTED and np.isfinite(fd["value"])


def test_audio_corpus_through_bench_run(corpus, tmp_path, capsys):
    """The corpus as a split's references: audioldm-l-tiny generates one clip per id; the bad references are
    named. (audioldm-l-tiny: 15.9 s CPU for this command, genau-tiny 32.7 s: GenAu decodes 10.24 s per clip.)"""
    assert (
        main(
            [
                "run",
                "--models",
                "audioldm-l-tiny",
                "--split",
                str(corpus / "split.csv"),
                "--steps",
                "2",
                "--duration",
                "2",
                "--batch-size",
                "16",
                "--backbones",
                "random",
                "--metrics",
                "FD",
                "--bootstrap",
                "0",
                "--out",
                str(tmp_path / "runs"),
            ]
        )
        == 0
    )
    _check_audio_cases(_lines(capsys.readouterr()), corpus / "audio", "reference")
    record = json.loads(next((tmp_path / "runs").rglob("results/*.json")).read_text())
    assert {Path(f["file"]).name for f in record["failures"]} == {
        name for name, _, (kind, _) in _audio_cases().values() if kind == "rejected"
    }


# --- fatal cases: one line, non-zero exit, nothing done ---------------------------------------------


MANIFESTS = {  # file name -> (bytes or None for "missing", what the one line must contain besides the path)
    "missing-column.csv": (b"id,text\ngood_0,rain\n", [":1", "missing column(s) ['caption']"]),
    "duplicate-id.csv": (b"id,caption\ngood_0,rain\ngood_1,dog\ngood_0,wind\n", [":4", "duplicate id 'good_0'"]),
    "wrong-field-count.csv": (b"id,caption\ngood_0,rain,loud\n", [":2", "expected 2 fields"]),
    "invalid-line.jsonl": (b'{"id": "good_0", "caption": "rain"}\n{"id": "good_1", \n', [":2", "invalid JSON"]),
    "non-utf8.csv": (b"id,caption\ngood_0,caf\xe9 ambience\n", [":2", "byte 0xe9", "not UTF-8"]),
    "empty.csv": (b"", ["empty file"]),
    "header-only.csv": (b"id,caption\n", ["no rows after the header"]),
    "missing.csv": (None, ["not found"]),
    "unterminated-quote.csv": (
        b'id,caption\ngood_0,"rain on a roof\ngood_1,dog barks\ngood_2,wind\n',
        [":2", "unterminated quote"],
    ),
}


def _one_error_line(argv: list[str], capsys, *needles: str) -> str:
    with pytest.raises(SystemExit) as err:
        main(argv)
    message = str(err.value.code)
    printed = _lines(capsys.readouterr())
    assert not any("Traceback" in line for line in printed)
    assert message.startswith("error: ") and "\n" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def _manifest(tmp_path: Path, name: str) -> Path:
    content, _ = MANIFESTS[name]
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_manifest_through_bench_score(name, corpus, tmp_path, capsys):
    path = _manifest(tmp_path, name)
    _one_error_line(
        [
            "score",
            "--gen",
            str(corpus / "audio"),
            "--ref",
            str(corpus / "ref"),
            "--backbones",
            "random",
            "--metrics",
            "FD",
            "--prompts",
            str(path),
        ],
        capsys,
        f"--prompts {path}",
        *MANIFESTS[name][1],
    )


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_manifest_through_bench_run(name, tmp_path, capsys):
    path = _manifest(tmp_path, name)
    _one_error_line(
        [
            "run",
            "--models",
            "genau-tiny",
            "--split",
            str(path),
            "--backbones",
            "random",
            "--metrics",
            "FD",
            "--out",
            str(tmp_path / "runs"),
        ],
        capsys,
        str(path),
        *MANIFESTS[name][1],
    )
    assert not (tmp_path / "runs").exists()


def test_duplicate_ids_across_extensions_through_bench_score(tmp_path, capsys):
    gen = tmp_path / "gen"
    for stem in GOOD:
        write_wav(gen / f"{stem}.wav", _noise(2), SR)
    sf.write(str(gen / "good_0.flac"), _noise(2), SR, format="FLAC")
    _one_error_line(
        ["score", "--gen", str(gen), "--ref", str(gen), "--backbones", "random", "--metrics", "FD"],
        capsys,
        "good_0.flac",
        "good_0.wav",
        "'good_0'",
    )


def test_duplicate_ids_across_extensions_through_bench_run(tmp_path, capsys):
    """An AudioCaps reference folder holding both `<youtube_id>.wav` and `<youtube_id>.flac`."""
    csv = tmp_path / "test.csv"
    csv.write_text("audiocap_id,youtube_id,start_time,caption\n1,yt1,0,rain on a roof\n2,yt2,0,a dog barks\n")
    audio = tmp_path / "audio"
    for stem in ("yt1", "yt2"):
        write_wav(audio / f"{stem}.wav", _noise(2), SR)
    sf.write(str(audio / "yt1.flac"), _noise(2), SR, format="FLAC")
    _one_error_line(
        [
            "run",
            "--models",
            "genau-tiny",
            "--split",
            "audiocaps",
            "--split-csv",
            str(csv),
            "--ref-dir",
            str(audio),
            "--backbones",
            "random",
            "--metrics",
            "FD",
            "--out",
            str(tmp_path / "runs"),
        ],
        capsys,
        "yt1.wav",
        "yt1.flac",
    )
    assert not (tmp_path / "runs").exists()


def test_mp3_is_in_the_corpus_here():
    """Say so when this machine's libsndfile cannot write MP3 (the mp3 case is then left out above)."""
    if not MP3_WRITABLE:
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot write MP3: the mp3 corpus case is not run")
