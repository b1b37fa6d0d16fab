"""Bad-input suite, essays from ConfigMaps (CSV, JSONL) and cjctl's files: NaN, infinities, NUL,
byte order marks, duplicate ids, empty texts. Each is refused naming the place and the problem,
or read as a person would mean it (a BOM is not part of the first column's name)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cj_operator.cli.essays_input import EssayInputError, read_essays
from cj_operator.essays_source import (
    EssaySourceError,
    check_batch_essays,
    essays_from_config_map,
    parse_csv,
    parse_jsonl,
)
from cj_operator.spec import EssaySource

WHERE = "configmap/essays key e.csv"


def test_a_csv_with_a_byte_order_mark_and_crlf_lines_is_read() -> None:
    essays = parse_csv("\ufeffid,text,class\r\na,First.,7B\r\nb,Second.,7C\r\n", WHERE)
    assert [(e.id, e.text, e.metadata) for e in essays] == [
        ("a", "First.", {"class": "7B"}),
        ("b", "Second.", {"class": "7C"}),
    ]


def test_a_jsonl_with_a_byte_order_mark_is_read() -> None:
    lines = [json.dumps({"id": "a", "text": "One."}), json.dumps({"id": "b", "text": "Two."})]
    essays = parse_jsonl("\ufeff" + "\n".join(lines), "w")
    assert [e.id for e in essays] == ["a", "b"]


def test_non_finite_numbers_in_csv_cells_stay_text() -> None:
    essays = parse_csv("id,text,a,b,c,d\nx,T.,1e999,NaN,-inf,2.5e3\n", WHERE)
    assert essays[0].metadata == {"a": "1e999", "b": "NaN", "c": "-inf", "d": 2500.0}


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('{"id": "a", "text": "x", "metadata": {"score": NaN}}', "metadata.score: nan"),
        ('{"id": "a", "text": "x", "metadata": {"s": [1, -Infinity]}}', "metadata.s[1]: -inf"),
        ('{"id": "a\\u0000", "text": "x"}', "id: Value error, control character '\\x00'"),
        ('{"id": "a", "text": "x\\u001b[2J"}', "text: Value error, control character '\\x1b'"),
        ('{"id": "a", "text": ""}', "text: String should have at least 1 character"),
        ('{"id": true, "text": "x"}', "id: Input should be a valid string"),
        ('{"id": 1.5, "text": "x"}', "id: Input should be a valid string"),
        ('{"id": "a", "text": "x", "metadata": [1]}', "metadata: Input should be a valid dict"),
    ],
    ids=[
        "NaN metadata",
        "-Infinity metadata",
        "NUL id",
        "escape text",
        "empty text",
        "boolean id",
        "float id",
        "list metadata",
    ],
)
def test_jsonl_lines_that_cannot_be_stored_name_the_line_and_the_field(
    line: str, needle: str
) -> None:
    good = json.dumps({"id": "ok", "text": "Fine."})
    with pytest.raises(EssaySourceError) as err:
        parse_jsonl(f"{good}\n{line}\n", "configmap/essays key e.jsonl")
    assert str(err.value).startswith("configmap/essays key e.jsonl line 2: ")
    assert needle in str(err.value)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("id,text\na,fine\nb,nul\x00inside\n", "line 3: text: Value error, control character"),
        ("id,text\na\x1b,fine\nb,x\n", "line 2: id: Value error, control character '\\x1b'"),
        ("id,text\n", None),
    ],
    ids=["NUL text", "escape id", "header only"],
)
def test_csv_control_characters_are_refused_and_a_bare_header_is_no_essays(
    text: str, needle: str | None
) -> None:
    if needle is None:
        # Not an error here: a batch with fewer than 2 essays completes (InsufficientEssays).
        assert parse_csv(text, WHERE) == []
        return
    with pytest.raises(EssaySourceError) as err:
        parse_csv(text, WHERE)
    assert str(err.value).startswith(WHERE) and needle in str(err.value)


def test_the_same_id_in_two_keys_of_one_config_map_is_refused() -> None:
    data = {
        "a.csv": "id,text\ns1,From the CSV.\n",
        "b.jsonl": json.dumps({"id": "s1", "text": "From the JSONL."}),
    }
    essays = essays_from_config_map(EssaySource(config_map="essays"), data)
    assert [e.text for e in essays] == ["From the CSV.", "From the JSONL."]
    with pytest.raises(EssaySourceError, match="essay id 's1' appears more than once"):
        check_batch_essays(essays)


# ---- cjctl's files ----------------------------------------------------------------------


def test_cjctl_reads_a_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes("id,text\na,Eins.\nb,Zwei.\n".encode("utf-8-sig"))
    assert [e.id for e in read_essays(path)] == ["a", "b"]


def test_cjctl_refuses_a_utf16_file_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes("id,text\na,x\nb,y\n".encode("utf-16"))
    with pytest.raises(EssayInputError, match=r"e\.csv: not UTF-8 text"):
        read_essays(path)


def test_cjctl_refuses_a_nul_in_an_essay_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Fine essay.", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Broken\x00essay.", encoding="utf-8")
    with pytest.raises(EssayInputError) as err:
        read_essays(tmp_path)
    assert "b.txt" in str(err.value) and "control character '\\x00'" in str(err.value)


def test_cjctl_refuses_two_files_with_one_id(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("One.", encoding="utf-8")
    (tmp_path / "a.md").write_text("Two.", encoding="utf-8")
    with pytest.raises(EssayInputError, match="essay id 'a' appears more than once"):
        read_essays(tmp_path)


def test_cjctl_ids_that_differ_only_in_spaces_are_one_id(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("id,text\nx,One.\n x ,Two.\n", encoding="utf-8")
    with pytest.raises(EssayInputError, match="essay id 'x' appears more than once"):
        read_essays(path)
