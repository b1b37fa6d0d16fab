"""Bad-input suite, essays a user hands the operator: ConfigMaps and specs on the real cluster.

One operator process (kopf run), the real provider API and a mock worker, its own namespace,
database and topics. Each hostile source ends the way a user can read it: the batch FAILED with
`EssaysLoaded=False` (`InvalidEssays`) and a message naming the ConfigMap, key and line, or,
for a spec the API server cannot judge, an Event naming the field; nothing of it is stored; and
the batches around it complete.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from kubernetes import client as k8s_client
from sqlalchemy import func, select

from cj_operator.db.models import Batch, Essay
from cj_operator.db.session import Database
from tests.integration.bad_input.resources import temporary_database
from tests.support.cjbatches import Batches, condition, phase
from tests.support.devcluster import ClusterEnv
from tests.support.isolation import delete_redis_keys, unique_name
from tests.support.kafka import delete_topics
from tests.support.spec_cases import OPERATOR_REFUSED, Case
from tests.support.stack import Stack, StackConfig

pytestmark = pytest.mark.usefixtures("cjbatch_crd")

PROMPT = {"prompt": "Describe your town."}
JUDGE = {"provider": "mock", "model": "mock"}


def spec_from(*config_maps: str) -> dict[str, Any]:
    return {
        "essaysFrom": [{"configMap": name} for name in config_maps],
        "assignment": PROMPT,
        "judge": JUDGE,
        "comparisons": {"targetPerEssay": 2},
    }


@dataclass
class Cluster:
    """The module's operator stack and what the tests read through."""

    stack: Stack
    batches: Batches
    database_url: str


