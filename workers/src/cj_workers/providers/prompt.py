"""The judge's prompt and the structured answer it must give.

Order (the issue's rule): the assignment prompt and rubric (the request's `user_prompt`),
then the essays labelled Essay A and Essay B, then the question. Request metadata is never
part of the prompt.
"""

from __future__ import annotations

from typing import Any

COMPARISON_TOOL_NAME = "comparison_result"

DEFAULT_SYSTEM_PROMPT = (
    "You are an experienced teacher who assesses student essays by comparative judgement. "
    "You are shown an assignment with its rubric and two essays written for it, labelled "
    "Essay A and Essay B. Decide which essay is the better response overall, judged against "
    "the assignment and rubric. Neither the order in which the essays are shown nor their "
    "length alone should decide. Answer only through the comparison_result tool: the winner, "
    "a one-sentence justification, and your confidence from 1 (a guess) to 5 (certain)."
)

ANSWER_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "winner": {
            "type": "string",
            "enum": ["essay_a", "essay_b"],
            "description": "The better essay: essay_a or essay_b.",
        },
        "justification": {
            "type": "string",
            "description": "One sentence on why the winner is better.",
        },
        "confidence": {
            "type": "number",
            "minimum": 1,
            "maximum": 5,
            "description": "1 = a guess, 3 = fairly sure, 5 = certain.",
        },
    },
    "required": ["winner", "justification", "confidence"],
    "additionalProperties": False,
}
"""The answer's shape: the Anthropic tool's input schema and OpenAI's strict JSON schema."""


def build_user_message(user_prompt: str, essay_a: str, essay_b: str) -> str:
    """The user turn: assignment and rubric, Essay A, Essay B, then the question.

    Essays are fenced in <essay_a>/<essay_b> tags so text inside an essay cannot pass for
    an instruction boundary.
    """
    return (
        f"{user_prompt.strip()}\n\n"
        f"Essay A:\n<essay_a>\n{essay_a.strip()}\n</essay_a>\n\n"
        f"Essay B:\n<essay_b>\n{essay_b.strip()}\n</essay_b>\n\n"
        "Which essay is better? Give the winner (essay_a or essay_b), a one-sentence "
        "justification and your confidence from 1 to 5."
    )


def estimate_tokens(*texts: str) -> int:
    """Rough token count of `texts` (1 token ~ 4 characters of English), at least 1.

    Used only to reserve rate-limit budget before a call; the provider's reported usage
    corrects it afterwards.
    """
    return max(1, sum(len(t) for t in texts) // 4)
