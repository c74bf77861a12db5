from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.splits import SplitError, load_split
from bench.splits.audiocaps import load_audiocaps
from bench.splits.bigsoundbank import load_bigsoundbank
from bench.splits.manifest import load_manifest

AUDIOCAPS_CSV = '''audiocap_id,youtube_id,start_time,caption
103549,--0w1YA1Hm4,30,"A vehicle driving as a man and woman are talking, and laughing"
103548,--0w1YA1Hm4,30,High pitched speaking and laughing
200,-AheI8Epim4,30,"A woman speaks,
then a baby cries"
199,-AheI8Epim4,30,A baby cries while a woman talks
5,zzz_missing,0,"Rain ""pours"" on a roof"
'''


def _wav(path: Path, seconds: float = 1.5, sr: int = 16000) -> Path:
    sf.write(path, np.zeros(int(seconds * sr), np.float32), sr)
    return path


def test_audiocaps_official_format_with_quotes_commas_newlines(tmp_path):
    csv = tmp_path / "test.csv"
    csv.write_text(AUDIOCAPS_CSV)
    audio = tmp_path / "audio"
    audio.mkdir()
    _wav(audio / "--0w1YA1Hm4.wav")
    _wav(audio / "Y-AheI8Epim4.wav")  # audioldm-style "Y" prefix is found too
    split = load_audiocaps(csv, audio)
    assert [it.id for it in split.items] == ["--0w1YA1Hm4", "-AheI8Epim4", "zzz_missing"]
    # prompt rule: smallest audiocap_id, independent of row order
    assert split.items[0].prompt == "High pitched speaking and laughing"
    assert split.items[1].prompt == "A baby cries while a woman talks"
    assert split.items[1].captions == ("A baby cries while a woman talks", "A woman speaks, then a baby cries")
    assert split.items[2].prompt == 'Rain "pours" on a roof'
    # missing clips counted, never dropped
    assert split.missing_references == ["zzz_missing"]
    assert split.n_with_reference == 2 and len(split.items) == 3
    assert split.summary()["n_missing_reference"] == 1
    assert len(split.prompt_list_hash()) == 64


def test_audiocaps_bad_row_names_file_and_line(tmp_path):
    csv = tmp_path / "test.csv"
    csv.write_text(AUDIOCAPS_CSV + "notanumber,abc,30,a dog barks\n")
    with pytest.raises(SplitError, match=r"test\.csv:8: audiocap_id 'notanumber' is not an integer"):
        load_audiocaps(csv, None)
    csv.write_text("audiocap_id,youtube_id,caption\n1,a,b\n")
    with pytest.raises(SplitError, match=r"test\.csv:1: missing column\(s\) \['start_time'\]"):
        load_audiocaps(csv, None)
    csv.write_text(AUDIOCAPS_CSV + "7,abc,30\n")
    with pytest.raises(SplitError, match=r"test\.csv:8: expected 4 fields"):
        load_audiocaps(csv, None)


def test_audiocaps_missing_csv_says_what_to_get(tmp_path):
    with pytest.raises(SplitError, match="AudioCaps test.csv not found .* --split-csv"):
        load_split("audiocaps", csv=tmp_path / "nope.csv")


WAVTEXT_CSV = '''view_link,download_link,title,description,fname,tags
https://bigsoundbank.com/detail-0001-door.html,https://bigsoundbank.com/0001.wav,Door,"A wooden door, creaking
slowly",0001.wav,"door,wood"
https://freesound.org/s/1,https://freesound.org/1.wav,Other,Not ours,f1.wav,x
https://bigsoundbank.com/detail-0002-rain.html,https://bigsoundbank.com/0002.wav,Heavy rain,,0002.wav,rain
'''


def test_bigsoundbank_filters_rows_and_falls_back_to_title(tmp_path):
    csv = tmp_path / "WavText5K.csv"
    csv.write_text(WAVTEXT_CSV)
    audio = tmp_path / "audio"
    audio.mkdir()
    _wav(audio / "0001.wav")
    split = load_bigsoundbank(csv, audio)
    assert [it.id for it in split.items] == ["0001", "0002"]
    assert split.items[0].prompt == "A wooden door, creaking slowly"
    assert split.items[1].prompt == "Heavy rain"  # empty description -> title
    assert split.missing_references == ["0002"]


def test_manifest_jsonl_error_names_line(tmp_path):
    m = tmp_path / "m.jsonl"
    m.write_text('{"id": "a", "caption": "dog"}\n{"id": "b", "caption": \n')
    with pytest.raises(SplitError, match=r"m\.jsonl:2: invalid JSON"):
        load_manifest(m)
    m.write_text('{"id": "a", "caption": "dog"}\n{"id": "a", "caption": "cat"}\n')
    with pytest.raises(SplitError, match=r"m\.jsonl:2: duplicate id 'a' \(first on line 1\)"):
        load_manifest(m)


def test_manifest_csv_relative_audio(tmp_path):
    _wav(tmp_path / "x.wav")
    m = tmp_path / "m.csv"
    m.write_text("id,caption,audio\nx,a dog,x.wav\ny,a cat,missing.wav\n")
    split = load_split(str(m))
    assert split.items[0].reference == tmp_path / "x.wav"
    assert split.missing_references == ["y"]


def test_demo_split_is_deterministic_and_offline():
    a = load_split("demo")
    assert len(a.items) == 10 and a.n_with_reference == 10
    x, sr = sf.read(a.items[0].reference)
    assert sr == 16000 and len(x) == 160000
    assert load_split("demo").prompt_list_hash() == a.prompt_list_hash()


def test_unknown_split_suggests():
    with pytest.raises(SplitError, match="Did you mean 'audiocaps'"):
        load_split("audiocap")
