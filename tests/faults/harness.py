"""The fault harness (issue 12): a batch through the real local system, one fault injected at a
controlled moment, and the ledger that says whether anything was lost or counted twice.

Shared by the fault suite (`tests/faults/`, part of `make test`) and `python -m bench.faults`
(the same cases with a larger batch). The pieces:

- `ClusterServices`: stop, start and restart one service of the local cluster through
  `hack/devcluster stop|start NAME` (same ports and data), and bring everything back up.
- `FaultStack`: one provider API, two workers and the operator as local processes
  (`tests.support.stack.Stack`) with their own namespace, database, topics and Redis prefix,
  started once and reused by every case; test hooks on (`cj_plumbing.test_hooks`: a case arms
  a point, the first process to reach it holds there until the case kills it); the `mock` judge
  priced by a model manifest of the run, so duplicates cost something.
- `BatchUnderFault`: one CJBatch of `essays` essays; `until_midway` waits for a moment with
  work in flight, `fault()` records when a fault was injected and cleared and which
  comparisons were open then; `finish` waits until those are recorded (the recovery time) and
  the batch is terminal, then reads the `Ledger`.
- `Ledger`: the batch's row and pair rows (PostgreSQL) against every event of the batch on the
  callback and completion topics (Kafka); `problems()` lists every broken guarantee.

Duplicate cost: the cost the provider spent on a comparison judged twice is measured from
the events; whether the batch's cost must include it follows `DUPLICATE_COST_COUNTED`, and
what it leaves out is reported (`FaultReport.uncounted_cost_usd`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cj_operator.accounting import OVERDUE_ERROR_CODE
from cj_operator.crd import CRD_PATH
from cj_operator.db.models import Batch, ComparisonPair, PairStatus
from cj_operator.db.rounds import ABANDONED_ERROR_CODE, REFUSED_PREFIX
from cj_operator.migrate import upgrade
from cj_plumbing.test_hooks import HOOK_DIR_ENV, Point
from common_core import CJAssessmentCompletedV1, EventEnvelope, LLMComparisonResultV1
from common_core.metadata_keys import BATCH_ID
from tests.support.cjbatches import Batches, phase
from tests.support.devcluster import DEVCLUSTER, ClusterEnv
from tests.support.isolation import delete_redis_keys
from tests.support.kafka import collect_records, create_topic, delete_topics
from tests.support.kube import install_cjbatch_crd, kubectl
from tests.support.metrics import metric
from tests.support.processes import ManagedProcess, free_port
from tests.support.stack import Stack, StackConfig, isolated_stack_config

T = TypeVar("T")

DUPLICATE_COST_COUNTED = hasattr(Batch, "late_cost_usd")
"""Whether the operator adds the cost of a comparison judged again (a duplicate with an answer
of its own) to its batch. Without the batches' `late_cost_usd` column it does not:
`db/callbacks.py` counts a correlation id's first answer only. The cost-reservation change
adds that column and counts each extra judge call once (by correlation id and completed_at);
then the ledger expects the batch's cost to include every extra publish and no re-read."""

OPEN = (PairStatus.PENDING, PairStatus.SUBMITTED)
MOCK_PRICE_USD_PER_MTOK = (1.0, 5.0)
"""(input, output) list price the run's manifest gives the `mock` judge, so events cost money."""

PEERING_CRDS = CRD_PATH.parent / "kopf-peering.yaml"


@dataclass(frozen=True)
class FaultSettings:
    """Size and speed of the batches and processes of one run.

    The defaults keep a batch near 10 s on two cores: 60 essays x 4 comparisons = 120
    comparisons in 4 rounds of 30, judged 8 at a time (2 workers x 4) at 400 ms each.
    """

    essays: int = 60
    per_essay: int = 4
    mock_latency_ms: int = 400
    worker_concurrency: int = 4
    visibility_timeout_s: float = 3.0
    kafka_outage_s: float = 20.0
    peering_lifetime_s: int = 8


# --- waiting ------------------------------------------------------------------------------


