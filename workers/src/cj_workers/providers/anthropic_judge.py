"""`anthropic` provider: the Messages API with the forced tool `comparison_result`."""

from __future__ import annotations

import anthropic
from anthropic.types import ToolParam

from cj_workers.providers.answer import parse_answer
from cj_workers.providers.base import JudgeAnswer, JudgeCall, JudgeError
from cj_workers.providers.prompt import ANSWER_JSON_SCHEMA, COMPARISON_TOOL_NAME
from cj_workers.providers.sdk_errors import judge_error_from_sdk
from common_core import LLMErrorCode

_TOOL: ToolParam = {
    "name": COMPARISON_TOOL_NAME,
    "description": "Record which essay is better, why, and how confident you are (1-5).",
    "input_schema": ANSWER_JSON_SCHEMA,
}


class AnthropicJudge:
    """Calls `messages.create` with `tool_choice` forcing `comparison_result`.

    The SDK's own retries are off (`max_retries=0`): the worker retries with its shared rate
    limits and circuit breaker. Raises `JudgeError` (see `judge_error_from_sdk`); a refusal
    (stop_reason "refusal") is INVALID_RESPONSE; a missing tool call PARSING_ERROR.
    """

    def __init__(self, api_key: str | None, base_url: str | None = None) -> None:
        self._configured = bool(api_key)
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key or "unset", base_url=base_url, max_retries=0
        )

    async def judge(self, call: JudgeCall) -> JudgeAnswer:
        """One Messages call; see the class docstring for errors."""
        if not self._configured:
            raise JudgeError(
                LLMErrorCode.INVALID_CONFIG, "ANTHROPIC_API_KEY is not set on this worker"
            )
        try:
            message = await self._client.messages.create(
                model=call.model,
                max_tokens=call.max_tokens,
                system=call.system_prompt,
                messages=[{"role": "user", "content": call.user_message}],
                tools=[_TOOL],
                tool_choice={"type": "tool", "name": COMPARISON_TOOL_NAME},
                timeout=call.timeout_seconds,
                # This SDK version no longer types `temperature`; the API still takes it.
                extra_body={"temperature": call.temperature},
            )
        except Exception as exc:
            raise judge_error_from_sdk(exc) from exc
        pt: int = message.usage.input_tokens
        ct: int = message.usage.output_tokens
        if message.stop_reason == "refusal":
            raise JudgeError(
                LLMErrorCode.INVALID_RESPONSE,
                "the model refused to compare these essays",
                details={"stop_reason": "refusal"},
                prompt_tokens=pt,
                completion_tokens=ct,
            )
        for block in message.content:
            if block.type == "tool_use" and block.name == COMPARISON_TOOL_NAME:
                if not isinstance(block.input, dict):
                    raise JudgeError(
                        LLMErrorCode.PARSING_ERROR,
                        "tool input is not an object",
                        prompt_tokens=pt,
                        completion_tokens=ct,
                    )
                try:
                    winner, justification, confidence = parse_answer(block.input)
                except JudgeError as exc:
                    exc.prompt_tokens, exc.completion_tokens = pt, ct
                    raise
                return JudgeAnswer(
                    winner, justification, confidence, prompt_tokens=pt, completion_tokens=ct
                )
        raise JudgeError(
            LLMErrorCode.PARSING_ERROR,
            f"no {COMPARISON_TOOL_NAME} tool call in the answer",
            details={"stop_reason": str(message.stop_reason)},
            prompt_tokens=pt,
            completion_tokens=ct,
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()
