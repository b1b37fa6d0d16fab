"""`openai` and `openai_compatible` providers: Chat Completions with a strict JSON schema."""

from __future__ import annotations

from typing import Literal

import openai
from openai.types.shared_params import ResponseFormatJSONObject, ResponseFormatJSONSchema

from cj_workers.providers.answer import parse_answer_text
from cj_workers.providers.base import JudgeAnswer, JudgeCall, JudgeError
from cj_workers.providers.prompt import ANSWER_JSON_SCHEMA, COMPARISON_TOOL_NAME
from cj_workers.providers.sdk_errors import judge_error_from_sdk
from common_core import LLMErrorCode

ResponseFormat = ResponseFormatJSONSchema | ResponseFormatJSONObject


class OpenAIJudge:
    """Calls `chat.completions.create` with `response_format` json_schema (strict).

    `json_mode="json_object"` asks only for a JSON object (servers without json_schema); the
    answer is validated the same way. `token_param` is `max_completion_tokens` for OpenAI and
    `max_tokens` for compatible servers. A refusal or a content-filter stop is
    INVALID_RESPONSE; unparseable content PARSING_ERROR; SDK errors per
    `judge_error_from_sdk`. SDK retries are off: the worker retries.
    """

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None = None,
        *,
        name: str = "openai",
        require_key: bool = True,
        json_mode: Literal["json_schema", "json_object"] = "json_schema",
        token_param: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens",
    ) -> None:
        self._name = name
        self._missing_config: str | None = None
        if require_key and not api_key:
            self._missing_config = f"no API key configured for provider {name!r}"
        if name == "openai_compatible" and not base_url:
            self._missing_config = "CJ_WORKER_OPENAI_COMPATIBLE_BASE_URL is not set on this worker"
        self._json_mode = json_mode
        self._token_param = token_param
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "unset", base_url=base_url, max_retries=0
        )

    def _response_format(self) -> ResponseFormat:
        if self._json_mode == "json_object":
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {
                "name": COMPARISON_TOOL_NAME,
                "strict": True,
                "schema": ANSWER_JSON_SCHEMA,
            },
        }

    async def judge(self, call: JudgeCall) -> JudgeAnswer:
        """One Chat Completions call; see the class docstring for errors."""
        if self._missing_config:
            raise JudgeError(LLMErrorCode.INVALID_CONFIG, self._missing_config)
        system = call.system_prompt
        if self._json_mode == "json_object":
            system += (
                ' Reply with one JSON object: {"winner": "essay_a" or "essay_b", '
                '"justification": string, "confidence": number from 1 to 5}.'
            )
        new_style = self._token_param == "max_completion_tokens"
        try:
            completion = await self._client.chat.completions.create(
                model=call.model,
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": call.user_message},
                ],
                temperature=call.temperature,
                response_format=self._response_format(),
                max_completion_tokens=call.max_tokens if new_style else openai.omit,
                max_tokens=openai.omit if new_style else call.max_tokens,
                timeout=call.timeout_seconds,
            )
        except Exception as exc:
            raise judge_error_from_sdk(exc) from exc
        pt: int = completion.usage.prompt_tokens if completion.usage else 0
        ct: int = completion.usage.completion_tokens if completion.usage else 0
        if not completion.choices:
            raise JudgeError(
                LLMErrorCode.PARSING_ERROR,
                "the answer has no choices",
                prompt_tokens=pt,
                completion_tokens=ct,
            )
        choice = completion.choices[0]
        if choice.message.refusal:
            raise JudgeError(
                LLMErrorCode.INVALID_RESPONSE,
                f"the model refused to compare these essays: {choice.message.refusal[:200]}",
                details={"refusal": True},
                prompt_tokens=pt,
                completion_tokens=ct,
            )
        if choice.finish_reason == "content_filter":
            raise JudgeError(
                LLMErrorCode.INVALID_RESPONSE,
                "the answer was withheld by the provider's content filter",
                details={"finish_reason": "content_filter"},
                prompt_tokens=pt,
                completion_tokens=ct,
            )
        try:
            winner, justification, confidence = parse_answer_text(choice.message.content)
        except JudgeError as exc:
            exc.prompt_tokens, exc.completion_tokens = pt, ct
            exc.details.setdefault("finish_reason", str(choice.finish_reason))
            raise
        return JudgeAnswer(
            winner, justification, confidence, prompt_tokens=pt, completion_tokens=ct
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()
