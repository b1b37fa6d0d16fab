"""Contracts shared by the operator and the provider workers (pydantic v2 models only)."""

from common_core.api import (
    KAFKA_TOPIC_PATTERN,
    LLMComparisonRequest,
    LLMConfigOverrides,
    LLMQueuedResponse,
    ModelInfo,
    QueuedRequest,
)
from common_core.assessment import CJAssessmentCompletedV1, EssayRanking
from common_core.bulk import (
    BULK_MAX_ITEMS,
    BatchCancelResponse,
    BulkItemOutcome,
    LLMComparisonBulkRequest,
    LLMComparisonBulkResponse,
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
    "BULK_MAX_ITEMS",
    "JUSTIFICATION_MAX_CHARS",
    "KAFKA_TOPIC_PATTERN",
    "BatchCancelResponse",
    "BatchStateEnum",
    "BulkItemOutcome",
    "CJAssessmentCompletedV1",
    "ErrorDetail",
    "EssayComparisonWinner",
    "EssayRanking",
    "EventEnvelope",
    "LLMComparisonBulkRequest",
    "LLMComparisonBulkResponse",
    "LLMComparisonRequest",
    "LLMComparisonResultV1",
    "LLMConfigOverrides",
    "LLMErrorCode",
    "LLMProviderType",
    "LLMQueuedResponse",
    "ModelInfo",
    "ProcessingEvent",
    "QueuePriority",
    "QueuedRequest",
    "TokenUsage",
]
