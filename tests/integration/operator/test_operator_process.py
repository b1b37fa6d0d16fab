"""The operator process (kopf run) reconciling CJBatches on the real cluster.

Against the real kube-apiserver, PostgreSQL, Kafka and the real provider API + worker (mock
judge): status and conditions, finalizer and delete, suspend/resume, essays from ConfigMaps,
the results ConfigMap, exactly one completion event, failures, and a restart mid-batch.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

import pytest
from kubernetes import client as k8s_client
from sqlalchemy import select

from cj_operator.db.models import Batch
from cj_operator.db.session import Database
from common_core import BatchStateEnum, CJAssessmentCompletedV1, EventEnvelope
from tests.support.cjbatches import Batches, condition, phase
from tests.support.kafka import collect_events
from tests.support.metrics import metric
from tests.support.stack import Stack

pytestmark = pytest.mark.usefixtures("cjbatch_crd")

ESSAYS = [
    {"id": f"s{i}", "text": "Word " * (10 + 7 * i), "metadata": {"true_score": float(i)}}
    for i in range(6)
]
"""Six essays of growing length: the mock judge prefers the longer essay, so s5 ranks first."""

Completion = EventEnvelope[CJAssessmentCompletedV1]


def spec(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "essays": ESSAYS,
        "assignment": {"prompt": "Describe your town.", "rubric": "Detail, structure."},
        "judge": {"provider": "mock", "model": "mock"},
        "comparisons": {"targetPerEssay": 5},  # 15 comparisons: every pair once
    }
    base.update(changes)
    return base


async def completions(
    stack: Stack, at_least: int, settle: float = 2.0, within: float = 60.0
) -> list[Completion]:
    """Completion events on the stack's completion topic: `at_least`, then `settle` s more."""
    assert stack.config.completion_topic is not None
    return await collect_events(
        stack.config.cluster.kafka_bootstrap_servers,
        stack.config.completion_topic,
        Completion,
        at_least,
        within=within,
        settle=settle,
    )


def operator_metric(stack: Stack, name: str, **labels: str) -> float:
    """One sample of the operator's /metrics (0 when absent)."""
    return metric(stack.operator_metrics_url, name, **labels)


@pytest.fixture
def batches(k8s_api: k8s_client.ApiClient, namespace: str) -> Batches:
    return Batches(k8s_api, namespace)


async def _db_batch(database_url: str, uid: str) -> Batch | None:
    db = Database(database_url, pool_size=1)
    try:
        async with db.sessions() as session:
            return (
                await session.execute(select(Batch).where(Batch.uid == uid))
            ).scalar_one_or_none()
    finally:
        await db.dispose()


def _finished(obj: dict[str, Any]) -> bool:
    return phase(obj) in ("Completed", "Failed") and bool(
        (obj.get("status") or {}).get("resultsConfigMap")
    )


async def test_batch_runs_to_completion_with_results_and_one_event(
    operator: Stack, batches: Batches, database_url: str
) -> None:
    created = batches.create("town", spec())
    uid = created["metadata"]["uid"]
    running = batches.wait(
        "town", lambda o: (o.get("status") or {}).get("submitted", 0) > 0, "submissions", operator
    )
    assert "cj.huleedu.io/finalizer" in running["metadata"]["finalizers"]

    done = batches.wait("town", _finished, "completion", operator)
    status = done["status"]
    assert status["phase"] == "Completed", status
    assert condition(done, "Succeeded")["status"] == "True"
    ready = condition(done, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "ResultsReady")
    assert "configmap/town-results holds the ranking of 6 essays" in ready["message"]
    assert condition(done, "Progressing")["status"] == "False"
    assert condition(done, "EssaysLoaded")["reason"] == "EssaysStored"
    assert status["essays"] == 6
    assert status["progress"] == "100%"
    assert status["completed"] + status["failed"] <= status["submitted"]
    assert status["pending"] == 0
    assert status["round"] >= 1
    assert status["observedGeneration"] == 1
    assert status["topEssays"][0]["id"] == "s5"
    assert [e["rank"] for e in status["topEssays"]] == list(range(1, 7))

    cm = batches.core.read_namespaced_config_map("town-results", batches.namespace)
    assert cm.metadata is not None and cm.metadata.owner_references is not None
    assert cm.metadata.owner_references[0].uid == uid
    assert cm.data is not None
    rows = list(csv.DictReader(io.StringIO(cm.data["results.csv"])))
    assert [r["essay_id"] for r in rows] == [f"s{i}" for i in range(5, -1, -1)]
    assert rows[0]["true_score"] == "5"  # the API server stores 5.0 as the JSON integer 5
    doc = json.loads(cm.data["results.json"])
    assert doc[0]["essay_id"] == "s5" and doc[0]["rank"] == 1
    assert sum(r["comparisons"] for r in doc) == 2 * status["completed"]

    events = await completions(operator, at_least=1, settle=3.0)
    assert len(events) == 1
    event = events[0].data
    assert event.batch_id == uid
    assert event.state == BatchStateEnum.COMPLETED
    assert event.completed == status["completed"]
    assert [r.essay_id for r in event.rankings][:2] == ["s5", "s4"]
    assert event.provider == "mock"

    reasons = batches.events("town")
    assert "EssaysStored" in reasons and "RoundPlanned" in reasons and "Completed" in reasons
    assert (
        operator_metric(operator, "cj_operator_callbacks_total", outcome="success")
        == status["completed"]
    )
    assert operator_metric(operator, "cj_operator_completion_events_total", state="COMPLETED") == 1

    batches.delete("town")
    batches.wait_gone("town", operator)
    row = await _db_batch(database_url, uid)
    assert row is not None and row.deleted_at is not None  # retention: keep


