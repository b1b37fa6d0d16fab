"""The batch engine: a thin scheduler (`scheduler`) over the steps that move a batch."""

from cj_operator.engine.followups import CompletionPublisher
from cj_operator.engine.scheduler import BatchEngine

__all__ = ["BatchEngine", "CompletionPublisher"]
