"""cjctl with the operator on the real cluster: every comparison as evidence (from the
`<name>-comparisons` ConfigMap, or from PostgreSQL when they do not fit in one), and
suspend/resume/cancel of a running batch.

These tests are synchronous: `cjctl comparisons --database-url` runs its own event loop.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cj_operator.evidence import comparisons_config_map_name
from tests.integration.cli.conftest import Cjctl
from tests.support.cjbatches import Batches, condition, phase
from tests.support.stack import Stack

pytestmark = pytest.mark.usefixtures("cjbatch_crd")

PAIRS_SQL = """
SELECT p.round, p.attempt, a.essay_id AS essay_a_id, b.essay_id AS essay_b_id, p.winner,
       p.confidence, p.justification, p.provider, p.model, p.cost_usd, p.status, p.error_code,
       p.correlation_id::text AS correlation_id
FROM cj_comparison_pairs p
JOIN cj_batches t ON t.uid = p.batch_uid
JOIN cj_essays a ON a.batch_uid = p.batch_uid AND a.idx = p.essay_a_idx
JOIN cj_essays b ON b.batch_uid = p.batch_uid AND b.idx = p.essay_b_idx
WHERE t.name = $1 ORDER BY p.id
"""


def _stored_pairs(database_url: str, name: str) -> list[dict[str, Any]]:
    """The batch's comparison rows straight from PostgreSQL (not through the operator's code)."""

    async def query() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            return [dict(r) for r in await conn.fetch(PAIRS_SQL, name)]
        finally:
            await conn.close()

    return asyncio.run(query())


def _submit_args(tmp_path: Path, name: str, judge: str = "mock", per_essay: int = 5) -> list[str]:
    essays = tmp_path / f"{name}.csv"
    # Essays of growing length: the mock judge prefers the longer essay.
    rows = ["id,text"] + [f"s{i},{'Word ' * (10 + 7 * i)}" for i in range(6)]
    essays.write_text("\n".join(rows) + "\n", encoding="utf-8")
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Describe your town.\n", encoding="utf-8")
    return [
        "submit",
        str(essays),
        "--name",
        name,
        "--prompt-file",
        str(prompt),
        "--judge",
        judge,
        "--per-essay",
        str(per_essay),
    ]


def _finished(obj: dict[str, Any]) -> bool:
    return phase(obj) in ("Completed", "Failed", "Cancelled") and (
        condition(obj, "ComparisonsWritten").get("status") in ("True", "False")
    )


def test_every_comparison_from_the_config_map(
    cjctl: Cjctl, operator: Stack, batches: Batches, database_url: str, tmp_path: Path
) -> None:
    assert cjctl(*_submit_args(tmp_path, "town")).exit_code == 0
    watched = cjctl("watch", "town", "--interval", "0.5", "--timeout", "120")
    assert watched.exit_code == 0, watched.output + operator.logs()
    done = batches.wait("town", _finished, "comparisons written", operator)
    assert done["status"]["comparisonsConfigMap"] == "town-comparisons"
    written = condition(done, "ComparisonsWritten")
    assert (written["status"], written["reason"]) == ("True", "ComparisonsStored")

    as_csv = cjctl("comparisons", "town", "-o", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    printed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    stored = _stored_pairs(database_url, "town")
    assert len(printed) == len(stored) == done["status"]["submitted"] == 15
    for shown, row in zip(printed, stored, strict=True):
        assert shown["correlation_id"] == row["correlation_id"]
        assert (shown["essay_a_id"], shown["essay_b_id"]) == (row["essay_a_id"], row["essay_b_id"])
        assert shown["winner"] == row["winner"]
        winner_slot = {"essay_a": row["essay_a_id"], "essay_b": row["essay_b_id"]}
        assert shown["winner_id"] == winner_slot[row["winner"]]
        assert float(shown["confidence"]) == row["confidence"]
        assert shown["justification"] == row["justification"]
        assert (shown["provider"], shown["model"]) == (row["provider"], row["model"])
        assert shown["judge"] == f"mock/{row['model']}"  # spec: provider mock, model unset
        assert float(shown["cost_usd"]) == row["cost_usd"]
        assert (shown["status"], int(shown["round"])) == (row["status"], row["round"])
    # The essays of the pairs in slot order, and the ConfigMap holds the same CSV.
    cm: Any = batches.core.read_namespaced_config_map(
        comparisons_config_map_name("town"), batches.namespace
    )
    assert cm.data["comparisons.csv"] == as_csv.stdout
    assert [o.kind for o in cm.metadata.owner_references] == ["CJBatch"]

    as_json = cjctl("comparisons", "town", "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    assert [r["correlation_id"] for r in json.loads(as_json.stdout)] == [
        r["correlation_id"] for r in stored
    ]
    table = cjctl("comparisons", "town")
    assert table.exit_code == 0, table.output
    assert "town: 15 comparison requests, 15 with a winner, 0 failed" in table.stdout


@pytest.mark.parametrize(
    "operator_env", [{"CJ_OPERATOR_COMPARISONS_MAX_BYTES": "1000"}], indirect=True
)
def test_comparisons_too_large_for_a_config_map_are_read_from_postgresql(
    cjctl: Cjctl, operator: Stack, batches: Batches, database_url: str, tmp_path: Path
) -> None:
    assert cjctl(*_submit_args(tmp_path, "big")).exit_code == 0
    done = batches.wait("big", _finished, "comparisons decided", operator, within=120)
    assert done["status"]["phase"] == "Completed"
    assert done["status"].get("comparisonsConfigMap") is None
    assert done["status"]["resultsConfigMap"] == "big-results"
    written = condition(done, "ComparisonsWritten")
    assert (written["status"], written["reason"]) == ("False", "ComparisonsTooLarge")
    assert "The 15 comparisons are" in written["message"]
    assert "may hold 1,000" in written["message"]
    listed: Any = batches.core.list_namespaced_config_map(batches.namespace)
    assert "big-comparisons" not in [c.metadata.name for c in listed.items]

    refused = cjctl("comparisons", "big", "-o", "csv")
    assert refused.exit_code == 1
    assert "no comparisons ConfigMap (ComparisonsTooLarge): The 15 comparisons are" in (
        refused.stderr
    )
    assert refused.stdout == ""

    from_db = cjctl("comparisons", "big", "-o", "csv", "--database-url", database_url)
    assert from_db.exit_code == 0, from_db.output
    assert "note: no comparisons ConfigMap (ComparisonsTooLarge)" in from_db.stderr
    printed = list(csv.DictReader(io.StringIO(from_db.stdout)))
    stored = _stored_pairs(database_url, "big")
    assert [r["correlation_id"] for r in printed] == [r["correlation_id"] for r in stored]
    assert len(printed) == 15
    # The variable works as the flag does; a database without the batch is named as such.
    by_env = cjctl("comparisons", "big", "-o", "json", env={"DATABASE_URL": database_url})
    assert by_env.exit_code == 0, by_env.output
    assert len(json.loads(by_env.stdout)) == 15
    other_db = database_url.rsplit("/", 1)[0] + "/postgres"
    unknown = cjctl("comparisons", "big", "--database-url", other_db)
    assert unknown.exit_code == 1
    assert "does not know cjbatch big" in unknown.stderr or "cannot read PostgreSQL" in (
        unknown.stderr
    )
    assert ":cj@" not in unknown.stderr  # the password is never printed


def test_suspend_resume_and_cancel_a_running_batch(
    cjctl: Cjctl, operator: Stack, batches: Batches, database_url: str, tmp_path: Path
) -> None:
    args = _submit_args(tmp_path, "slow", judge="mock:mock?latency_ms=2500", per_essay=10)
    assert cjctl(*args).exit_code == 0
    running = batches.wait(
        "slow", lambda o: (o.get("status") or {}).get("submitted", 0) > 0, "submissions", operator
    )
    assert running["status"]["phase"] == "WaitingCallbacks"
    early = cjctl("comparisons", "slow")
    assert early.exit_code == 1
    assert "cjbatch slow is WaitingCallbacks" in early.stderr
    assert "its comparisons ConfigMap is written when it finishes" in early.stderr
    in_flight = cjctl("comparisons", "slow", "-o", "json", "--database-url", database_url)
    assert in_flight.exit_code == 0, in_flight.output
    statuses = {r["status"] for r in json.loads(in_flight.stdout)}
    assert statuses and statuses <= {"PENDING", "SUBMITTED", "SUCCEEDED"}

    assert cjctl("suspend", "slow").exit_code == 0
    batches.wait("slow", lambda o: phase(o) == "Suspended", "Suspended", operator)
    assert cjctl("resume", "slow").exit_code == 0
    batches.wait(
        "slow",
        lambda o: condition(o, "Suspended").get("status") == "False",
        "resumed",
        operator,
    )

    cancelled = cjctl("cancel", "slow")
    assert cancelled.exit_code == 0, cancelled.output
    done = batches.wait("slow", _finished, "cancelled", operator, within=60)
    assert done["status"]["phase"] == "Cancelled"
    succeeded = condition(done, "Succeeded")
    assert (succeeded["status"], succeeded["reason"]) == ("False", "Cancelled")
    assert "spec.cancel was set" in succeeded["message"]
    assert done["status"]["pending"] == 0
    assert done["status"]["resultsConfigMap"] == "slow-results"
    assert "Cancelled" in batches.events("slow")
    watched = cjctl("watch", "slow", "--timeout", "10")
    assert watched.exit_code == 1
    assert "slow: Cancelled." in watched.stdout

    evidence = cjctl("comparisons", "slow", "-o", "json")
    assert evidence.exit_code == 0, evidence.output
    rows = json.loads(evidence.stdout)
    assert len(rows) == done["status"]["submitted"]
    assert {r["status"] for r in rows} <= {"SUCCEEDED", "FAILED"}
    closed = [r for r in rows if r["status"] == "FAILED"]
    assert all(r["error_code"] == "CJ_BATCH_FINISHED" for r in closed)
    assert len(closed) == done["status"]["failed"]
