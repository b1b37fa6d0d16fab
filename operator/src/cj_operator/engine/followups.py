"""What a finished batch owes once: its results ConfigMap and its completion event."""

from __future__ import annotations

import contextlib
from typing import Protocol

import structlog

from cj_operator import results as results_mod
from cj_operator.db import batches, reads
from cj_operator.db.session import Database
from cj_operator.k8s_io import BatchRef, KubeApi, ResultsConfigMapNotOwnedError
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
) -> bool:
    """Write the results ConfigMap (unless the CJBatch is deleted) and publish the completion
    event, each once (marked in the database after it happened).

    Returns True when the batch owes nothing more (also when unknown), False when it has not
    finished. Raises what the Kubernetes API or Kafka raise (the step is retried).
    """
    finished = await reads.finished_batch(db, uid)
    if finished is None:
        return await reads.followups_of(db, uid) is None
    due = await reads.followups_of(db, uid)
    if due is None:
        return True
    if not (due.results or due.event):
        return True
    rows = await reads.result_rows(db, uid)
    if due.results:
        blocked = None
        if not due.deleted:
            ref = BatchRef(finished.namespace, finished.name, uid)
            try:
                await kube.write_results(
                    ref,
                    results_mod.results_config_map_name(finished.name),
                    {
                        "results.csv": results_mod.results_csv(rows),
                        "results.json": results_mod.results_json(rows),
                        "summary.json": results_mod.results_summary(finished, rows),
                    },
                )
            except ResultsConfigMapNotOwnedError as exc:
                blocked = str(exc)
                log.warning("results ConfigMap not written", batch_uid=uid, reason=blocked)
                with contextlib.suppress(Exception):  # an Event is informational
                    await kube.post_event(
                        ref, "Warning", Reason.RESULTS_CONFIG_MAP_NOT_OWNED, blocked
                    )
        await batches.mark_done(db, uid, results=True, results_blocked=blocked)
    if due.event:
        event = results_mod.completion_event(finished, rows)
        await publisher.publish_completion(completion_topic, event)
        await batches.mark_done(db, uid, event=True)
        metrics.completion_events.labels(finished.state.value).inc()
        log.info("completion event published", batch_uid=uid, state=finished.state.value)
    return True