async def poll(
    check: Callable[[], Awaitable[T | None]], within: float, what: str, every: float = 0.2
) -> T:
    """Await `check()` every `every` s until it returns something other than None (or False);
    returns it. An exception from `check` counts as "not yet" (a service may be restarting)
    and is named in the AssertionError raised after `within` s."""
    deadline = time.monotonic() + within
    last_error: BaseException | None = None
    while True:
        try:
            got = await check()
            if got is not None and got is not False:
                return got
        except Exception as exc:  # a restarting service: try again
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {within:.0f} s (last error: {last_error!r})")
        await asyncio.sleep(every)


# --- the cluster's services -----------------------------------------------------------------


class ClusterServices:
    """One service of the local cluster at a time, through `hack/devcluster` (its
    CJ_DEVCLUSTER_DIR: the same cluster the tests use)."""

    NAMES = ("postgres", "redis", "kafka", "etcd", "kube-apiserver")

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [str(DEVCLUSTER), *args], capture_output=True, text=True, check=False, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"hack/devcluster {' '.join(args)} failed:\n{done.stderr}")

    async def stop(self, name: str) -> None:
        """Stop `name` (SIGTERM to its process group, SIGKILL after 15 s)."""
        await asyncio.to_thread(self._run, "stop", name)

    async def start(self, name: str) -> None:
        """Start `name` unless it runs, on its ports and data; returns once it is ready."""
        await asyncio.to_thread(self._run, "start", name)

    def ensure_up(self) -> None:
        """Start whatever service is not running (a no-op when all are)."""
        status = subprocess.run(
            [str(DEVCLUSTER), "status"], capture_output=True, text=True, check=False, timeout=60
        )
        if status.returncode != 0:
            self._run("up")

    @contextlib.asynccontextmanager
    async def stopped(self, name: str) -> AsyncIterator[None]:
        """`name` stopped for the block; started again however the block ends."""
        await self.stop(name)
        try:
            yield
        finally:
            await self.start(name)


# --- the processes --------------------------------------------------------------------------


