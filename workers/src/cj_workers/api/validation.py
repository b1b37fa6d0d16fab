"""Request checks of the provider API, as pure functions returning ErrorDetail or None."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from cj_workers.callback_topics import CallbackTopicPolicy
from cj_workers.manifest import ModelManifest
from cj_workers.settings import provider_refusal
from common_core import ErrorDetail, LLMComparisonRequest, LLMErrorCode, LLMProviderType

SERVICE = "cj-provider-api"

HTTP_STATUS: dict[LLMErrorCode, int] = {
    LLMErrorCode.CALLBACK_TOPIC_MISSING: 400,
    LLMErrorCode.INVALID_CALLBACK_TOPIC: 400,
    LLMErrorCode.INVALID_PROMPT: 400,
    LLMErrorCode.INVALID_CONFIG: 400,
    LLMErrorCode.CONTENT_TOO_LONG: 413,
    LLMErrorCode.QUEUE_FULL: 503,
    LLMErrorCode.PROVIDER_UNAVAILABLE: 503,
    LLMErrorCode.INTERNAL_ERROR: 500,
}
"""HTTP status of each refusal code (anything else: 400)."""

_RANK = [
    LLMErrorCode.CALLBACK_TOPIC_MISSING,
    LLMErrorCode.INVALID_CALLBACK_TOPIC,
    LLMErrorCode.INVALID_CONFIG,
    LLMErrorCode.INVALID_PROMPT,
]


def error(
    code: LLMErrorCode,
    message: str,
    operation: str,
    correlation_id: UUID | None = None,
    **details: Any,
) -> ErrorDetail:
    """An ErrorDetail from this service (retryable only for QUEUE_FULL)."""
    return ErrorDetail(
        error_code=code,
        message=message[:2000],
        correlation_id=correlation_id,
        service=SERVICE,
        operation=operation,
        retryable=code in (LLMErrorCode.QUEUE_FULL, LLMErrorCode.PROVIDER_UNAVAILABLE),
        details=details,
    )


def _code_for(loc: Sequence[str | int], err_type: str, raw: Any) -> LLMErrorCode:
    field = next((str(p) for p in loc if p not in ("body",) and not isinstance(p, int)), "")
    if field == "callback_topic":
        missing = err_type == "missing" or (isinstance(raw, str) and not raw.strip())
        return (
            LLMErrorCode.CALLBACK_TOPIC_MISSING if missing else LLMErrorCode.INVALID_CALLBACK_TOPIC
        )
    if field == "llm_config_overrides":
        return LLMErrorCode.INVALID_CONFIG
    return LLMErrorCode.INVALID_PROMPT


def from_validation_errors(
    errors: Sequence[Any], body: Any, operation: str, skip: int = 1
) -> ErrorDetail:
    """One ErrorDetail for pydantic/FastAPI validation errors of a comparison request.

    The code is the most specific one found: CALLBACK_TOPIC_MISSING (absent or blank),
    INVALID_CALLBACK_TOPIC, INVALID_CONFIG (llm_config_overrides), else INVALID_PROMPT. The
    message lists every problem as `field: reason`. `skip` leading loc parts are dropped
    (FastAPI's "body").
    """
    codes = []
    problems = []
    for e in errors:
        loc = list(e.get("loc", ()))[skip:]
        raw = body.get("callback_topic") if isinstance(body, dict) else None
        codes.append(_code_for(loc, str(e.get("type", "")), raw))
        where = ".".join(str(p) for p in loc) or "body"
        problems.append(f"{where}: {e.get('msg', 'invalid')}")
    code = min(codes, key=_RANK.index) if codes else LLMErrorCode.INVALID_PROMPT
    if code is LLMErrorCode.CALLBACK_TOPIC_MISSING:
        head = "callback_topic is required: results are delivered only on Kafka"
    else:
        head = "invalid comparison request"
    return error(code, f"{head} ({'; '.join(problems)})", operation, fields=problems)


def parse_request(item: Any, operation: str) -> LLMComparisonRequest | ErrorDetail:
    """Validate one raw JSON item as an LLMComparisonRequest (or say what is wrong)."""
    try:
        return LLMComparisonRequest.model_validate(item)
    except ValidationError as exc:
        return from_validation_errors(exc.errors(), item, operation, skip=0)


METADATA_MAX_DEPTH = 32
"""Deepest nesting of objects and lists accepted in request metadata. The workers read queue
entries with pydantic, whose JSON parser stops near 250 levels (an entry no worker could read);
the operator's own metadata is 2 levels deep."""


def metadata_bytes(metadata: dict[str, Any]) -> int:
    """Size of `metadata` as compact UTF-8 JSON (how it travels in queue entries and events).

    Raises ValueError when it holds NaN or an infinity (Python's JSON parser reads them; JSON
    has no such numbers, and pydantic would write them as null in the result).
    """
    return len(
        json.dumps(
            metadata, separators=(",", ":"), ensure_ascii=False, default=str, allow_nan=False
        ).encode()
    )


def metadata_depth(metadata: Any) -> int:
    """Nesting depth of objects and lists in `metadata` ({} is 1, {"a": [1]} is 2, a scalar 0);
    iterative, so any depth a JSON parser produced can be measured."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(metadata, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_request(
    request: LLMComparisonRequest,
    *,
    topic_policy: CallbackTopicPolicy,
    max_essay_chars: int,
    max_prompt_chars: int,
    max_metadata_bytes: int,
    manifest: ModelManifest,
    default_provider: LLMProviderType | None,
    enabled_providers: Collection[LLMProviderType],
    operation: str,
) -> ErrorDetail | None:
    """The configured checks a schema cannot express: the callback topic policy, sizes
    (essays and prompt in characters, metadata in bytes of JSON), metadata that JSON cannot
    carry (NaN, infinities, nesting deeper than METADATA_MAX_DEPTH), the judge
    (`provider_override` must be in `enabled_providers`, CJ_ENABLED_PROVIDERS) and the model
    manifest (models of priced providers must be listed). The first problem found, or None."""
    cid = request.correlation_id
    refusal = topic_policy.problem(request.callback_topic)
    if refusal is not None:
        return error(
            LLMErrorCode.INVALID_CALLBACK_TOPIC,
            refusal,
            operation,
            cid,
            callback_topic=request.callback_topic,
        )
    for name, text, limit in (
        ("essay_a", request.essay_a, max_essay_chars),
        ("essay_b", request.essay_b, max_essay_chars),
        ("user_prompt", request.user_prompt, max_prompt_chars),
    ):
        if len(text) > limit:
            return error(
                LLMErrorCode.CONTENT_TOO_LONG,
                f"{name} has {len(text)} characters; at most {limit} are accepted",
                operation,
                cid,
                field=name,
                length=len(text),
                limit=limit,
            )
    depth = metadata_depth(request.metadata)
    if depth > METADATA_MAX_DEPTH:
        return error(
            LLMErrorCode.INVALID_PROMPT,
            f"metadata is nested {depth} levels deep; at most {METADATA_MAX_DEPTH} are accepted",
            operation,
            cid,
            field="metadata",
            depth=depth,
            limit=METADATA_MAX_DEPTH,
        )
    try:
        size = metadata_bytes(request.metadata)
    except ValueError:
        return error(
            LLMErrorCode.INVALID_PROMPT,
            "metadata holds NaN or an infinity, which JSON cannot carry",
            operation,
            cid,
            field="metadata",
        )
    if size > max_metadata_bytes:
        return error(
            LLMErrorCode.CONTENT_TOO_LONG,
            f"metadata has {size} bytes of JSON; at most {max_metadata_bytes} are accepted "
            "(CJ_API_MAX_METADATA_BYTES)",
            operation,
            cid,
            field="metadata",
            length=size,
            limit=max_metadata_bytes,
        )
    overrides = request.llm_config_overrides
    if overrides and overrides.provider_override:
        refusal = provider_refusal(overrides.provider_override, enabled_providers)
        if refusal is not None:
            return error(
                LLMErrorCode.INVALID_CONFIG,
                refusal,
                operation,
                cid,
                field="llm_config_overrides.provider_override",
                provider=overrides.provider_override.value,
            )
    if overrides and overrides.model_override:
        provider = overrides.provider_override or default_provider
        if provider is not None:
            problem = manifest.check(provider, overrides.model_override)
            if problem:
                return error(
                    LLMErrorCode.INVALID_CONFIG,
                    problem,
                    operation,
                    cid,
                    field="llm_config_overrides.model_override",
                    provider=provider.value,
                    model=overrides.model_override,
                )
    return None
