"""kopf handlers of the CJBatch operator: ``kopf run -m cj_operator.handlers``.

Flags (docs/operator.md): ``--all-namespaces`` (or ``--namespace=NS``, repeatable),
``--liveness=http://0.0.0.0:8080/healthz``, and ``--standalone`` for a single replica without
peering; with several replicas leave it out (peering through the ClusterKopfPeering named by
CJ_OPERATOR_PEERING_NAME, or ``--peering NAME``) and set POD_ID to the pod name.

The handlers only admit, update and delete batches; decisions are taken from PostgreSQL by
the runtime's engine (cj_operator.runtime), never from `status.phase`.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
import structlog
from pydantic import ValidationError

from cj_operator.provider_client import ProviderRejectedError, ProviderUnavailableError
from cj_operator.runtime import EssaysNotReadyError, Runtime, default_priority
from cj_operator.settings import OperatorSettings
from cj_operator.spec import API_GROUP, API_VERSION, PLURAL, CJBatchSpec
from cj_plumbing.logs import configure_logging

log = structlog.get_logger("cj_operator.handlers")

FINALIZER = f"{API_GROUP}/finalizer"
KOPF_DEFAULT_PEERING = "default"


def _runtime(memo: kopf.Memo) -> Runtime:
    runtime = memo.get("runtime")
    if not isinstance(runtime, Runtime):
        raise kopf.TemporaryError("the operator runtime is not started yet", delay=5)
    return runtime


def _spec(body: kopf.Body) -> CJBatchSpec:
    try:
        return CJBatchSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        raise kopf.PermanentError(f"invalid spec: {exc}") from exc


@kopf.on.startup()
async def operator_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """When the operator starts, configure kopf and start the runtime (database, Kafka, tasks)."""
    config = OperatorSettings()
    configure_logging(config.log_level, config.log_format)

    # Our finalizer and kopf's bookkeeping in annotations under our group: `status` has one
    # writer, the status patcher.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    # kopf turns handler log lines into Kubernetes Events; the operator posts its own Events
    # for what users should see, so only kopf's warnings and errors become Events (e.g.
    # "Handler 'cjbatch_create' failed permanently: invalid spec: ..."). Since kopf 1.45 log
    # lines are posted only with `loggers` on; without it a refused spec told no one.
    settings.posting.loggers = True
    settings.posting.level = logging.WARNING
    # Reconnect watches every few minutes: a silently dropped connection costs at most that.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    # Peering: standby replicas pause. Mandatory unless --standalone, so a missing peering
    # CRD pauses the operator instead of letting two replicas run at once.
    if not settings.peering.standalone:
        if settings.peering.name == KOPF_DEFAULT_PEERING and not settings.peering.mandatory:
            settings.peering.name = config.peering_name
        settings.peering.mandatory = True
        if settings.peering.priority == 0:
            settings.peering.priority = default_priority(config.peering_priority)
        if config.pod_id is None:
            raise kopf.PermanentError(
                "peering needs POD_ID (set it to the pod name); or run with --standalone"
            )
        # One ClusterKopfPeering whichever namespaces are watched: the PeeringGate reads that
        # object, so kopf's pausing and our background work follow the same peers (kopf lets
        # the peering mode differ from the watching mode).
        settings.peering.clusterwide = True
        # A dead active replica is replaced this long after its last keep-alive.
        settings.peering.lifetime = config.peering_lifetime_seconds

    runtime = Runtime(
        config,
        standalone=settings.peering.standalone,
        peering_name=settings.peering.name,
        peering_priority=settings.peering.priority,
        identity=config.pod_id,
    )
    await runtime.start()
    memo["runtime"] = runtime
    log.info(
        "operator started",
        standalone=settings.peering.standalone,
        peering=settings.peering.name,
        priority=settings.peering.priority,
    )


@kopf.on.cleanup()
async def operator_cleanup(memo: kopf.Memo, **_: Any) -> None:
    """When the operator stops, stop the runtime and close its connections."""
    runtime = memo.get("runtime")
    if isinstance(runtime, Runtime):
        await runtime.stop()


@kopf.on.probe(id="database")
async def database_probe(memo: kopf.Memo, **_: Any) -> bool:
    """When the liveness endpoint is asked, report whether PostgreSQL answers."""
    return await _runtime(memo).database_ok()


async def _admit(body: kopf.Body, memo: kopf.Memo) -> None:
    meta = body["metadata"]
    try:
        await _runtime(memo).admit(
            uid=meta["uid"],
            namespace=meta["namespace"],
            name=meta["name"],
            generation=int(meta.get("generation", 1)),
            spec=_spec(body),
        )
    except EssaysNotReadyError as exc:
        raise kopf.TemporaryError(str(exc), delay=15) from exc


@kopf.on.create(API_GROUP, API_VERSION, PLURAL)
async def cjbatch_create(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """When a CJBatch is created, store it and its essays, then start its first round."""
    await _admit(body, memo)


@kopf.on.resume(API_GROUP, API_VERSION, PLURAL)
async def cjbatch_resume(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """When the operator starts, make sure every existing CJBatch is stored and running."""
    await _admit(body, memo)


@kopf.on.update(API_GROUP, API_VERSION, PLURAL, field="spec")
async def cjbatch_update(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """When a CJBatch's spec changes, take over its budget, rules, limits, suspend and cancel."""
    meta = body["metadata"]
    await _runtime(memo).update(
        uid=meta["uid"],
        namespace=meta["namespace"],
        name=meta["name"],
        generation=int(meta.get("generation", 1)),
        spec=_spec(body),
    )


@kopf.on.delete(API_GROUP, API_VERSION, PLURAL)
async def cjbatch_delete(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    """When a CJBatch is deleted, cancel its queued requests and finish it, then release it."""
    meta = body["metadata"]
    try:
        await _runtime(memo).remove(
            uid=meta["uid"], namespace=meta["namespace"], name=meta["name"], retry=retry
        )
    except (ProviderUnavailableError, ProviderRejectedError) as exc:
        raise kopf.TemporaryError(f"provider API cancel failed: {exc}", delay=5) from exc