def _mock_manifest(path: Path) -> Path:
    """Write the run's model manifest (the priced `mock` judge) at `path`, creating its
    directory; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    inp, out = MOCK_PRICE_USD_PER_MTOK
    path.write_text(
        json.dumps(
            [
                {
                    "provider": "mock",
                    "model": "mock",
                    "input_usd_per_mtok": inp,
                    "output_usd_per_mtok": out,
                }
            ]
        ),
        encoding="utf-8",
    )
    return path


class FaultStack:
    """The system's processes for a run of fault cases (module docstring).

    `cleanup` true (tests): `close()` deletes the run's database, topics, Redis keys,
    namespace and ClusterKopfPeerings; false (the benchmark): they are left for inspection.
    """

    def __init__(
        self, cluster: ClusterEnv, config: StackConfig, work_dir: Path, settings: FaultSettings
    ) -> None:
        self.cluster = cluster
        self.config = config
        self.settings = settings
        self.work_dir = work_dir
        self.hook_dir = work_dir / "hooks"
        self.hook_dir.mkdir(parents=True, exist_ok=True)
        self.stack = Stack(config, work_dir / "logs")
        self.services = ClusterServices()
        self.k8s = k8s_config.new_client_from_config(config_file=cluster.kubeconfig)
        assert config.namespace and config.database_url
        self.batches = Batches(self.k8s, config.namespace)
        self.db: AsyncEngine = create_async_engine(config.database_url, pool_pre_ping=True)
        self.peers: list[ManagedProcess] = []
        self.peerings: list[str] = []
        self._batches = 0

    @classmethod
    async def create(
        cls, cluster: ClusterEnv, work_dir: Path, settings: FaultSettings, run_id: str
    ) -> FaultStack:
        """A run of its own: namespace `cj-faults-<run_id>`, database, topics, Redis prefix."""
        install_cjbatch_crd(cluster)
        base = await isolated_stack_config(cluster, "faults", run_id)
        hooks = {HOOK_DIR_ENV: str(work_dir / "hooks")}
        config = replace(
            base,
            workers=2,
            create_topics=False,
            provider_env={
                **hooks,
                "CJ_MODEL_MANIFEST_PATH": str(_mock_manifest(work_dir / "manifest.json")),
                "CJ_WORKER_MOCK_LATENCY_MS": str(settings.mock_latency_ms),
            },
            worker_env={
                "CJ_WORKER_CONCURRENCY": str(settings.worker_concurrency),
                "CJ_WORKER_VISIBILITY_TIMEOUT_SECONDS": str(settings.visibility_timeout_s),
                "CJ_WORKER_RECLAIM_INTERVAL_SECONDS": "0.5",
                "CJ_WORKER_SHUTDOWN_DEADLINE_SECONDS": "5",
            },
            # Migrated once here: a restarted operator (several per run) skips alembic.
            operator_env={**hooks, "CJ_OPERATOR_MIGRATE_ON_START": "false"},
        )
        assert config.database_url is not None
        await upgrade(config.database_url)
        bootstrap = cluster.kafka_bootstrap_servers
        await create_topic(bootstrap, config.callback_topic, partitions=3)
        for topic in (config.completion_topic, config.dead_letter_topic):
            assert topic is not None
            await create_topic(bootstrap, topic)
        return cls(cluster, config, work_dir, settings)

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the API, both workers and the operator at once, then wait for all of them."""
        self.stack.start_api(wait=False)
        for _ in range(self.config.workers):
            self.stack.start_worker(wait=None)
        self.stack.start_operator(wait=False)
        await asyncio.gather(
            asyncio.to_thread(self.stack.wait_api),
            *(asyncio.to_thread(self._wait_worker, w) for w in self.stack.workers),
            asyncio.to_thread(self.stack.wait_operator),
        )

    @staticmethod
    def _wait_worker(worker: ManagedProcess) -> None:
        worker.wait_http_ok(f"{worker.url}/healthz", timeout=90)

    async def ensure_running(self, processes: bool = True) -> None:
        """Every cluster service up, the operator replicas of `start_peers` stopped, and (with
        `processes`) every process of the stack running: those a case killed are started
        again, on the same ports."""
        await asyncio.to_thread(self.services.ensure_up)
        await self.stop_peers()
        self._disarm()
        if not processes:
            return
        waits: list[Awaitable[None]] = []
        api = self.stack.api
        if api is not None and not api.alive():
            api.start()
            waits.append(asyncio.to_thread(self.stack.wait_api))
        for worker in self.stack.workers:
            if not worker.alive():
                worker.start()
                waits.append(asyncio.to_thread(self._wait_worker, worker))
        if self.stack.operator is None or not self.stack.operator.alive():
            self.stack.start_operator(wait=False)
            waits.append(asyncio.to_thread(self.stack.wait_operator))
        await asyncio.gather(*waits)

    def _disarm(self) -> None:
        """Remove every armed point, and kill a process still holding at one (a case that
        failed before killing it): it would hold forever."""
        for path in self.hook_dir.iterdir():
            if path.name.endswith(".taken"):
                pid = json.loads(path.read_text(encoding="utf-8"))["pid"]
                for proc in self.stack.processes():
                    if proc.alive() and proc.pid == pid:
                        proc.kill()
            path.unlink()

    async def close(self, cleanup: bool) -> None:
        """Stop every process; with `cleanup`, delete what the run created."""
        await self.stop_peers()
        self.stack.stop()
        await self.db.dispose()
        if not cleanup:
            return
        config = self.config
        made = (config.callback_topic, config.completion_topic, config.dead_letter_topic)
        topics = [t for t in made if t]
        with contextlib.suppress(Exception):
            await delete_topics(self.cluster.kafka_bootstrap_servers, topics)
        await delete_redis_keys(self.cluster, config.redis_prefix)
        assert config.database_url and config.namespace
        server, name = config.database_url.rsplit("/", 1)
        admin = await asyncpg.connect(server.replace("+asyncpg", "") + "/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        kubectl(self.cluster, "delete", "namespace", config.namespace, "--wait=false")
        for peering in self.peerings:
            k8s_client.CustomObjectsApi(self.k8s).delete_cluster_custom_object(
                "kopf.dev", "v1", "clusterkopfpeerings", peering
            )
        shutil.rmtree(self.hook_dir, ignore_errors=True)

    # --- test hooks ---------------------------------------------------------------------------

    def arm(self, point: Point) -> None:
        """Arm `point`: the next process to reach it holds there (cj_plumbing.test_hooks)."""
        (self.hook_dir / f"{point.value}.taken").unlink(missing_ok=True)
        (self.hook_dir / point.value).touch()

    async def held(self, point: Point, within: float = 60.0) -> dict[str, Any]:
        """Wait until a process holds at `point`; returns its `.taken` record (pid, context)."""
        taken = self.hook_dir / f"{point.value}.taken"

        async def check() -> dict[str, Any] | None:
            if not taken.exists():
                return None
            record: dict[str, Any] = json.loads(taken.read_text(encoding="utf-8"))
            return record

        return await poll(check, within, f"process holding at {point.value}")

    def process_with_pid(self, pid: int) -> ManagedProcess:
        """The stack's process (or standby peer) with this pid."""
        for proc in [*self.stack.processes(), *self.peers]:
            if proc.alive() and proc.pid == pid:
                return proc
        raise AssertionError(f"no process of the stack has pid {pid}")

    # --- operator replicas with peering ----------------------------------------------------------

    async def start_peers(self, priorities: tuple[int, ...]) -> list[ManagedProcess]:
        """Stop the standalone operator and start one replica per priority, peering through a
        new ClusterKopfPeering (lifetime `settings.peering_lifetime_s`); returns them in the
        order given, once each answers its liveness probe."""
        if self.stack.operator is not None:
            self.stack.operator.stop()
        peering = f"cj-faults-{uuid.uuid4().hex[:8]}"
        _create_peering(self.cluster, self.k8s, peering)
        self.peerings.append(peering)
        waits = []
        for i, priority in enumerate(priorities):
            metrics_port, health_port = free_port(), free_port()
            env = {
                **self.config.operator_environ(self.stack.api_url, metrics_port),
                "POD_ID": f"replica-{i}",
                "CJ_OPERATOR_PEERING_NAME": peering,
                "CJ_OPERATOR_PEERING_PRIORITY": str(priority),
                "CJ_OPERATOR_PEERING_LIFETIME_SECONDS": str(self.settings.peering_lifetime_s),
            }
            proc = ManagedProcess(
                f"replica-{i}",
                self.config.operator_argv(health_port, standalone=False),
                env,
                self.stack.log_dir,
                url=f"http://127.0.0.1:{metrics_port}",
            ).start()
            self.peers.append(proc)
            url = f"http://127.0.0.1:{health_port}/healthz"
            waits.append(asyncio.to_thread(proc.wait_http_ok, url, 90))
        await asyncio.gather(*waits)
        return list(self.peers)

    async def stop_peers(self) -> None:
        """SIGKILL every replica started by `start_peers` (a graceful kopf shutdown takes
        seconds the suite need not spend; the case is over)."""
        for proc in self.peers:
            proc.kill()
        self.peers.clear()

    # --- batches ----------------------------------------------------------------------------

    async def batch(self, label: str) -> BatchUnderFault:
        """Create CJBatch `<label>-<n>` (the run's n-th batch; settings' size, `mock` judge)
        and wait until it is stored."""
        s = self.settings
        self._batches += 1
        name = f"{label}-{self._batches}"
        spec = {
            "assignment": {"prompt": "Should every school day start an hour later?"},
            "judge": {"provider": "mock"},
            "comparisons": {"targetPerEssay": s.per_essay},
            "essays": [{"id": f"e{i:03d}", "text": essay_text(i)} for i in range(s.essays)],
        }
        created = self.batches.create(name, spec)
        uid = created["metadata"]["uid"]
        batch = BatchUnderFault(self, name, uid, time.monotonic())
        batch.budget = await poll(batch.stored_budget, 60, f"batch {name} stored")
        return batch


WORDS = (
    "school",
    "sleep",
    "students",
    "morning",
    "learning",
    "teachers",
    "evidence",
    "because",
    "however",
    "therefore",
    "although",
    "community",
    "research",
    "attention",
    "health",
    "grades",
    "buses",
    "sports",
    "families",
    "example",
)


def essay_text(index: int) -> str:
    """Essay `index`: its own length (the mock judge prefers the longer essay) and words."""
    words = [WORDS[(index * 7 + k) % len(WORDS)] for k in range(40 + 3 * index)]
    return " ".join(words).capitalize() + "."


def _create_peering(cluster: ClusterEnv, api: k8s_client.ApiClient, name: str) -> None:
    kubectl(
        cluster,
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=cj-operator-tests",
        "-f",
        str(PEERING_CRDS),
    )
    custom = k8s_client.CustomObjectsApi(api)
    body = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}}
    deadline = time.monotonic() + 30
    while True:
        try:
            custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", body)
            return
        except k8s_client.ApiException as exc:  # a new CRD may take a moment to serve
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --- one batch and its fault ---------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """A batch's comparisons (ids, closed or open) and its state, at one moment."""

    closed: frozenset[int]
    open: frozenset[int]
    state: str

    @property
    def newest(self) -> int:
        """The highest comparison id so far (0 before the first round)."""
        return max(self.closed | self.open, default=0)


