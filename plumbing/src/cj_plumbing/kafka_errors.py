"""Kafka producer errors that only a new producer gets past.

An idempotent producer numbers its batches per partition under its producer id. When the
broker and the producer stop agreeing on that numbering (a broker restarted while batches
were in flight, a send given up on by a timeout), aiokafka fails every later send to that
partition with `OutOfOrderSequenceNumber` (or `UnknownProducerId`, or an epoch error) and,
unlike the Java client, never takes a new producer id by itself. `needs_new_producer(exc)`
names these errors: the producer's owner then stops it and starts a new one (a new producer
id, numbering from 0); the unacknowledged event is sent again by the caller's retry.

Found by the fault suite (tests/faults/): after the Kafka broker was stopped for 20 s
mid-batch, a worker failed every publish with OutOfOrderSequenceNumber until it was restarted.
"""

from __future__ import annotations

from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

PRODUCER_STATE_ERRORS: tuple[type[Exception], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
)
"""The errors after which a producer's sends to a partition keep failing (module docstring)."""


def needs_new_producer(exc: BaseException) -> bool:
    """True when `exc` (raised by a send) means the producer must be replaced."""
    return isinstance(exc, PRODUCER_STATE_ERRORS)
