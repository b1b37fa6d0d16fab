"""Which Kafka topics a comparison request may name as its `callback_topic` (pure).

A callback topic is allowed when it is listed (CJ_API_CALLBACK_TOPICS) or matches the optional
pattern (CJ_API_CALLBACK_TOPIC_PATTERN), and it is never one of the refused topics: the CJ
assessment completion topic, every dead-letter topic (a name with a `dlq`, `dlt` or
`dead-letter` part) and those configured (CJ_API_REFUSED_CALLBACK_TOPICS). Results published
there would reach consumers that expect other events (issue 11).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from common_core import ProcessingEvent

ALWAYS_REFUSED: frozenset[str] = frozenset({ProcessingEvent.CJ_ASSESSMENT_COMPLETED.topic_name()})
"""Topics no request may name, whatever the settings."""

_PARTS = re.compile(r"[._-]")


def is_dead_letter_topic(topic: str) -> bool:
    """True for a dead-letter topic name: one with a part (split at `.`, `_`, `-`) `dlq` or
    `dlt`, `deadletter(s)`, or `dead` followed by `letter(s)`, case-insensitive.

    e.g. `huleedu.llm_provider.comparison_result.v1.dlq`, `orders-DLT`, `x.dead-letter`.
    """
    parts = [p for p in _PARTS.split(topic.lower()) if p]
    for i, part in enumerate(parts):
        if part in {"dlq", "dlt", "deadletter", "deadletters"}:
            return True
        if part == "dead" and i + 1 < len(parts) and parts[i + 1] in {"letter", "letters"}:
            return True
    return False


@dataclass(frozen=True)
class CallbackTopicPolicy:
    """The allowlist, optional pattern and refused topics (see the module docstring)."""

    allowed: frozenset[str]
    pattern: re.Pattern[str] | None
    refused: frozenset[str]

    @classmethod
    def build(
        cls, allowed: Iterable[str], pattern: str | None, refused: Iterable[str]
    ) -> CallbackTopicPolicy:
        """The policy of the settings' values (an empty pattern means none)."""
        return cls(
            allowed=frozenset(allowed),
            pattern=re.compile(pattern) if pattern else None,
            refused=ALWAYS_REFUSED | frozenset(refused),
        )

    def problem(self, topic: str) -> str | None:
        """Why `topic` is not allowed as a callback topic, or None when it is."""
        if topic in self.refused:
            return (
                f"callback_topic {topic!r} is refused: it is a topic of other events "
                "(the completion topic or a configured refused topic), never a callback topic"
            )
        if is_dead_letter_topic(topic):
            return f"callback_topic {topic!r} is refused: dead-letter topics are never callbacks"
        if topic in self.allowed:
            return None
        if self.pattern is not None and self.pattern.fullmatch(topic):
            return None
        allowed = ", ".join(sorted(self.allowed)) or "none"
        pattern = f" or match {self.pattern.pattern}" if self.pattern is not None else ""
        return (
            f"callback_topic {topic!r} is not allowed (must be one of CJ_API_CALLBACK_TOPICS: "
            f"{allowed}{pattern})"
        )