@dataclass
class Fault:
    """When a fault was injected and cleared, and the comparisons open at injection."""

    description: str
    injected_at: float
    open_at_injection: frozenset[int]
    state_at_injection: str
    newest_at_injection: int
    """The highest comparison id then: a higher one was asked after the injection."""
    cleared_at: float | None = None
    context: dict[str, Any] = field(default_factory=dict)

    def cleared(self) -> None:
        """The faulty component is back (restarted, or replaced by another)."""
        self.cleared_at = time.monotonic()


@dataclass
class BatchUnderFault:
    """One CJBatch of a `FaultStack` (module docstring)."""

    stack: FaultStack
    name: str
    uid: str
    created_at: float
    budget: int = 0

    async def stored_budget(self) -> int | None:
        """The batch's budget once the operator stored it with its essays, else None."""
        async with self.stack.db.connect() as conn:
            row = (
                await conn.execute(
                    select(Batch.budget, Batch.essays_count).where(Batch.uid == self.uid)
                )
            ).one_or_none()
        return int(row.budget) if row is not None and row.essays_count > 0 else None

    async def progress(self) -> Progress:
        """The batch's comparisons and state, from PostgreSQL."""
        async with self.stack.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(ComparisonPair.id, ComparisonPair.status).where(
                        ComparisonPair.batch_uid == self.uid
                    )
                )
            ).all()
            state = (
                await conn.execute(select(Batch.state).where(Batch.uid == self.uid))
            ).scalar_one()
        return Progress(
            closed=frozenset(r.id for r in rows if r.status not in OPEN),
            open=frozenset(r.id for r in rows if r.status in OPEN),
            state=str(state.value),
        )

    async def until_midway(self, fraction: float = 0.35, min_open: int = 4) -> None:
        """Wait until `fraction` of the budget is recorded while at least `min_open`
        comparisons are in flight (a fault then lands mid-round)."""

        async def check() -> bool:
            now = await self.progress()
            return len(now.closed) >= fraction * self.budget and len(now.open) >= min_open

        await poll(check, 120, f"{self.name} {fraction:.0%} recorded with work in flight", 0.05)

    @contextlib.asynccontextmanager
    async def fault(self, description: str) -> AsyncIterator[Fault]:
        """Record the injection (now), the open comparisons and the state; the block injects
        and calls `cleared()` when the component is back (default: at the block's end)."""
        now = await self.progress()
        fault = Fault(description, time.monotonic(), now.open, now.state, now.newest)
        yield fault
        if fault.cleared_at is None:
            fault.cleared()

    async def finish(self, fault: Fault, within: float = 240.0) -> FaultReport:
        """Wait for the recovery (every comparison open at the injection recorded, and one
        asked after it recorded too, unless the batch asked for none) and for the batch to be
        terminal; returns the report with its ledger (nothing asserted here)."""
        assert fault.state_at_injection not in {"COMPLETED", "FAILED", "CANCELLED"}, (
            f"the batch finished before the fault ({fault.state_at_injection}): make it longer"
        )
        marks: dict[str, float] = {}

        async def recovered() -> float | None:
            now = await self.progress()
            at = time.monotonic()
            if not now.open & fault.open_at_injection:
                marks.setdefault("in flight recorded", at)
            if any(i > fault.newest_at_injection for i in now.closed) or (
                now.state in {"COMPLETED", "FAILED", "CANCELLED"}
            ):
                marks.setdefault("new work recorded", at)
            return max(marks.values()) if len(marks) == 2 else None

        what = f"recovery of {self.name} ({fault.description})"
        recovered_at = await poll(recovered, within, what)
        obj = await self.stack.batches.wait_terminal(self.name, self.stack.stack, within)
        finished_at = time.monotonic()
        ledger = await read_ledger(self.stack, self.uid, phase(obj) or "")
        assert fault.cleared_at is not None
        return FaultReport(
            fault=fault.description,
            essays=self.stack.settings.essays,
            ledger=ledger,
            outage_s=fault.cleared_at - fault.injected_at,
            recovery_s=recovered_at - fault.injected_at,
            batch_s=finished_at - self.created_at,
            context=fault.context,
        )


