"""`cjctl comparisons NAME`: every comparison of a batch, the evidence behind its ranking.

Read from the `<name>-comparisons` ConfigMap the operator writes when the batch finishes;
when there is none (the batch runs, or its comparisons did not fit in one ConfigMap:
condition ComparisonsWritten=False) from the operator's PostgreSQL, given `--database-url`
or DATABASE_URL (cj_operator.db.reads.comparison_rows).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from kubernetes import client

from cj_operator.cli import kube
from cj_operator.cli.app import (
    BatchName,
    Context,
    Kubeconfig,
    Namespace,
    OutputFormat,
    connect,
    emit,
    fail,
    namespace_of,
    note,
    print_table,
)
from cj_operator.cli.render import TERMINAL_PHASES, comparisons_table, comparisons_title
from cj_operator.evidence import (
    ComparisonRow,
    comparisons_config_map_name,
    comparisons_csv,
    comparisons_json,
    parse_comparisons_csv,
)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        envvar="DATABASE_URL",
        show_envvar=True,
        help="The operator's PostgreSQL (postgresql://...), read when the batch has no "
        "comparisons ConfigMap.",
    ),
]


class DatabaseReadError(RuntimeError):
    """PostgreSQL could not be read; the message names the server (never the password)."""


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


async def _from_database(url: str, uid: str) -> list[ComparisonRow] | None:
    from sqlalchemy.exc import SQLAlchemyError

    from cj_operator.db import reads
    from cj_operator.db.session import Database

    db = Database(url, pool_size=1)
    try:
        if await reads.batch_identity(db, uid) is None:
            return None
        return await reads.comparison_rows(db, uid)
    except (SQLAlchemyError, OSError) as e:
        detail = str(getattr(e, "orig", None) or e).splitlines()[0]
        raise DatabaseReadError(f"cannot read PostgreSQL at {_safe(url)}: {detail}") from None
    finally:
        await db.dispose()


def read_from_database(database_url: str, uid: str) -> list[ComparisonRow] | None:
    """The batch `uid`'s comparisons in PostgreSQL; None when the database does not know it.

    Raises ValueError for a URL that is not PostgreSQL, DatabaseReadError when the database
    cannot be read (unreachable, refused, not migrated). The database modules are imported
    here, not with the CLI: most commands (and every shell completion) never need them.
    """
    from cj_operator.settings import asyncpg_url

    return asyncio.run(_from_database(asyncpg_url(database_url), uid))


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), {})


def missing_message(name: str, status: dict[str, Any]) -> str:
    """Why there is no comparisons ConfigMap to read, and how to read PostgreSQL instead."""
    how = "set DATABASE_URL (or --database-url) to the operator's PostgreSQL to read them there"
    phase = status.get("phase", "Pending")
    written = _condition(status, "ComparisonsWritten")
    if written.get("status") == "False":
        return f"no comparisons ConfigMap ({written.get('reason')}): {written.get('message')}"
    if phase not in TERMINAL_PHASES:
        return (
            f"cjbatch {name} is {phase} ({status.get('progress', '0%')}); its comparisons "
            f"ConfigMap is written when it finishes: {how} now"
        )
    return f"configmap/{comparisons_config_map_name(name)} not found; {how}"


def load_comparisons(
    api: client.ApiClient, namespace: str, name: str, database_url: str | None
) -> tuple[dict[str, Any], list[ComparisonRow]]:
    """The CJBatch `name` and its comparisons: from `<name>-comparisons`, else from PostgreSQL
    when `database_url` is given (a note on stderr says why), else none.

    Raises the Exit of `fail` (code 1) naming the problem: no such batch, no ConfigMap and no
    database (with the reason: still running, ComparisonsTooLarge, ...), a database that
    cannot be read or does not know the batch, a ConfigMap that is not a comparisons CSV.
    """
    cm_name = comparisons_config_map_name(name)
    try:
        batch = kube.get_batch(api, namespace, name)
        cm = kube.find_config_map(api, namespace, cm_name)
    except kube.KubeError as e:
        raise fail(str(e)) from None
    status: dict[str, Any] = batch.get("status") or {}
    try:
        if cm is not None:
            text = (cm.data or {}).get("comparisons.csv", "")
            return batch, parse_comparisons_csv(text, f"configmap/{cm_name}")
        if not database_url:
            raise fail(missing_message(name, status))
        if _condition(status, "ComparisonsWritten").get("status") == "False":
            note(missing_message(name, status))
        found = read_from_database(database_url, batch["metadata"]["uid"])
    except (ValueError, DatabaseReadError) as e:
        raise fail(str(e)) from None
    if found is None:
        raise fail(
            f"the PostgreSQL at {_safe(database_url)} does not know cjbatch {name} "
            f"(uid {batch['metadata']['uid']}): is it the operator's database?"
        )
    return batch, found


def comparisons(
    name: BatchName,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="Output format.")
    ] = OutputFormat.table,
    database_url: DatabaseUrl = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Print every comparison of a batch: the evidence behind its ranking.

    Per comparison request: round, attempt, the essays in slot order (A, B), winner,
    confidence, judge (provider/model), cost, status or error code, and the justification.
    """
    api = connect(kubeconfig, context)
    _, rows = load_comparisons(
        api, namespace_of(namespace, kubeconfig, context), name, database_url
    )
    if output is OutputFormat.csv:
        emit(comparisons_csv(rows))
    elif output is OutputFormat.json:
        emit(comparisons_json(rows))
    else:
        print_table(comparisons_table(rows, comparisons_title(name, rows)))
