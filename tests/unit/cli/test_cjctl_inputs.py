"""cjctl's input handling: essays from CSV or folders, judge argument, ConfigMap packing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cj_operator.cli.essays_input import EssayInputError, read_essays
from cj_operator.cli.judge_arg import parse_judge
from cj_operator.cli.packing import pack_essays
from cj_operator.cli.render import eta_seconds, format_duration, progress_fraction
from cj_operator.essays_source import parse_jsonl
from cj_operator.spec import Essay
from common_core import LLMProviderType


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_metadata_columns(tmp_path: Path) -> None:
    csv_path = _write(
        tmp_path / "e.csv",
        'id,text,class,known\nA1,"First essay, with a comma",9b,3.5\nA2,Second essay,9c,\n',
    )
    essays = read_essays(csv_path)
    assert [e.id for e in essays] == ["A1", "A2"]
    assert essays[0].text == "First essay, with a comma"
    assert essays[0].metadata == {"class": "9b", "known": 3.5}
    assert essays[1].metadata == {"class": "9c"}


def test_folder_of_text_files(tmp_path: Path) -> None:
    _write(tmp_path / "b.txt", "Essay B")
    _write(tmp_path / "a.md", "Essay A")
    _write(tmp_path / "notes.pdf", "ignored")
    essays = read_essays(tmp_path)
    assert [(e.id, e.text) for e in essays] == [("a", "Essay A"), ("b", "Essay B")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,text\nx,y\nz,w\n", "no 'id' column"),
        ("id,body\nx,y\nz,w\n", "no 'text' column"),
        ("id,text\nx,one\nx,two\n", "'x' appears more than once"),
        ("id,text\nx,one\ny,\n", "line 3"),
        ("id,text\nx,one\n", "comparing needs at least 2"),
        ("", "empty CSV"),
    ],
)
def test_csv_errors_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(EssayInputError, match=message):
        read_essays(_write(tmp_path / "e.csv", content))


def test_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(EssayInputError, match="no such file"):
        read_essays(tmp_path / "missing.csv")
    with pytest.raises(EssayInputError, match=r"expected a \.csv file"):
        read_essays(_write(tmp_path / "e.xlsx", "x"))
    (tmp_path / "bin.csv").write_bytes(b"id,text\n\xff\xfe,x\n")
    with pytest.raises(EssayInputError, match="not UTF-8"):
        read_essays(tmp_path / "bin.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EssayInputError, match=r"no \.txt or \.md files"):
        read_essays(empty)
    _write(empty / "blank.txt", "   \n")
    with pytest.raises(EssayInputError, match="the essay is empty"):
        read_essays(empty)


@pytest.mark.parametrize(
    ("text", "provider", "model"),
    [
        ("offline", LLMProviderType.OFFLINE, None),
        ("anthropic:claude-sonnet-4-5", LLMProviderType.ANTHROPIC, "claude-sonnet-4-5"),
        ("OpenAI:gpt-4.1-mini", LLMProviderType.OPENAI, "gpt-4.1-mini"),
        ("openai_compatible:llama3.1", LLMProviderType.OPENAI_COMPATIBLE, "llama3.1"),
    ],
)
def test_judge_argument(text: str, provider: LLMProviderType, model: str | None) -> None:
    judge = parse_judge(text)
    assert judge.provider is provider
    assert judge.model == model


def test_judge_argument_errors() -> None:
    with pytest.raises(ValueError, match="unknown judge 'gpt'"):
        parse_judge("gpt")
    with pytest.raises(ValueError, match="needs a model"):
        parse_judge("openai_compatible")


def test_packing_splits_under_budget_and_round_trips() -> None:
    essays = [Essay(id=f"e{i}", text="word " * 200, metadata={"n": i}) for i in range(50)]
    packs = pack_essays("batch", essays, budget=10_000)
    assert len(packs) > 1
    assert all(len(data.encode()) <= 10_000 for _, _, data in packs)
    assert [name for name, _, _ in packs][:2] == ["batch-essays-000", "batch-essays-001"]
    back = [e for _, key, data in packs for e in parse_jsonl(data, key)]
    assert [(e.id, e.text, e.metadata) for e in back] == [
        (e.id, e.text, e.metadata) for e in essays
    ]


def test_packing_keeps_unicode_and_refuses_an_oversized_essay() -> None:
    packs = pack_essays("b", [Essay(id="ü", text="Grüße — ok"), Essay(id="x", text="y")])
    assert json.loads(packs[0][2].splitlines()[0])["text"] == "Grüße — ok"
    with pytest.raises(ValueError, match="essay 'big'"):
        pack_essays("b", [Essay(id="big", text="z" * 5000)], budget=1000)


def test_progress_and_eta() -> None:
    assert progress_fraction({"progress": "40%"}) == pytest.approx(0.4)
    assert progress_fraction({}) == 0.0
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert eta_seconds(start, 0.0, start + timedelta(seconds=10)) is None
    assert eta_seconds(start, 0.25, start + timedelta(seconds=30)) == pytest.approx(90.0)
    assert format_duration(None) == "-"
    assert format_duration(42) == "42s"
    assert format_duration(185) == "3m05s"
    assert format_duration(3720) == "1h02m"