# --- the ledger ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSeen:
    """One record of the batch on the callback topic."""

    correlation_id: str
    event_id: str
    success: bool
    cost_usd: float


@dataclass(frozen=True)
class PairRow:
    """One comparison row of the batch."""

    correlation_id: str
    status: PairStatus
    error_code: str | None
    error_message: str | None
    cost_usd: float


@dataclass(frozen=True)
class Ledger:
    """What the system recorded for one batch, and what went over Kafka for it."""

    phase: str
    submitted: int
    completed: int
    failed: int
    cost_usd: float
    rows: tuple[PairRow, ...]
    events: tuple[EventSeen, ...]
    completion_event_ids: frozenset[str]
    completion_records: int
    completion_completed: tuple[int, ...]

    def _first_events(self) -> dict[str, EventSeen]:
        first: dict[str, EventSeen] = {}
        for event in self.events:  # in offset order per partition; a key has one partition
            first.setdefault(event.correlation_id, event)
        return first

    @property
    def publishes(self) -> dict[str, EventSeen]:
        """Distinct published events (by event id): a re-read record is one publish."""
        return {e.event_id: e for e in self.events}

    @property
    def duplicates_seen(self) -> int:
        """Published events beyond the first of their correlation id (a comparison judged and
        published again: after a reclaim, or sent twice)."""
        return len(self.publishes) - len({e.correlation_id for e in self.events})

    @property
    def duplicate_cost_usd(self) -> float:
        """What the duplicates cost the provider (USD, from their events)."""
        first_ids = {e.event_id for e in self._first_events().values()}
        return sum(e.cost_usd for i, e in self.publishes.items() if i not in first_ids)

    @property
    def lost(self) -> int:
        """Comparisons the system accepted but never answered (no event: still open, or closed
        by the operator as overdue or abandoned), plus answers on Kafka never recorded."""
        answered = {e.correlation_id for e in self.events}
        unanswered = sum(
            1
            for r in self.rows
            if r.correlation_id not in answered
            and not (r.error_message or "").startswith(REFUSED_PREFIX)
        )
        open_ids = {r.correlation_id for r in self.rows if r.status in OPEN}
        unrecorded = len(answered & open_ids)
        return unanswered + unrecorded

    @property
    def double_counted(self) -> int:
        """Counts above what the rows hold: completed beyond the succeeded rows, failed beyond
        the failed rows."""
        succeeded = sum(r.status == PairStatus.SUCCEEDED for r in self.rows)
        failed = sum(r.status == PairStatus.FAILED for r in self.rows)
        return max(0, self.completed - succeeded) + max(0, self.failed - failed)

    def problems(self) -> list[str]:
        """Every broken guarantee, in words (empty when the batch is sound)."""
        out: list[str] = []
        rows = {r.correlation_id: r for r in self.rows}
        succeeded = sum(r.status == PairStatus.SUCCEEDED for r in self.rows)
        failed = sum(r.status == PairStatus.FAILED for r in self.rows)
        if self.phase != "Completed":
            out.append(f"phase {self.phase}, not Completed")
        if self.completed + self.failed != self.submitted:
            out.append(
                f"completed {self.completed} + failed {self.failed} != submitted {self.submitted}"
            )
        if (self.submitted, self.completed, self.failed) != (len(rows), succeeded, failed):
            out.append(
                f"counters (submitted, completed, failed) = "
                f"{(self.submitted, self.completed, self.failed)} but the rows hold "
                f"{(len(rows), succeeded, failed)}"
            )
        still_open = [c for c, r in rows.items() if r.status in OPEN]
        if still_open:
            out.append(f"{len(still_open)} comparisons still open, e.g. {still_open[0]}")
        given_up = [
            c for c, r in rows.items() if r.error_code in {OVERDUE_ERROR_CODE, ABANDONED_ERROR_CODE}
        ]
        if given_up:
            out.append(f"{len(given_up)} comparisons closed without an answer, e.g. {given_up[0]}")
        if self.lost:
            out.append(f"{self.lost} comparisons lost (accepted, never answered)")
        strangers = {e.correlation_id for e in self.events} - set(rows)
        if strangers:
            out.append(f"{len(strangers)} events name no comparison of the batch")
        for cid, event in self._first_events().items():
            row = rows.get(cid)
            want = PairStatus.SUCCEEDED if event.success else PairStatus.FAILED
            if row is not None and row.status != want:
                out.append(f"{cid}: first event {want.value}, row {row.status.value}")
                break
        recorded_cost = sum(r.cost_usd for r in self.rows)
        expected = recorded_cost + (self.duplicate_cost_usd if DUPLICATE_COST_COUNTED else 0.0)
        if not math.isclose(self.cost_usd, expected, rel_tol=1e-9, abs_tol=1e-12):
            out.append(f"batch cost {self.cost_usd!r} USD, expected {expected!r}")
        if len(self.completion_event_ids) != 1:
            out.append(f"{len(self.completion_event_ids)} completion event ids, not 1")
        if any(c != self.completed for c in self.completion_completed):
            out.append(f"completion events say completed {self.completion_completed}")
        return out


