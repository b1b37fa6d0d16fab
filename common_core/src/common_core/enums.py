"""Enumerations shared across the contracts (string values are the wire format)."""

from __future__ import annotations

from enum import StrEnum


class EssayComparisonWinner(StrEnum):
    """Which essay of a pair the judge preferred."""

    ESSAY_A = "essay_a"
    ESSAY_B = "essay_b"


class LLMProviderType(StrEnum):
    """Judges a worker can call (see DESIGN.md, "LLM providers")."""

    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    OPENAI_COMPATIBLE = "openai_compatible"
    OFFLINE = "offline"
    SIMULATED = "simulated"
    MOCK = "mock"


class BatchStateEnum(StrEnum):
    """Life cycle of a CJ batch, as stored by the operator."""

    INITIALIZING = "INITIALIZING"
    GENERATING_PAIRS = "GENERATING_PAIRS"
    WAITING_CALLBACKS = "WAITING_CALLBACKS"
    SCORING = "SCORING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED, FAILED and CANCELLED: no transition leaves these states."""
        return self in _TERMINAL_STATES


_TERMINAL_STATES = frozenset(
    {BatchStateEnum.COMPLETED, BatchStateEnum.FAILED, BatchStateEnum.CANCELLED}
)


class QueuePriority(StrEnum):
    """Queue priority of a comparison request; workers drain `high` before `normal`."""

    HIGH = "high"
    NORMAL = "normal"
