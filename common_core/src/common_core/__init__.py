"""Contracts shared by the operator and the provider workers (pydantic v2 models only)."""

from common_core.api import (
    KAFKA_TOPIC_PATTERN,
    LLMComparisonRequest,
    LLMConfigOverrides,
    LLMQueuedResponse,
    QueuedRequest,
)
from common_core.enums import (
    BatchStateEnum,
    EssayComparisonWinner,
    LLMProviderType,
    QueuePriority,
)
from common_core.errors import ErrorDetail, LLMErrorCode
from common_core.events import (
    JUSTIFICATION_MAX_CHARS,
    EventEnvelope,
    LLMComparisonResultV1,
    ProcessingEvent,
    TokenUsage,
)

__all__ = [
    "JUSTIFICATION_MAX_CHARS",
    "KAFKA_TOPIC_PATTERN",
    "BatchStateEnum",
    "ErrorDetail",
    "EssayComparisonWinner",
    "EventEnvelope",
    "LLMComparisonRequest",
    "LLMComparisonResultV1",
    "LLMConfigOverrides",
    "LLMErrorCode",
    "LLMProviderType",
    "LLMQueuedResponse",
    "ProcessingEvent",
    "QueuePriority",
    "QueuedRequest",
    "TokenUsage",
]
