"""What can be read from a stream entry that is given up on (pure): enough to send an error
event for its correlation id, or nothing.

A poison entry's payload may not validate as a whole `QueuedRequest`; its `correlation_id`
(a UUID) and `callback_topic` (a legal topic name that is not the completion topic nor a
dead-letter topic) are enough. The rest is taken when readable: `queue_id`, `queued_at`,
`request_data.metadata` (a JSON object) and the provider and model overrides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from cj_workers.callback_topics import ALWAYS_REFUSED, is_dead_letter_topic
from common_core import KAFKA_TOPIC_PATTERN, LLMProviderType
from common_core.bounds import MODEL_NAME_MAX_CHARS, reject_control_characters


def poison_target(
    payload: bytes | None,
    default_provider: LLMProviderType,
    default_models: Mapping[LLMProviderType, str],
) -> tuple[str, dict[str, Any]] | None:
    """(callback topic, keyword arguments of `results.poison_result` but the limits) for a
    payload that names its correlation id and callback topic; None when it does not."""
    try:
        raw = json.loads(payload or b"")
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    topic = raw.get("callback_topic")
    if not isinstance(topic, str) or not re.fullmatch(KAFKA_TOPIC_PATTERN, topic):
        return None
    if topic in ALWAYS_REFUSED or is_dead_letter_topic(topic):
        return None
    try:
        correlation_id = UUID(str(raw.get("correlation_id")))
    except ValueError:
        return None
    data = raw.get("request_data")
    data = data if isinstance(data, dict) else {}
    metadata = data.get("metadata")
    overrides = data.get("llm_config_overrides")
    overrides = overrides if isinstance(overrides, dict) else {}
    try:
        provider = LLMProviderType(overrides.get("provider_override") or default_provider)
    except ValueError:
        provider = default_provider
    model = overrides.get("model_override")
    if not _storable(model, MODEL_NAME_MAX_CHARS):
        model = default_models.get(provider, provider.value)
    request_id = str(raw.get("queue_id") or "")
    if not _storable(request_id, 128):
        request_id = str(correlation_id)
    return topic, {
        "correlation_id": correlation_id,
        "request_id": request_id,
        "metadata": metadata if isinstance(metadata, dict) else {},
        "requested_at": _when(raw.get("queued_at")),
        "provider": provider,
        "model": model,
    }


def _storable(text: object, max_chars: int) -> bool:
    """A non-empty string the result contract accepts (length, no control characters)."""
    if not isinstance(text, str) or not 0 < len(text) <= max_chars:
        return False
    try:
        reject_control_characters(text)
    except ValueError:
        return False
    return True


def _when(value: Any) -> datetime:
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.now(UTC)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
