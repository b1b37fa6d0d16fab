"""The comparisons as evidence: comparisons.csv written and read back, JSON, the size rule."""

from __future__ import annotations

import csv
import io
import json

import pytest

from cj_operator.evidence import (
    COLUMNS,
    COMPARISONS_DATA_BUDGET,
    ComparisonRow,
    comparisons_config_map_name,
    comparisons_csv,
    comparisons_json,
    parse_comparisons_csv,
    too_large_message,
)
from tests.support.factories import NOW

ROWS = [
    ComparisonRow(
        round=1,
        attempt=1,
        essay_a_id="e1",
        essay_b_id="e2",
        winner="essay_b",
        confidence=4.5,
        judge="anthropic/claude-sonnet-4-5",
        provider="anthropic",
        model="claude-sonnet-4-5",
        cost_usd=0.00123,
        total_tokens=812,
        status="SUCCEEDED",
        justification='B argues, "clearly", with\nexamples; A — less so.',
        correlation_id="0b4f0c39-8f0b-4d4e-9d8e-2b8f0f9d7a11",
        completed_at=NOW,
    ),
    ComparisonRow(
        round=1,
        attempt=1,
        essay_a_id="e3",
        essay_b_id="e1",
        status="FAILED",
        error_code="PROVIDER_TIMEOUT",
        provider="anthropic",
        model="claude-sonnet-4-5",
        correlation_id="5f3c1d0e-0000-4000-8000-000000000002",
        completed_at=NOW,
    ),
    ComparisonRow(
        round=1,
        attempt=2,
        essay_a_id="e3",
        essay_b_id="e1",
        status="SUBMITTED",
        correlation_id="5f3c1d0e-0000-4000-8000-000000000003",
    ),
]


def test_winner_id_names_the_essay_in_the_winning_slot() -> None:
    assert [r.winner_id for r in ROWS] == ["e2", None, None]
    flipped = ROWS[0].model_copy(update={"winner": "essay_a"})
    assert flipped.winner_id == "e1"


def test_csv_has_every_column_and_quotes_justifications() -> None:
    text = comparisons_csv(ROWS)
    records = list(csv.DictReader(io.StringIO(text)))
    assert tuple(records[0]) == COLUMNS
    assert records[0]["essay_a_id"] == "e1" and records[0]["winner_id"] == "e2"
    assert records[0]["judge"] == "anthropic/claude-sonnet-4-5"
    assert records[2]["judge"] == "unknown/unknown"
    assert records[0]["justification"] == 'B argues, "clearly", with\nexamples; A — less so.'
    assert records[0]["completed_at"] == "2026-01-02T03:04:05+00:00"
    assert records[1]["winner"] == "" and records[1]["error_code"] == "PROVIDER_TIMEOUT"
    assert records[2]["confidence"] == "" and records[2]["completed_at"] == ""


def test_csv_reads_back_to_the_same_rows() -> None:
    assert parse_comparisons_csv(comparisons_csv(ROWS), "cm") == ROWS
    assert parse_comparisons_csv(comparisons_csv([]), "cm") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("essay_id,score\ne1,0.5\n", r"cm: not a comparisons CSV \(no column round, attempt"),
        (
            comparisons_csv(ROWS).replace(",4.5,", ",7.0,"),
            r"cm, line 3: confidence: Input should be less than or equal to 5",
        ),
        (
            comparisons_csv(ROWS).replace(",essay_b,", ",essay_c,"),
            r"cm, line 3: winner: Input should be 'essay_a' or 'essay_b'",
        ),
    ],
)
def test_a_broken_csv_is_refused_naming_where(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_comparisons_csv(text, "cm")


def test_json_keeps_types_and_column_order() -> None:
    doc = json.loads(comparisons_json(ROWS))
    assert [list(d) for d in doc] == [list(COLUMNS)] * 3
    assert doc[0]["confidence"] == 4.5 and doc[0]["round"] == 1
    assert doc[1]["winner"] is None and doc[1]["winner_id"] is None


def test_too_large_message_gives_sizes_and_the_way_to_read_them() -> None:
    message = too_large_message(2400, 1_203_456, COMPARISONS_DATA_BUDGET, "year9")
    assert "2400 comparisons are 1,203,456 bytes" in message
    assert "configmap/year9-comparisons may hold 921,600" in message
    assert "cjctl comparisons year9 with DATABASE_URL set" in message
    assert comparisons_config_map_name("year9") == "year9-comparisons"
