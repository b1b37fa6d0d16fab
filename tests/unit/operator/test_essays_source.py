"""Essays from ConfigMaps: CSV and JSONL parsing, checks, and errors that say where."""

from __future__ import annotations

import json

import pytest

from cj_operator.essays_source import (
    EssaySourceError,
    EssaySourceMissingError,
    check_batch_essays,
    essays_from_config_map,
    parse_csv,
    parse_jsonl,
)
from cj_operator.spec import SOURCED_ESSAYS_MAX, Essay, EssaySource


def test_csv_with_metadata_columns_and_quoted_newlines() -> None:
    text = (
        "ID,Text,true_score,class,note\n"
        'a,"First essay,\nwith two lines.",3.5,7B,\n'
        'b,Second essay.,4,,"quoted, comma"\n'
        "\n"
    )
    essays = parse_csv(text, "cm key a.csv")
    assert [e.id for e in essays] == ["a", "b"]
    assert essays[0].text == "First essay,\nwith two lines."
    assert essays[0].metadata == {"true_score": 3.5, "class": "7B"}
    assert essays[1].metadata == {"true_score": 4, "note": "quoted, comma"}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty CSV"),
        ("id,body\na,b\n", "no 'text' column"),
        ("id,text,id\na,b,c\n", "repeats a column"),
        ("id,text\na,b,c\n", "line 2: 3 cells but the header has 2"),
        ("id,text\na,ok\nb,   \n", "line 3"),
        ("id,text\n,orphan\n", "line 2"),
    ],
)
def test_csv_errors_name_the_place(text: str, needle: str) -> None:
    with pytest.raises(EssaySourceError) as err:
        parse_csv(text, "configmap/x key e.csv")
    assert "configmap/x key e.csv" in str(err.value)
    assert needle in str(err.value)


def test_jsonl() -> None:
    lines = [
        json.dumps({"id": "a", "text": "One."}),
        "",
        json.dumps({"id": 7, "text": "Two.", "metadata": {"score": 2}}),
    ]
    essays = parse_jsonl("\n".join(lines), "w")
    assert [(e.id, e.metadata) for e in essays] == [("a", None), ("7", {"score": 2})]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("{not json", "line 1: invalid JSON"),
        ("[1, 2]", "line 1: expected a JSON object"),
        ('{"id": "a", "text": "x", "extra": 1}', "line 1: extra"),
        ('{"id": "a"}', "line 1: text"),
        ('{"id": "a", "text": "  "}', "essay text must not be empty or blank"),
    ],
)
def test_jsonl_errors(line: str, needle: str) -> None:
    with pytest.raises(EssaySourceError, match="where line"):
        parse_jsonl(line, "where")
    with pytest.raises(EssaySourceError) as err:
        parse_jsonl(line, "where")
    assert needle in str(err.value)


def test_long_texts_are_allowed_from_config_maps() -> None:
    essays = parse_jsonl(json.dumps({"id": "a", "text": "x" * 40_000}), "w")
    assert len(essays[0].text) == 40_000
    with pytest.raises(EssaySourceError, match="at most 50000"):
        parse_jsonl(json.dumps({"id": "a", "text": "x" * 50_001}), "w")


def test_config_map_keys_in_order_and_by_suffix() -> None:
    data = {
        "b.jsonl": json.dumps({"id": "b1", "text": "B."}),
        "a.csv": "id,text\na1,A.\n",
        "README": "ignored",
    }
    essays = essays_from_config_map(EssaySource(config_map="cm"), data)
    assert [e.id for e in essays] == ["a1", "b1"]
    only = essays_from_config_map(EssaySource(config_map="cm", key="b.jsonl"), data)
    assert [e.id for e in only] == ["b1"]
    forced = essays_from_config_map(
        EssaySource(config_map="cm", key="README", format="csv"), {"README": "id,text\nr,R.\n"}
    )
    assert [e.id for e in forced] == ["r"]


def test_config_map_problems() -> None:
    with pytest.raises(EssaySourceMissingError, match=r"configmap/cm has no key 'x\.csv'"):
        essays_from_config_map(EssaySource(config_map="cm", key="x.csv"), {"a.csv": ""})
    with pytest.raises(EssaySourceError, match=r"no \.csv or \.jsonl key"):
        essays_from_config_map(EssaySource(config_map="cm"), {"notes.txt": "x"})
    with pytest.raises(EssaySourceError, match="unknown format"):
        essays_from_config_map(EssaySource(config_map="cm", key="notes.txt"), {"notes.txt": "x"})


def test_batch_checks() -> None:
    a = Essay(id="a", text="x")
    assert check_batch_essays([a]) == [a]
    with pytest.raises(EssaySourceError, match="'a' appears more than once"):
        check_batch_essays([a, Essay(id="b", text="y"), a])
    many = [Essay(id=str(i), text="t") for i in range(SOURCED_ESSAYS_MAX + 1)]
    with pytest.raises(EssaySourceError, match="at most"):
        check_batch_essays(many)
