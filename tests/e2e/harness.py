"""Steps of the end-to-end main job: a CJBatch through the whole system, checked from outside.

Everything here reads what a user or an operator of the system can see: the CJBatch's status
and results ConfigMap (kube-apiserver), the events on the callback and completion topics
(Kafka), and the operator's tables (PostgreSQL).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from kubernetes import client as k8s_client
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from cj_operator.db.models import Batch, ComparisonPair
from cj_operator.results import results_config_map_name
from cj_operator.spec import API_GROUP, API_VERSION, PLURAL
from common_core import (
    CJAssessmentCompletedV1,
    EventEnvelope,
    LLMComparisonResultV1,
    metadata_keys,
)
from tests.support.stack import Stack

TERMINAL = ("Completed", "Failed", "Cancelled")


def batch_manifest(name: str, spec: dict[str, Any]) -> str:
    """A CJBatch manifest for `kubectl apply -f -`, as JSON: YAML would let an essay id such as
    `0e12345` be read as a number."""
    return json.dumps(
        {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "CJBatch",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


async def wait_for_terminal(
    k8s_api: k8s_client.ApiClient, namespace: str, name: str, stack: Stack, within: float
) -> dict[str, Any]:
    """Poll the CJBatch until its phase is terminal (at most `within` s); returns the object."""
    custom = k8s_client.CustomObjectsApi(k8s_api)
    deadline = time.monotonic() + within
    obj: Any = {}
    while time.monotonic() < deadline:
        obj = custom.get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name)
        if obj.get("status", {}).get("phase") in TERMINAL:
            return dict(obj)
        await asyncio.sleep(1.0)
    raise AssertionError(
        f"cjbatch {name} not finished after {within} s; status "
        f"{json.dumps(obj.get('status', {}), indent=1)}\n{stack.logs()}"
    )


def results_rows(k8s_api: k8s_client.ApiClient, namespace: str, name: str) -> list[dict[str, Any]]:
    """The rows of `results.json` in the batch's results ConfigMap."""
    cm: Any = k8s_client.CoreV1Api(k8s_api).read_namespaced_config_map(
        results_config_map_name(name), namespace
    )
    assert "results.csv" in cm.data
    rows: list[dict[str, Any]] = json.loads(cm.data["results.json"])
    return rows


@dataclass(frozen=True)
class DbCounts:
    submitted: int
    completed: int
    failed: int
    pairs_with_winner: int


async def database_counts(database_url: str, uid: str) -> DbCounts:
    """The batch row's counters and the number of pairs holding a winner."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            batch = (await conn.execute(select(Batch).where(Batch.uid == uid))).one()
            winners = (
                await conn.execute(
                    select(func.count())
                    .select_from(ComparisonPair)
                    .where(ComparisonPair.batch_uid == uid, ComparisonPair.winner.is_not(None))
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    return DbCounts(batch.submitted, batch.completed, batch.failed, int(winners))


async def read_topic(bootstrap: str, topic: str, idle_seconds: float = 3.0) -> list[bytes]:
    """Every record value on `topic` from the beginning, until `idle_seconds` bring nothing."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int(idle_seconds * 1000))
            if not batch:
                return values
            values += [r.value for records in batch.values() for r in records if r.value]
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class CallbackTally:
    distinct_requests: int
    successes: int
    errors: int


async def callback_tally(bootstrap: str, topic: str, uid: str) -> CallbackTally:
    """Distinct callback events (by correlation id) of one batch on the callback topic."""
    seen: dict[str, bool] = {}
    for value in await read_topic(bootstrap, topic):
        event = EventEnvelope[LLMComparisonResultV1].model_validate_json(value).data
        if event.request_metadata.get(metadata_keys.BATCH_ID) == uid:
            seen[str(event.correlation_id)] = event.is_success
    return CallbackTally(len(seen), sum(seen.values()), sum(not s for s in seen.values()))


async def completion_events(bootstrap: str, topic: str, uid: str) -> list[CJAssessmentCompletedV1]:
    """Completion events of one batch on the completion topic."""
    events = [
        EventEnvelope[CJAssessmentCompletedV1].model_validate_json(v).data
        for v in await read_topic(bootstrap, topic)
    ]
    return [e for e in events if e.batch_id == uid]
