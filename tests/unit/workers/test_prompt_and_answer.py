"""Prompt building and answer parsing: the rules every judge's answer goes through."""

from __future__ import annotations

import pytest

from cj_workers.providers.answer import parse_answer, parse_answer_text
from cj_workers.providers.base import JudgeError
from cj_workers.providers.prompt import ANSWER_JSON_SCHEMA, build_user_message, estimate_tokens
from common_core import EssayComparisonWinner, LLMErrorCode


def test_prompt_puts_assignment_then_essay_a_then_essay_b() -> None:
    text = build_user_message("Assignment: argue for X.\nRubric: clarity.", "alpha text", "beta")
    assignment, a, b = text.index("Assignment"), text.index("alpha text"), text.index("beta")
    assert assignment < a < b
    assert "Essay A:\n<essay_a>\nalpha text\n</essay_a>" in text
    assert "Essay B:\n<essay_b>\nbeta\n</essay_b>" in text


def test_answer_schema_requires_all_three_fields_and_nothing_else() -> None:
    assert ANSWER_JSON_SCHEMA["required"] == ["winner", "justification", "confidence"]
    assert ANSWER_JSON_SCHEMA["additionalProperties"] is False
    assert ANSWER_JSON_SCHEMA["properties"]["winner"]["enum"] == ["essay_a", "essay_b"]


def test_estimate_tokens_is_about_four_characters_a_token() -> None:
    assert estimate_tokens("x" * 400, "y" * 400) == 200
    assert estimate_tokens("") == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("essay_a", EssayComparisonWinner.ESSAY_A),
        ("Essay B", EssayComparisonWinner.ESSAY_B),
        ("essay-a", EssayComparisonWinner.ESSAY_A),
        (" B ", EssayComparisonWinner.ESSAY_B),
    ],
)
def test_winner_labels_are_normalised(raw: str, expected: EssayComparisonWinner) -> None:
    winner, _, _ = parse_answer({"winner": raw, "justification": "why", "confidence": 4})
    assert winner is expected


def test_valid_answer_keeps_confidence_on_the_1_to_5_scale() -> None:
    assert parse_answer(
        {"winner": "essay_b", "justification": " Clearer. ", "confidence": 2.5}
    ) == (
        EssayComparisonWinner.ESSAY_B,
        "Clearer.",
        2.5,
    )


@pytest.mark.parametrize(
    "data",
    [
        {"justification": "x", "confidence": 3},
        {"winner": "essay_a", "confidence": 3},
        {"winner": "essay_a", "justification": "x"},
        {"winner": "both", "justification": "x", "confidence": 3},
        {"winner": None, "justification": "x", "confidence": 3},
        {"winner": "essay_a", "justification": "  ", "confidence": 3},
        {"winner": "essay_a", "justification": "x", "confidence": "4"},
        {"winner": "essay_a", "justification": "x", "confidence": True},
    ],
)
def test_unusable_answers_are_parsing_errors_never_a_default_winner(
    data: dict[str, object],
) -> None:
    with pytest.raises(JudgeError) as err:
        parse_answer(data)
    assert err.value.code is LLMErrorCode.PARSING_ERROR


@pytest.mark.parametrize("confidence", [0, 0.99, 5.01, 7, 100, float("nan")])
def test_confidence_outside_1_to_5_is_invalid_response(confidence: float) -> None:
    with pytest.raises(JudgeError) as err:
        parse_answer({"winner": "essay_a", "justification": "x", "confidence": confidence})
    assert err.value.code is LLMErrorCode.INVALID_RESPONSE


def test_a_0_to_1_confidence_is_not_rescaled() -> None:
    with pytest.raises(JudgeError) as err:
        parse_answer({"winner": "essay_a", "justification": "x", "confidence": 0.8})
    assert err.value.code is LLMErrorCode.INVALID_RESPONSE


def test_text_answers_accept_a_json_fence() -> None:
    text = '```json\n{"winner": "essay_a", "justification": "ok", "confidence": 5}\n```'
    assert parse_answer_text(text)[0] is EssayComparisonWinner.ESSAY_A


@pytest.mark.parametrize("text", [None, "", "   ", "Essay A is better", "[1, 2]", '{"winner": '])
def test_text_that_is_not_a_json_object_is_a_parsing_error(text: str | None) -> None:
    with pytest.raises(JudgeError) as err:
        parse_answer_text(text)
    assert err.value.code is LLMErrorCode.PARSING_ERROR
