"""Names of the Redis keys shared by the API and the workers (all under one prefix)."""

from __future__ import annotations

from dataclasses import dataclass

from common_core import LLMProviderType, QueuePriority

PRIORITY_ORDER: tuple[QueuePriority, ...] = (QueuePriority.HIGH, QueuePriority.NORMAL)
"""Workers drain streams in this order."""


@dataclass(frozen=True)
class RedisKeys:
    """Key names derived from CJ_REDIS_KEY_PREFIX.

    - `stream(priority)`: the request stream of a priority (`<prefix>requests:high|normal`);
      entries have one field `r`, a QueuedRequest as JSON.
    - `cancelled`: sorted set batch_id -> expiry (epoch seconds) of cancelled batches.
    - `queue_full`: present while the API refuses with QUEUE_FULL (between the water marks).
    - `drained(bucket)`: requests finished by all workers in a 10-second bucket.
    - `rate(provider, kind, window)`: a rate-limit counter of one minute.
    - `dead_letter`: entries given up on (unreadable payload, delivered too often, callback
      topic gone, event too large), kept for inspection with the reason.
    """

    prefix: str

    def stream(self, priority: QueuePriority) -> str:
        return f"{self.prefix}requests:{priority.value}"

    @property
    def streams(self) -> list[str]:
        return [self.stream(p) for p in PRIORITY_ORDER]

    @property
    def cancelled(self) -> str:
        return f"{self.prefix}cancelled-batches"

    @property
    def queue_full(self) -> str:
        return f"{self.prefix}queue-full"

    def drained(self, bucket: int) -> str:
        return f"{self.prefix}drained:{bucket}"

    def rate(self, provider: LLMProviderType, kind: str) -> str:
        return f"{self.prefix}ratelimit:{provider.value}:{kind}"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}dead-letter"