async def read_ledger(stack: FaultStack, uid: str, phase_name: str) -> Ledger:
    """The batch's counters and rows, its callback events and its completion events."""
    async with stack.db.connect() as conn:
        batch = (await conn.execute(select(Batch).where(Batch.uid == uid))).one()
        rows = (
            await conn.execute(
                select(
                    ComparisonPair.correlation_id,
                    ComparisonPair.status,
                    ComparisonPair.error_code,
                    ComparisonPair.error_message,
                    ComparisonPair.cost_usd,
                ).where(ComparisonPair.batch_uid == uid)
            )
        ).all()
    bootstrap = stack.cluster.kafka_bootstrap_servers
    events: list[EventSeen] = []
    for record in await collect_records(bootstrap, stack.config.callback_topic):
        envelope = EventEnvelope[LLMComparisonResultV1].model_validate_json(record.value)
        result = envelope.data
        if result.request_metadata.get(BATCH_ID) == uid:
            events.append(
                EventSeen(
                    str(result.correlation_id),
                    str(envelope.event_id),
                    result.is_success,
                    result.cost_estimate,
                )
            )
    assert stack.config.completion_topic is not None
    completions = [
        EventEnvelope[CJAssessmentCompletedV1].model_validate_json(r.value)
        for r in await collect_records(bootstrap, stack.config.completion_topic, idle=1.0)
    ]
    mine = [c for c in completions if c.data.batch_id == uid]
    return Ledger(
        phase=phase_name,
        submitted=batch.submitted,
        completed=batch.completed,
        failed=batch.failed,
        cost_usd=batch.cost_usd,
        rows=tuple(
            PairRow(str(r.correlation_id), r.status, r.error_code, r.error_message, r.cost_usd)
            for r in rows
        ),
        events=tuple(events),
        completion_event_ids=frozenset(str(c.event_id) for c in mine),
        completion_records=len(mine),
        completion_completed=tuple(c.data.completed for c in mine),
    )