async def test_suspended_batch_submits_nothing_until_resumed(
    operator: Stack, batches: Batches
) -> None:
    batches.create("paused", spec(suspend=True))
    obj = batches.wait("paused", lambda o: phase(o) == "Suspended", "Suspended phase", operator)
    assert condition(obj, "Suspended")["status"] == "True"
    assert condition(obj, "Progressing")["reason"] == "Suspended"
    await asyncio.sleep(3)  # several monitor passes: still nothing submitted
    assert batches.status("paused")["submitted"] == 0
    batches.patch_spec("paused", {"suspend": False})
    done = batches.wait("paused", _finished, "completion after resume", operator)
    assert done["status"]["phase"] == "Completed"
    assert done["status"]["observedGeneration"] == 2
    assert condition(done, "Suspended")["status"] == "False"


async def test_deleting_a_running_batch_cancels_it(
    operator: Stack, batches: Batches, database_url: str
) -> None:
    slow = spec(judge={"provider": "mock", "model": "mock?latency_ms=4000"})
    uid = batches.create("slow", slow)["metadata"]["uid"]
    batches.wait(
        "slow", lambda o: (o.get("status") or {}).get("submitted", 0) > 0, "submissions", operator
    )
    batches.delete("slow")
    batches.wait_gone("slow", operator)
    events = await completions(operator, at_least=1, settle=2.0)
    assert [e.data.state for e in events] == [BatchStateEnum.CANCELLED]
    assert events[0].data.batch_id == uid
    row = await _db_batch(database_url, uid)
    assert row is not None
    assert row.state == BatchStateEnum.CANCELLED
    assert row.completed + row.failed == row.submitted


async def test_essays_from_config_maps_wait_for_them(operator: Stack, batches: Batches) -> None:
    source = spec(essays=None, essaysFrom=[{"configMap": "class-7b"}])
    del source["essays"]
    batches.create("from-cm", source)
    waiting = batches.wait(
        "from-cm",
        lambda o: condition(o, "EssaysLoaded").get("reason") == "ConfigMapNotFound",
        "ConfigMapNotFound",
        operator,
    )
    assert phase(waiting) == "Pending"
    rows = ["id,text,true_score"] + [f'{e["id"]},"{e["text"]}",{i}' for i, e in enumerate(ESSAYS)]
    batches.core.create_namespaced_config_map(
        batches.namespace,
        k8s_client.V1ConfigMap(
            metadata=k8s_client.V1ObjectMeta(name="class-7b"),
            data={
                "part-1.csv": "\n".join(rows[:4]) + "\n",
                "part-2.csv": "\n".join([rows[0], *rows[4:]]),
            },
        ),
    )
    done = batches.wait("from-cm", _finished, "completion", operator, within=120)
    assert done["status"]["phase"] == "Completed"
    assert done["status"]["essays"] == 6


