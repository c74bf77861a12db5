from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.splits import SplitError, load_split
from bench.splits.audiocaps import load_audiocaps
from bench.splits.bigsoundbank import load_bigsoundbank
from bench.splits.manifest import load_manifest

AUDIOCAPS_CSV = """audiocap_id,youtube_id,start_time,caption
103549,--0w1YA1Hm4,30,"A vehicle driving as a man and woman are talking, and laughing"
103548,--0w1YA1Hm4,30,High pitched speaking and laughing
200,-AheI8Epim4,30,"A woman speaks,
then a baby cries"
199,-AheI8Epim4,30,A baby cries while a woman talks
5,zzz_missing,0,"Rain ""pours"" on a roof"
"""


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


WAVTEXT_CSV = """view_link,download_link,title,description,fname,tags
https://bigsoundbank.com/detail-0001-door.html,https://bigsoundbank.com/0001.wav,Door,"A wooden door, creaking
slowly",0001.wav,"door,wood"
https://freesound.org/s/1,https://freesound.org/1.wav,Other,Not ours,f1.wav,x
https://bigsoundbank.com/detail-0002-rain.html,https://bigsoundbank.com/0002.wav,Heavy rain,,0002.wav,rain
"""


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


# -- issue 15 item 3: every row accounted for, nothing merged ------------------------------------------------
WAVTEXT_EMPTY_ROWS = (
    WAVTEXT_CSV
    + """https://bigsoundbank.com/detail-0477-wilhelm-scream.html,https://bigsoundbank.com/0477.wav,,,0477.wav,scream
https://bigsoundbank.com/sound-1110-tibetan-bowl-struck.html,https://bigsoundbank.com/1110.wav, ,  ,1110.wav,bowl
https://bigsoundbank.com/,https://bigsoundbank.com/0999.wav,,,0999.wav,x
https://bigsoundbank.com/detail-0003-wind.html,https://bigsoundbank.com/0003.wav,Wind,Strong wind,0003.wav,wind
"""
)


def test_bigsoundbank_rows_without_text_use_the_view_link_slug_or_are_excluded_and_named(tmp_path, capsys):
    """The published WavText5K.csv stopped `bench splits` at its line 222 ("both description and title are
    empty"). Now: the title in the view_link slug, or (no slug words either) excluded, counted and named."""
    csv = tmp_path / "WavText5K.csv"
    csv.write_text(WAVTEXT_EMPTY_ROWS)
    split = load_bigsoundbank(csv, None)
    assert [it.id for it in split.items] == ["0001", "0002", "0477", "1110", "0003"]
    by_id = {it.id: it for it in split.items}
    assert by_id["0477"].prompt == "wilhelm scream" and by_id["0477"].meta["prompt_source"] == "view_link slug"
    assert by_id["1110"].prompt == "tibetan bowl struck"
    assert by_id["0002"].meta["prompt_source"] == "title" and by_id["0003"].meta["prompt_source"] == "description"
    assert split.excluded == [{"line": 8, "id": "0999", "reason": "description, title and view_link slug all empty"}]
    summary = split.summary()
    assert summary["n_excluded"] == 1 and summary["excluded"][0]["id"] == "0999"
    notes = split.console_notes()
    assert notes[0].startswith("2 prompt(s) of")
    assert notes[0].endswith("taken from the view_link slug (description and title empty): 0477, 1110")
    assert notes[1].endswith("excluded (description, title and view_link slug all empty): 0999 (line 8)")
    assert "n_prompts" in summary and summary["n_prompts"] == 5


def test_unterminated_quote_is_detected_and_names_its_line(tmp_path):
    """An unterminated quote swallowed the next rows into one caption; now an error naming the line."""
    m = tmp_path / "m.csv"
    m.write_text('id,caption\na,a dog barks\nb,"a cat meows\nc,a bird sings\nd,"a cow moos"\ne,ok\n')
    expected = r"m\.csv:3: unterminated quote: a quoted field opened on this line runs to line 5"
    with pytest.raises(SplitError, match=expected):
        load_manifest(m)
    m.write_text('id,caption\na,a dog barks\nb,"a cat meows\nc,a bird sings\n')  # never closed: to the end
    with pytest.raises(SplitError, match=r"m\.csv:3: unterminated quote: .* runs to the end of the file"):
        load_manifest(m)
    csv = tmp_path / "test.csv"
    csv.write_text(AUDIOCAPS_CSV + '6,qq,0,A man says "hi" loudly\n')  # a quote inside an unquoted field is fine
    assert load_audiocaps(csv, None).items[-1].prompt == 'A man says "hi" loudly'


def test_two_reference_files_for_one_clip_are_an_error_naming_both(tmp_path):
    csv = tmp_path / "test.csv"
    csv.write_text(AUDIOCAPS_CSV)
    audio = tmp_path / "audio"
    audio.mkdir()
    _wav(audio / "--0w1YA1Hm4.wav")
    _wav(audio / "--0w1YA1Hm4.flac")
    with pytest.raises(SplitError, match=r"--0w1YA1Hm4\.wav and --0w1YA1Hm4\.flac are both the reference of one clip"):
        load_audiocaps(csv, audio)


def test_non_utf8_byte_in_a_published_csv_is_one_line_naming_line_and_column(tmp_path):
    from bench.splits import load_split
    from bench.splits.base import SplitError

    path = tmp_path / "WavText5K.csv"
    path.write_bytes(
        b"view_link,download_link,title,description,fname,tags\nhttps://bigsoundbank.com/a.html,x,caf\xe9,d,a.wav,t\n"
    )
    with pytest.raises(SplitError, match=r"WavText5K.csv:2: byte 0xe9 at column 38 is not UTF-8"):
        load_split("bigsoundbank", csv=path)
    (tmp_path / "test.csv").write_bytes(b"audiocap_id,youtube_id,start_time,caption\n1,abc,0,caf\xe9\n")
    with pytest.raises(SplitError, match=r"test.csv:2: byte 0xe9 at column 12 is not UTF-8"):
        load_split("audiocaps", csv=tmp_path / "test.csv")