# --- reports --------------------------------------------------------------------------------------


@dataclass
class FaultReport:
    """One case's outcome: timings (seconds) and the ledger."""

    fault: str
    essays: int
    ledger: Ledger
    outage_s: float
    recovery_s: float
    batch_s: float
    context: dict[str, Any] = field(default_factory=dict)
    extra_problems: list[str] = field(default_factory=list)
    """What the case itself checks beyond the ledger (e.g. that its fault really happened)."""

    def problems(self) -> list[str]:
        """The ledger's problems and the case's own."""
        return [*self.ledger.problems(), *self.extra_problems]

    def line(self) -> str:
        """One line for a test's output."""
        ledger = self.ledger
        return (
            f"{self.fault}: {self.essays} essays, {ledger.submitted} comparisons, outage "
            f"{self.outage_s:.1f} s, recovered {self.recovery_s:.1f} s after the fault, batch "
            f"{self.batch_s:.1f} s; lost {ledger.lost}, double-counted {ledger.double_counted}, "
            f"duplicates seen {ledger.duplicates_seen} (uncounted cost "
            f"{self.uncounted_cost_usd:.6f} USD), completion events "
            f"{len(ledger.completion_event_ids)} id / {ledger.completion_records} records"
        )

    @property
    def uncounted_cost_usd(self) -> float:
        """Cost spent on duplicates that the batch's cost does not include."""
        recorded = sum(r.cost_usd for r in self.ledger.rows)
        return max(0.0, recorded + self.ledger.duplicate_cost_usd - self.ledger.cost_usd)


