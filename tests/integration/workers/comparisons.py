"""Comparison requests the provider-side tests submit, and the result events they read back."""

from __future__ import annotations

from typing import Any

from common_core import EventEnvelope, LLMComparisonResultV1
from tests.support.kafka import collect_keyed
from tests.support.stack import Stack

Event = EventEnvelope[LLMComparisonResultV1]


def request(topic: str, case: str, **overrides: Any) -> dict[str, Any]:
    """A comparison request body tagged with metadata["case"]."""
    body: dict[str, Any] = {
        "user_prompt": "Assignment: should schools start later? Rubric: argument, language.",
        "essay_a": "Schools should start later because teenagers need sleep to learn well.",
        "essay_b": "i think school start is ok becuase we go early and its fine.",
        "callback_topic": topic,
        "metadata": {"case": case, "batch_id": "batch-default"},
    }
    body.update(overrides)
    return body


async def collect(
    stack: Stack, count: int, within: float = 60.0, settle: float = 0.0
) -> list[tuple[bytes | None, Event]]:
    """(key, envelope) pairs from the start of the stack's callback topic until `count` arrived,
    then for `settle` more seconds (to see any extra). AssertionError when `within` s pass
    first."""
    return await collect_keyed(
        stack.config.cluster.kafka_bootstrap_servers,
        stack.config.callback_topic,
        Event,
        count,
        within=within,
        settle=settle,
        strict=True,
    )
