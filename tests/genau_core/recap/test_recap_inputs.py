"""The video list: CSV / JSONL, column aliases, relative paths, and list-level errors."""

import pytest

from genau_core.recap.fetch import FetchError, LocalFetcher, make_fetcher
from genau_core.recap.inputs import VideoItem, VideoListError, read_video_list, safe_id


def test_csv_with_aliases_and_relative_paths(tmp_path):
    (tmp_path / "lists").mkdir()
    p = tmp_path / "lists" / "v.csv"
    p.write_text(
        "youtube_id,media_path,subtitles,title,caption,duration,url\n"
        'abc,../m/abc.mp4,../s/abc.vtt,"A title, with comma",  a  video   caption ,12.5,https://y/abc\n'
        "def,/abs/def.wav,,,,,\n"
    )
    a, b = read_video_list(p)
    assert (
        a.video_id == "abc"
        and a.media == str(tmp_path / "m" / "abc.mp4")
        and a.transcript == str(tmp_path / "s" / "abc.vtt")
    )
    assert (
        a.title == "A title, with comma"
        and a.video_caption == "a video caption"
        and a.duration_s == 12.5
        and a.url == "https://y/abc"
    )
    assert a.metadata == {"title": "A title, with comma", "video_caption": "a video caption", "description": ""}
    assert a.line == 2 and b.line == 3
    assert b.media == "/abs/def.wav" and b.transcript == "" and b.duration_s is None
    assert VideoItem.from_json(a.to_json()) == a


@pytest.mark.parametrize(
    "text, msg",
    [
        ('{"id": "a"}\n{"id": "a"}\n', "v.jsonl:2: duplicate video id 'a' (first on line 1)"),
        ('{"media": "x.mp4"}\n', "v.jsonl:1: empty or missing video id"),
        ('{"id": "a", "duration": "long"}\n', "duration 'long' is not a number"),
        ('{"id": "a", "duration": -3}\n', "negative duration"),
        ('{"id": "a"}\nnot json\n', "v.jsonl:2: invalid JSON"),
        ("\n", "no videos"),
        ('{"id": "a b"}\n{"id": "a_b-' + "x" * 8 + '"}\n', None),  # distinct safe names: fine
    ],
)
def test_list_errors(tmp_path, text, msg):
    p = tmp_path / "v.jsonl"
    p.write_text(text)
    if msg is None:
        assert len(read_video_list(p)) == 2
        return
    with pytest.raises(VideoListError) as e:
        read_video_list(p)
    assert msg in str(e.value)


def test_unknown_list_type(tmp_path):
    p = tmp_path / "v.txt"
    p.write_text("id\n")
    with pytest.raises(VideoListError, match="unknown list type"):
        read_video_list(p)
    with pytest.raises(VideoListError, match="not found"):
        read_video_list(tmp_path / "none.csv")


def test_safe_id():
    assert safe_id("dQw4w9WgXcQ") == "dQw4w9WgXcQ"
    assert safe_id("-_x") == "-_x"
    s = safe_id("odd/id 2")
    assert s.startswith("odd_id_2-") and len(s) == len("odd_id_2-") + 8
    assert safe_id("odd/id 2") != safe_id("odd_id 2") != safe_id("odd_id_2")
    assert safe_id(".hidden").startswith("_hidden-")


def test_local_fetcher_and_fetcher_specs(tmp_path):
    f = make_fetcher("local")
    assert isinstance(f, LocalFetcher)
    with pytest.raises(FetchError, match="no media path"):
        f.fetch(VideoItem("a"))
    with pytest.raises(FetchError, match="media file not found"):
        f.fetch(VideoItem("a", media=str(tmp_path / "x.mp4")))
    (tmp_path / "x.mp4").write_bytes(b"")
    assert f.fetch(VideoItem("a", media=str(tmp_path / "x.mp4"))) == tmp_path / "x.mp4"
    with pytest.raises(ValueError, match="needs --fetch-command"):
        make_fetcher("command")
    with pytest.raises(ValueError, match="unknown fetcher"):
        make_fetcher("yt")
    with pytest.raises(TypeError, match="did not build"):
        make_fetcher("collections:OrderedDict")