TABLE_HEADER = (
    "| fault | comparisons | outage (s) | recovery (s) | lost | double-counted "
    "| duplicates seen | duplicate cost not counted (USD) | completion events |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def table_row(report: FaultReport) -> str:
    """The report as a row of `TABLE_HEADER`'s table."""
    ledger = report.ledger
    return (
        f"| {report.fault} | {ledger.submitted} | {report.outage_s:.1f} | "
        f"{report.recovery_s:.1f} | {ledger.lost} | {ledger.double_counted} | "
        f"{ledger.duplicates_seen} | {report.uncounted_cost_usd:.6f} | "
        f"{len(ledger.completion_event_ids)} |"
    )


def markdown_table(reports: list[FaultReport]) -> str:
    """The reports as a markdown table."""
    return "\n".join([TABLE_HEADER, *(table_row(r) for r in reports)])


REPORTS: list[FaultReport] = []
"""Every report `check` saw in this process (the suite's terminal summary prints them)."""


def check(report: FaultReport, stack: FaultStack) -> None:
    """Print the report's line, keep it for the summary, and fail with every problem (and the
    processes' log tails) when the batch is not sound."""
    REPORTS.append(report)
    print(report.line(), flush=True)
    problems = report.problems()
    assert not problems, "\n".join([report.line(), *problems, stack.stack.logs(30)])


# --- small helpers the cases share --------------------------------------------------------------


def kill(proc: ManagedProcess) -> None:
    """SIGKILL a process of the stack (its whole process group), as a crash would."""
    proc.kill()


def operator_active(proc: ManagedProcess) -> bool:
    """Whether an operator replica says it is the active one (`cj_operator_active`)."""
    try:
        return metric(proc.url, "cj_operator_active") == 1
    except httpx.HTTPError:
        return False