async def test_a_results_config_map_the_batch_does_not_own_is_never_overwritten(
    operator: Stack, batches: Batches
) -> None:
    batches.core.create_namespaced_config_map(
        batches.namespace,
        k8s_client.V1ConfigMap(
            metadata=k8s_client.V1ObjectMeta(name="taken-results"), data={"notes": "mine"}
        ),
    )
    batches.create("taken", spec())
    done = batches.wait(
        "taken",
        lambda o: condition(o, "ResultsWritten").get("status") == "False",
        "ResultsWritten=False",
        operator,
        within=120,
    )
    assert done["status"]["phase"] == "Completed"
    written = condition(done, "ResultsWritten")
    assert written["reason"] == "ResultsConfigMapNotOwned"
    assert "configmap/taken-results already exists" in written["message"]
    assert done["status"].get("resultsConfigMap") is None
    ready = condition(done, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ResultsConfigMapNotOwned")
    cm = batches.core.read_namespaced_config_map("taken-results", batches.namespace)
    assert cm.data == {"notes": "mine"}
    assert not (cm.metadata and cm.metadata.owner_references)
    assert "ResultsConfigMapNotOwned" in batches.events("taken")


async def test_invalid_essays_fail_the_batch(operator: Stack, batches: Batches) -> None:
    batches.core.create_namespaced_config_map(
        batches.namespace,
        k8s_client.V1ConfigMap(
            metadata=k8s_client.V1ObjectMeta(name="broken"),
            data={"essays.csv": "id,body\na,text\n"},
        ),
    )
    source = spec(essaysFrom=[{"configMap": "broken"}])
    del source["essays"]
    batches.create("broken", source)
    failed = batches.wait("broken", lambda o: phase(o) == "Failed", "Failed phase", operator)
    loaded = condition(failed, "EssaysLoaded")
    assert loaded["status"] == "False" and loaded["reason"] == "InvalidEssays"
    assert "no 'text' column" in loaded["message"]
    assert condition(failed, "Succeeded")["status"] == "False"


async def test_comparisons_that_always_fail_end_in_low_success_rate(
    operator: Stack, batches: Batches
) -> None:
    batches.create("refused", spec(judge={"provider": "mock", "model": "mock?fail=too_long"}))
    failed = batches.wait("refused", _finished, "Failed phase", operator)
    assert failed["status"]["phase"] == "Failed"
    succeeded = condition(failed, "Succeeded")
    assert succeeded["status"] == "False" and succeeded["reason"] == "LowSuccessRate"
    assert failed["status"]["completed"] == 0
    assert failed["status"]["failed"] == failed["status"]["submitted"]
    events = await completions(operator, at_least=1, settle=1.0)
    assert [e.data.state for e in events] == [BatchStateEnum.FAILED]


async def test_a_judge_the_provider_api_refuses_fails_the_batch_at_once(
    operator: Stack, batches: Batches
) -> None:
    """The real provider API refuses a model its manifest does not know: the batch fails as
    JudgeRefused at the first refusal (not LowSuccessRate after every pair and retry),
    naming the judge and the model."""
    batches.create("nojudge", spec(judge={"provider": "openai", "model": "gpt-no-such-model"}))
    failed = batches.wait("nojudge", _finished, "Failed phase", operator)
    succeeded = condition(failed, "Succeeded")
    assert succeeded["status"] == "False" and succeeded["reason"] == "JudgeRefused"
    assert succeeded["message"].startswith("The provider API refuses the judge of spec.judge: ")
    assert (
        "'gpt-no-such-model' is not in the manifest for provider 'openai'" in (succeeded["message"])
    )
    assert condition(failed, "Ready")["reason"] == "JudgeRefused"
    assert failed["status"]["completed"] == 0
    # the first round's three pairs were sent and refused; none retried, no second round
    assert failed["status"]["submitted"] == failed["status"]["failed"] == 3
    assert "JudgeRefused" in batches.events("nojudge")
    events = await completions(operator, at_least=1, settle=1.0)
    assert [e.data.state for e in events] == [BatchStateEnum.FAILED]


async def test_a_restarted_operator_finishes_the_batch_once(
    operator: Stack, batches: Batches
) -> None:
    batches.create("restart", spec(judge={"provider": "mock", "model": "mock?latency_ms=700"}))
    batches.wait(
        "restart",
        lambda o: (o.get("status") or {}).get("submitted", 0) > 0,
        "submissions",
        operator,
    )
    assert operator.operator is not None
    operator.operator.kill()
    operator.start_operator()
    done = batches.wait("restart", _finished, "completion after restart", operator, within=120)
    assert done["status"]["phase"] == "Completed"
    assert done["status"]["completed"] + done["status"]["failed"] <= done["status"]["submitted"]
    events = await completions(operator, at_least=1, settle=3.0)
    assert len(events) == 1


@pytest.mark.parametrize(
    "operator_env",
    [{"CJ_OPERATOR_CALLBACK_TIMEOUT_MINUTES": "0.04"}],  # 2.4 s; monitor every 3 s
    indirect=True,
)
async def test_overdue_callbacks_are_resubmitted_then_given_up(
    operator: Stack, batches: Batches
) -> None:
    slow = spec(
        judge={"provider": "mock", "model": "mock?latency_ms=10000"},
        comparisons={"targetPerEssay": 1},
        limits={"maxRetries": 1},
    )
    batches.create("overdue", slow)
    failed = batches.wait("overdue", _finished, "Failed phase", operator, within=120)
    status = failed["status"]
    assert status["phase"] == "Failed"
    assert condition(failed, "Succeeded")["reason"] == "LowSuccessRate"
    # 3 comparisons, each sent twice (attempt 1, then its retry), every one overdue.
    assert (status["submitted"], status["completed"], status["failed"]) == (6, 0, 6)
    assert operator_metric(operator, "cj_operator_comparisons_overdue_total") == 6
    batches.wait(
        "overdue",
        lambda _: operator_metric(operator, "cj_operator_callbacks_total", outcome="stale") >= 3,
        "late callbacks counted as stale",
        operator,
    )


@pytest.mark.parametrize("operator_env", [{"BATCH_TIMEOUT_HOURS": "0.0015"}], indirect=True)
async def test_timeout_fails_a_batch_with_too_few_answers(
    operator: Stack, batches: Batches
) -> None:
    batches.create("late", spec(judge={"provider": "mock", "model": "mock?latency_ms=60000"}))
    failed = batches.wait("late", _finished, "Failed phase", operator, within=60)
    assert failed["status"]["phase"] == "Failed"
    succeeded = condition(failed, "Succeeded")
    assert succeeded["reason"] == "TimedOut"
    assert "0 of 3 comparisons answered" in succeeded["message"]
    assert failed["status"]["pending"] == 0
