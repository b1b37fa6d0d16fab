"""Bad-input suite, malformed LLM answers without services: the parsing every judge's answer
goes through, the usage it reports, and the bounded justification of the event. (The same
answers through a real worker: tests/integration/bad_input/test_llm_answers.py.)"""

from __future__ import annotations

import pytest

from cj_workers.providers.answer import parse_answer, parse_answer_text
from cj_workers.providers.base import TOKENS_MAX, JudgeAnswer, JudgeError
from cj_workers.results import success_result
from common_core import (
    EssayComparisonWinner,
    LLMComparisonRequest,
    LLMErrorCode,
    LLMProviderType,
    QueuedRequest,
)
from common_core.events import JUSTIFICATION_MAX_CHARS

ANSWER = '{"winner": "essay_a", "justification": "A is clearer.", "confidence": 4}'


@pytest.mark.parametrize(
    ("text", "code", "says"),
    [
        (
            '{"winner": "essay_a", "justification": "x", "confidence": 3, "winner": "essay_b"}',
            LLMErrorCode.PARSING_ERROR,
            "ambiguous: 'winner' appears twice",
        ),
        (
            '{"winner": "essay_a", "justification": "x", "justification": "y", "confidence": 3}',
            LLMErrorCode.PARSING_ERROR,
            "'justification' appears twice",
        ),
        (f"My verdict: {ANSWER}", LLMErrorCode.PARSING_ERROR, "not valid JSON"),
        (f'{{"answer": {ANSWER}}}', LLMErrorCode.PARSING_ERROR, "lacks winner"),
        (
            '{"winner": "essay_a", "justification": "x", "confidence": NaN}',
            LLMErrorCode.INVALID_RESPONSE,
            "outside 1-5",
        ),
        (
            '{"winner": "essay_b", "justification": "x", "confidence": Infinity}',
            LLMErrorCode.INVALID_RESPONSE,
            "outside 1-5",
        ),
        (
            '{"winner": "essay_a", "justification": 5, "confidence": 3}',
            LLMErrorCode.PARSING_ERROR,
            "justification is missing or empty",
        ),
        (
            '{"winner": "essay_a", "justification": "\\u0000\\u001b", "confidence": 3}',
            LLMErrorCode.PARSING_ERROR,
            "justification is missing or empty",
        ),
        (
            '{"winner": "Essay A is better", "justification": "x", "confidence": 3}',
            LLMErrorCode.PARSING_ERROR,
            "names neither essay_a nor essay_b",
        ),
        ("```\n" + ANSWER, LLMErrorCode.PARSING_ERROR, "not valid JSON"),
    ],
    ids=[
        "two winners",
        "two justifications",
        "prose before JSON",
        "answer wrapped in an object",
        "NaN confidence",
        "infinite confidence",
        "numeric justification",
        "justification of control characters",
        "winner as a sentence",
        "unclosed fence",
    ],
)
def test_a_malformed_answer_text_is_the_right_error(
    text: str, code: LLMErrorCode, says: str
) -> None:
    with pytest.raises(JudgeError) as err:
        parse_answer_text(text)
    assert err.value.code is code
    assert says in err.value.message, err.value.message
    assert err.value.retryable is False


def test_a_huge_prose_answer_is_quoted_only_in_part() -> None:
    with pytest.raises(JudgeError) as err:
        parse_answer_text("I think " * 200_000)
    assert err.value.code is LLMErrorCode.PARSING_ERROR
    assert len(err.value.details["answer"]) == 200
    assert len(err.value.message) < 500


@pytest.mark.parametrize("tokens", [(-1, 10), (10, TOKENS_MAX + 1), (3_000_000_000, 0)])
def test_impossible_usage_is_an_invalid_response_naming_the_count(tokens: tuple[int, int]) -> None:
    with pytest.raises(JudgeError) as err:
        JudgeAnswer(EssayComparisonWinner.ESSAY_A, "x", 3.0, *tokens)
    assert err.value.code is LLMErrorCode.INVALID_RESPONSE
    bad = tokens[0] if not 0 <= tokens[0] <= TOKENS_MAX else tokens[1]
    assert f"reported {bad} " in err.value.message
    # On an error the reported usage is informational: out of range, it is dropped.
    error = JudgeError(LLMErrorCode.PARSING_ERROR, "x", prompt_tokens=tokens[0])
    assert error.prompt_tokens == (tokens[0] if 0 <= tokens[0] <= TOKENS_MAX else 0)


def test_the_largest_usage_still_fits_the_event() -> None:
    answer = JudgeAnswer(EssayComparisonWinner.ESSAY_B, "fine", 5.0, TOKENS_MAX, TOKENS_MAX)
    result = success_result(
        _queued(),
        answer,
        provider=LLMProviderType.OPENAI_COMPATIBLE,
        model="m",
        response_time_ms=1,
        cost_usd=0.0,
        justification_max_chars=JUSTIFICATION_MAX_CHARS,
    )
    assert result.token_usage.total_tokens == 2 * TOKENS_MAX


def _queued() -> QueuedRequest:
    request = LLMComparisonRequest(
        user_prompt="p", essay_a="a", essay_b="b", callback_topic="t.callbacks"
    )
    return QueuedRequest.from_request(request, 60)


def test_a_huge_justification_with_control_characters_is_bounded_and_cleaned() -> None:
    winner, justification, confidence = parse_answer(
        {"winner": "a", "justification": "\x00Long\x1b[0m " + "why " * 50_000, "confidence": 2}
    )
    result = success_result(
        _queued(),
        JudgeAnswer(winner, justification, confidence, 10, 10),
        provider=LLMProviderType.OPENAI_COMPATIBLE,
        model="m",
        response_time_ms=1,
        cost_usd=0.0,
        justification_max_chars=JUSTIFICATION_MAX_CHARS,
    )
    assert result.justification is not None
    assert len(result.justification) == JUSTIFICATION_MAX_CHARS
    assert result.justification.startswith("Long[0m why why")
    assert result.justification.endswith("…")
