"""What a finished batch owes once: its results and comparisons ConfigMaps and its completion
event."""

from __future__ import annotations

import contextlib
from typing import Protocol

import structlog

from cj_operator import evidence
from cj_operator import results as results_mod
from cj_operator.db import batches, reads
from cj_operator.db.session import Database
from cj_operator.k8s_io import BatchRef, ConfigMapNotOwnedError, KubeApi
from cj_operator.lifecycle.reasons import Reason
from cj_operator.metrics import OperatorMetrics
from common_core import CJAssessmentCompletedV1

log = structlog.get_logger("cj_operator.engine")


class CompletionPublisher(Protocol):
    """Where completion events go (`cj_operator.kafka_io.EventPublisher` in the process)."""

    async def publish_completion(self, topic: str, event: CJAssessmentCompletedV1) -> None:
        """Publish one batch's completion event (raises when Kafka does not take it)."""
        ...


async def write_followups(
    *,
    db: Database,
    kube: KubeApi,
    publisher: CompletionPublisher,
    completion_topic: str,
    metrics: OperatorMetrics,
    uid: str,
    comparisons_max_bytes: int = evidence.COMPARISONS_DATA_BUDGET,
) -> bool:
    """Write the results ConfigMap and the comparisons ConfigMap (unless the CJBatch is
    deleted) and publish the completion event, each once (marked in the database after it
    happened). The comparisons ConfigMap is left out, and the reason recorded, when its CSV is
    larger than `comparisons_max_bytes` (bytes; 0 never writes it).

    Returns True when the batch owes nothing more (also when unknown), False when it has not
    finished. Raises what the Kubernetes API or Kafka raise (the step is retried).
    """
    finished = await reads.finished_batch(db, uid)
    if finished is None:
        return await reads.followups_of(db, uid) is None
    due = await reads.followups_of(db, uid)
    if due is None:
        return True
    if not (due.results or due.comparisons or due.event):
        return True
    ref = BatchRef(finished.namespace, finished.name, uid)
    rows = await reads.result_rows(db, uid) if due.results or due.event else []
    if due.results:
        blocked = None
        if not due.deleted:
            blocked = await _write_owned(
                kube,
                ref,
                results_mod.results_config_map_name(finished.name),
                {
                    "results.csv": results_mod.results_csv(rows),
                    "results.json": results_mod.results_json(rows),
                    "summary.json": results_mod.results_summary(finished, rows),
                },
                Reason.RESULTS_CONFIG_MAP_NOT_OWNED,
            )
        await batches.mark_done(db, uid, results=True, results_blocked=blocked)
    if due.comparisons:
        not_written = None
        if not due.deleted:
            not_written = await _write_comparisons(db, kube, ref, comparisons_max_bytes)
        await batches.mark_done(db, uid, comparisons=True, comparisons_blocked=not_written)
    if due.event:
        event = results_mod.completion_event(finished, rows)
        await publisher.publish_completion(completion_topic, event)
        await batches.mark_done(db, uid, event=True)
        metrics.completion_events.labels(finished.state.value).inc()
        log.info("completion event published", batch_uid=uid, state=finished.state.value)
    return True


async def _write_comparisons(
    db: Database, kube: KubeApi, ref: BatchRef, max_bytes: int
) -> tuple[Reason, str] | None:
    """Write `<name>-comparisons`; the reason and message why it was not written, else None."""
    rows = await reads.comparison_rows(db, ref.uid)
    text = evidence.comparisons_csv(rows)
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        why = evidence.too_large_message(len(rows), size, max_bytes, ref.name)
        log.info("comparisons ConfigMap not written", batch_uid=ref.uid, reason=why)
        return Reason.COMPARISONS_TOO_LARGE, why
    taken = await _write_owned(
        kube,
        ref,
        evidence.comparisons_config_map_name(ref.name),
        {"comparisons.csv": text},
        Reason.COMPARISONS_CONFIG_MAP_NOT_OWNED,
    )
    return None if taken is None else (Reason.COMPARISONS_CONFIG_MAP_NOT_OWNED, taken)


async def _write_owned(
    kube: KubeApi, ref: BatchRef, name: str, data: dict[str, str], reason: Reason
) -> str | None:
    """Write an owned ConfigMap; when its name is taken, a Warning Event and the message."""
    try:
        await kube.write_config_map(ref, name, data)
    except ConfigMapNotOwnedError as exc:
        blocked = str(exc)
        log.warning("ConfigMap not written", batch_uid=ref.uid, name=name, reason=blocked)
        with contextlib.suppress(Exception):  # an Event is informational
            await kube.post_event(ref, "Warning", reason, blocked)
        return blocked
    return None
