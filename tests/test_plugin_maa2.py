"""Make-An-Audio 2 structured captions (issue 7, item 3): the official TSV format and the fallback."""

from __future__ import annotations

import pytest

from bench.plugins.make_an_audio_2 import (
    StructCaptionTable,
    fallback_struct_caption,
    parse_struct_caption,
    structure_prompts,
    summarise_sources,
)

HEADER = "name\tdataset\tori_cap\taudio_path\tmel_path\tcaption\n"
# rows in the layout of the official audiocaps_test_struct.tsv
ROWS = [
    ("Y7fmOlUlwoNg", "Constant rattling noise and sharp vibrations", "<constant rattling noise& all>@<sharp vibrations& all>"),
    (
        "Y6BJ455B1aAs",
        "A rocket flies by followed by a loud explosion and fire crackling as a truck engine runs idle",
        "<rocket flying by& start>@<loud explosion& mid>@<fire crackling& mid>@<truck engine idle& mid>",
    ),
    ("YVjSEIRnLAh8", "Food is frying, and a woman talks", "<frying food sizzling& all>@<woman talking& all>"),
    ("YAAAAAAAAAAA", "A dog barks", "<dog barking& all>"),
    ("YBBBBBBBBBBB", "A dog barks", "<dog barking& start>@<silence& end>"),
]


def write_tsv(path, rows=ROWS, header=HEADER):
    lines = [header] + [f"{n}\taudiocaps\t{c}\t/x/{n}.wav\t/x/{n}_mel.npy\t{s}\n" for n, c, s in rows]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_parse_round_trip_and_errors():
    s = "<rocket flying by& start>@<loud explosion& mid>"
    parsed = parse_struct_caption(s)
    assert parsed.events == (("rocket flying by", "start"), ("loud explosion", "mid"))
    assert str(parsed) == s
    assert str(parse_struct_caption(" <a&all> @ <b&  end> ")) == "<a& all>@<b& end>"
    for bad in ["", "rocket flying", "<rocket& sometimes>", "<& all>", "<a& all>@", "<a, all>"]:
        with pytest.raises(ValueError):
            parse_struct_caption(bad)


def test_fallback_is_the_official_single_event_form():
    assert fallback_struct_caption("A man  speaks\tloudly") == "<A man speaks loudly& all>"
    assert parse_struct_caption(fallback_struct_caption("cats & dogs <3")).events == (("cats dogs 3", "all"),)
    with pytest.raises(ValueError):
        fallback_struct_caption("  ")


def test_table_lookup_sources(tmp_path):
    table = StructCaptionTable.from_tsv(write_tsv(tmp_path / "audiocaps_test_struct.tsv"))
    assert len(table) == 4
    # exact, whitespace- and case-insensitive
    assert table.lookup("food is frying,  and a woman talks") == ("<frying food sizzling& all>@<woman talking& all>", "struct-file")
    # same caption text, two clips: by clip id when known, else first in file order (recorded)
    assert table.lookup("A dog barks", youtube_id="BBBBBBBBBBB") == ("<dog barking& start>@<silence& end>", "struct-file")
    assert table.lookup("A dog barks") == ("<dog barking& all>", "struct-file:first-of-2")
    assert table.lookup("A cat meows") == ("<A cat meows& all>", "fallback")


def test_structure_prompts_records_each_choice(tmp_path):
    table = StructCaptionTable.from_tsv(write_tsv(tmp_path / "s.tsv"))
    prompts = ["Constant rattling noise and sharp vibrations", "Birds sing at dawn", "A dog barks"]
    recs = structure_prompts(prompts, table)
    assert [r["source"] for r in recs] == ["struct-file", "fallback", "struct-file:first-of-2"]
    assert recs[1]["struct_caption"] == "<Birds sing at dawn& all>"
    assert summarise_sources(recs) == {"struct-file": 2, "fallback": 1}
    assert [r["source"] for r in structure_prompts(prompts, None)] == ["fallback"] * 3
    with pytest.raises(ValueError, match="2 clip ids"):
        structure_prompts(prompts, table, youtube_ids=["a", "b"])


def test_bad_files_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="audiocaps_test_struct"):
        StructCaptionTable.from_tsv(tmp_path / "missing.tsv")
    with pytest.raises(ValueError, match="missing column"):
        StructCaptionTable.from_tsv(write_tsv(tmp_path / "a.tsv", header="name\tori_cap\taudio_path\tmel_path\tstruct\tx\n"))
    bad = ROWS[:1] + [("YCCCCCCCCCCC", "A bell", "<bell ringing& twice>")]
    with pytest.raises(ValueError, match=r"b\.tsv:3: .*twice"):
        StructCaptionTable.from_tsv(write_tsv(tmp_path / "b.tsv", rows=bad))