@pytest.fixture(scope="module")
def module_namespace(k8s_api: k8s_client.ApiClient) -> Iterator[str]:
    name = unique_name("t-bad-")
    core = k8s_client.CoreV1Api(k8s_api)
    core.create_namespace(k8s_client.V1Namespace(metadata=k8s_client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def operated(
    cluster: ClusterEnv,
    k8s_api: k8s_client.ApiClient,
    module_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Cluster]:
    """API, one mock worker and the operator for the module's namespace and database."""
    run = unique_name("bad")
    async with temporary_database(cluster) as url:
        config = StackConfig(
            cluster=cluster,
            callback_topic=f"test.{run}.callbacks",
            completion_topic=f"test.{run}.completed",
            dead_letter_topic=f"test.{run}.callbacks.dlq",
            redis_prefix=f"t:{run}:",
            group=f"t-{run}",
            database_url=url,
            namespace=module_namespace,
            workers=1,
            worker_env={"CJ_WORKER_DEFAULT_PROVIDER": "mock"},
            operator_env={"CJ_OPERATOR_STATUS_PATCH_INTERVAL_SECONDS": "0.3"},
        )
        stack = Stack(config, tmp_path_factory.mktemp("operator"))
        try:
            stack.start()
            yield Cluster(stack, Batches(k8s_api, module_namespace), url)
        finally:
            stack.stop()
            await delete_topics(
                cluster.kafka_bootstrap_servers,
                [t for t in (*config.topics, config.dead_letter_topic) if t],
            )
            await delete_redis_keys(cluster, config.redis_prefix)


def config_map(
    batches: Batches, name: str, data: dict[str, str] | None = None, binary: bytes | None = None
) -> None:
    body = k8s_client.V1ConfigMap(
        metadata=k8s_client.V1ObjectMeta(name=name),
        data=data,
        binary_data={"essays.csv": base64.b64encode(binary).decode()} if binary else None,
    )
    batches.core.create_namespaced_config_map(batches.namespace, body)


async def stored(database_url: str, uid: str) -> tuple[Batch | None, int]:
    """The batch's row and how many of its essays are stored."""
    db = Database(database_url, pool_size=1)
    try:
        async with db.sessions() as session:
            batch = await session.get(Batch, uid)
            essays = (
                await session.execute(select(func.count()).where(Essay.batch_uid == uid))
            ).scalar_one()
            return batch, int(essays)
    finally:
        await db.dispose()


def jsonl(*items: dict[str, Any]) -> str:
    return "\n".join(json.dumps(i) for i in items) + "\n"


@dataclass(frozen=True)
class BadSource:
    name: str
    config_maps: dict[str, dict[str, str] | bytes]
    """ConfigMap name -> data (str values) or the bytes of a binaryData `essays.csv`."""
    says: tuple[str, ...]


BAD_SOURCES: list[BadSource] = [
    BadSource(
        "NaN in JSONL metadata",
        {
            "nan": {
                "essays.jsonl": jsonl({"id": "a", "text": "One."}, {"id": "b", "text": "Two."})
                + '{"id": "c", "text": "Three.", "metadata": {"score": NaN}}\n'
            }
        },
        ("configmap/nan key essays.jsonl line 3: metadata", "metadata.score: nan"),
    ),
    BadSource(
        "NUL in CSV text",
        {"nul": {"essays.csv": "id,text\na,One.\nb,Tw\x00o.\nc,Three.\n"}},
        ("configmap/nul key essays.csv line 3: text", "control character '\\x00'"),
    ),
    BadSource(
        "one id in two ConfigMaps",
        {
            "dup-1": {"essays.csv": "id,text\ns1,One.\ns2,Two.\n"},
            "dup-2": {"essays.jsonl": jsonl({"id": "s1", "text": "Again."})},
        },
        ("essay id 's1' appears more than once",),
    ),
    BadSource(
        "UTF-16 file in binaryData",
        {"utf16": "id,text\na,Eins.\nb,Zwei.\n".encode("utf-16")},
        ("configmap/utf16 key essays.csv: binaryData is not UTF-8 text",),
    ),
    BadSource(
        "empty JSONL text",
        {"empty": {"essays.jsonl": jsonl({"id": "a", "text": "One."}, {"id": "b", "text": ""})}},
        ("configmap/empty key essays.jsonl line 2: text: String should have at least 1",),
    ),
]


@pytest.mark.parametrize("case", BAD_SOURCES, ids=lambda c: c.name)
async def test_a_bad_essay_source_fails_its_batch_saying_where_and_stores_nothing(
    operated: Cluster, case: BadSource
) -> None:
    batches = operated.batches
    for name, content in case.config_maps.items():
        if isinstance(content, bytes):
            config_map(batches, name, binary=content)
        else:
            config_map(batches, name, content)
    batch = unique_name("bad-")
    created = batches.create(batch, spec_from(*case.config_maps))
    failed = batches.wait(batch, lambda o: phase(o) == "Failed", "Failed phase", operated.stack)
    loaded = condition(failed, "EssaysLoaded")
    assert (loaded["status"], loaded["reason"]) == ("False", "InvalidEssays")
    for needle in case.says:
        assert needle in loaded["message"], loaded["message"]
    row, essays = await stored(operated.database_url, created["metadata"]["uid"])
    assert row is not None and essays == 0
    assert (row.submitted, row.completed, row.failed) == (0, 0, 0)
    assert "InvalidEssays" in batches.events(batch)


async def test_a_spreadsheet_csv_with_a_byte_order_mark_completes(operated: Cluster) -> None:
    """Regression: the BOM made the header's first column "\\ufeffid" (no 'id' column)."""
    batches = operated.batches
    config_map(batches, "bom", {"essays.csv": "\ufeffid,text\r\na,One.\r\nb,Two two.\r\n"})
    created = batches.create("bom", spec_from("bom"))
    done = batches.wait("bom", lambda o: phase(o) == "Completed", "Completed", operated.stack)
    assert done["status"]["completed"] == 1
    _, essays = await stored(operated.database_url, created["metadata"]["uid"])
    assert essays == 2


@pytest.mark.parametrize("case", OPERATOR_REFUSED, ids=lambda c: c.name)
async def test_metadata_postgresql_cannot_store_is_refused_with_an_event(
    operated: Cluster, case: Case
) -> None:
    """Regression: a NUL in essay metadata passes the API server, and registering the batch
    failed in PostgreSQL on every retry, with no word to the user."""
    batches = operated.batches
    name = unique_name("meta-")
    spec = {**case.spec, "judge": JUDGE}
    created = batches.create(name, spec)

    def refused() -> list[str]:
        found = batches.core.list_namespaced_event(
            batches.namespace, field_selector=f"involvedObject.name={name}"
        )
        return [e.message or "" for e in found.items if "invalid spec" in (e.message or "")]

    seen = batches.wait(
        name, lambda _: bool(refused()), "an Event refusing the spec", operated.stack, within=30
    )
    message = refused()[0]
    assert case.message is not None
    assert "failed permanently" in message and case.message in message, message
    assert phase(seen) is None
    row, _ = await stored(operated.database_url, created["metadata"]["uid"])
    assert row is None


async def test_a_normal_batch_after_the_hostile_ones_completes(operated: Cluster) -> None:
    essays = [{"id": f"n{i}", "text": "Word " * (5 + 3 * i)} for i in range(3)]
    operated.batches.create(
        "normal",
        {
            "essays": essays,
            "assignment": PROMPT,
            "judge": JUDGE,
            "comparisons": {"targetPerEssay": 2},
        },
    )
    done = operated.batches.wait(
        "normal", lambda o: phase(o) == "Completed", "Completed", operated.stack
    )
    assert (done["status"]["completed"], done["status"]["failed"]) == (3, 0)
