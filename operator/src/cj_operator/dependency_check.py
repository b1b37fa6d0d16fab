"""``cj-check``: check, from where it runs, the services a cj-operator release depends on.

The chart's `helm test` pod runs it in the operator image with the release's connection
settings (the same variables the operator and workers read); any shell or pod that has them
can run it too. Every dependency whose variable is set is checked once, all at the same time,
each within ``CJ_CHECK_TIMEOUT_SECONDS``:

- PostgreSQL (``DATABASE_URL``): connects and reads the revision alembic recorded, which must
  be the newest migration this image ships (head); no revision, or another one, fails;
- Redis (``REDIS_URL``): PING;
- Kafka (``KAFKA_BOOTSTRAP_SERVERS``): lists the topics; each of ``CJ_CHECK_KAFKA_TOPICS`` (a
  JSON list) must be among them;
- the provider API (``CJ_CHECK_PROVIDER_API_URL``, its base URL): ``GET /readyz`` must answer
  200 (the API's own check of its Redis and Kafka). No token is needed.

Output: one line per dependency on stdout, then a summary, e.g.::

    PostgreSQL    ok    postgresql:5432/cj: schema at head (0007)
    Redis         ok    redis:6379/0: PING answered
    Kafka         FAIL  kafka:9092: topic missing: huleedu.cj_assessment.completed.v1 (3 ...)
    provider API  ok    http://cj-provider-api.cj.svc:80/readyz: 200 {"ready":true,...}
    cj-check: 1 of 4 checks failed

Exit status 0 when every check passed, 1 when one failed, 2 when no dependency is configured
or a setting is invalid (the variable is named). Passwords in URLs are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis.asyncio as aioredis
from alembic.script import ScriptDirectory
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cj_operator.migrate import alembic_config
from cj_operator.settings import asyncpg_url
from cj_plumbing.kafka_admin import list_topics
from common_core import KAFKA_TOPIC_PATTERN

DETAIL_MAX_CHARS = 300
"""Longest detail printed for one check (an error's text, a response body)."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _env(name: str) -> Any:
    """Bind a field to exactly one environment variable name."""
    return AliasChoices(name)


class CheckSettings(BaseSettings):
    """What ``cj-check`` checks: each dependency is checked when its variable is set.

    Raises ``pydantic.ValidationError`` naming the variable when a value is invalid (without
    the value: a URL holds a password).
    """

    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=False, frozen=True, hide_input_in_errors=True
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=_env("DATABASE_URL"),
        description="The operator's PostgreSQL (postgresql+asyncpg://, postgresql:// also read).",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=_env("REDIS_URL"),
        description="The provider side's Redis (redis:// or rediss://).",
    )
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=_env("KAFKA_BOOTSTRAP_SERVERS"),
        description="Comma-separated host:port list of Kafka brokers.",
    )
    kafka_topics: list[str] = Field(
        default_factory=list,
        validation_alias=_env("CJ_CHECK_KAFKA_TOPICS"),
        description="Topics that must exist (JSON list), e.g. the callback and completion topics.",
    )
    provider_api_url: str | None = Field(
        default=None,
        validation_alias=_env("CJ_CHECK_PROVIDER_API_URL"),
        description="Base URL of the provider API; its /readyz is asked.",
    )
    timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        validation_alias=_env("CJ_CHECK_TIMEOUT_SECONDS"),
        description="Seconds each check may take (connecting included).",
    )

    @field_validator("database_url")
    @classmethod
    def _asyncpg(cls, value: str | None) -> str | None:
        return None if value is None else asyncpg_url(value)

    @field_validator("kafka_topics")
    @classmethod
    def _topic_names(cls, value: list[str]) -> list[str]:
        bad = [t for t in value if not re.fullmatch(KAFKA_TOPIC_PATTERN, t)]
        if bad:
            raise ValueError(f"not Kafka topic names: {bad}")
        return list(dict.fromkeys(value))


class CheckFailedError(Exception):
    """A dependency answered, but not as it should; the message says how."""


@dataclass(frozen=True)
class Outcome:
    """One dependency's result: its name, where it was asked (no credentials), pass or fail."""

    name: str
    target: str
    ok: bool
    detail: str

    def line(self) -> str:
        """``<name> ok|FAIL <target>: <detail>``, columns aligned."""
        return f"{self.name:<13} {'ok' if self.ok else 'FAIL':<5} {self.target}: {self.detail}"


def _short(text_: str) -> str:
    text_ = " ".join(text_.split())
    if len(text_) > DETAIL_MAX_CHARS:
        return text_[: DETAIL_MAX_CHARS - 3] + "..."
    return text_


def postgres_target(url: str) -> str:
    """``host:port/database`` of a PostgreSQL URL: no user, no password."""
    parsed = make_url(url)
    return f"{parsed.host}:{parsed.port or 5432}/{parsed.database}"


def redis_target(url: str) -> str:
    """``host:port/db`` of a Redis URL (``(TLS)`` for rediss://): no user, no password."""
    parts = urlsplit(url)
    database = parts.path.lstrip("/") or "0"
    tls = " (TLS)" if parts.scheme == "rediss" else ""
    return f"{parts.hostname}:{parts.port or 6379}/{database}{tls}"


def readyz_url(base_url: str) -> str:
    """``<base>/readyz`` with any user or password taken out of the URL."""
    parts = urlsplit(base_url.rstrip("/"))
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=netloc).geturl() + "/readyz"


def schema_head() -> str:
    """The newest migration revision shipped in this package (alembic's head)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the package ships no migrations")
    return head


async def check_postgresql(url: str, timeout_s: float) -> str:
    """Connect, read alembic's revision; returns the detail. Raises CheckFailedError when the
    schema is not at head, the driver's errors when PostgreSQL refuses or cannot be reached."""
    head = schema_head()
    engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": timeout_s})
    try:
        async with engine.connect() as conn:
            migrated = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
            revision = (
                await conn.scalar(text("SELECT version_num FROM alembic_version"))
                if migrated
                else None
            )
    finally:
        await engine.dispose()
    if revision is None:
        raise CheckFailedError(
            f"connected, but the schema is not migrated (no alembic revision; this operator "
            f"needs {head}): run cj-operator-migrate (chart: migrations.mode)"
        )
    if revision != head:
        raise CheckFailedError(
            f"connected, but the schema is at {revision}, this operator needs {head}: "
            "run cj-operator-migrate (chart: migrations.mode)"
        )
    return f"schema at head ({head})"


async def check_redis(url: str, timeout_s: float) -> str:
    """PING; returns the detail. Raises redis' errors (connection, authentication)."""
    client = aioredis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        if not await client.ping():
            raise CheckFailedError("PING not answered with PONG")
    finally:
        await client.aclose()
    return "PING answered"


async def check_kafka(bootstrap_servers: str, topics: Sequence[str], timeout_s: float) -> str:
    """List the topics; returns the detail. Raises CheckFailedError naming the missing topics,
    aiokafka's errors or TimeoutError when no broker answers."""
    present = await list_topics(bootstrap_servers, timeout_s)
    missing = [t for t in topics if t not in present]
    if missing:
        raise CheckFailedError(
            f"topic{'s' if len(missing) > 1 else ''} missing: {', '.join(missing)} "
            f"({len(present)} on the broker)"
        )
    if topics:
        return f"{len(present)} topics, including {', '.join(topics)}"
    return f"{len(present)} topics"


async def check_provider_api(url: str, timeout_s: float) -> str:
    """GET the /readyz URL; returns the detail. Raises CheckFailedError for any answer but
    200, httpx' errors when the API cannot be reached."""
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        response = await client.get(url)
    answer = f"{response.status_code} {response.text}"
    if response.status_code != 200:
        raise CheckFailedError(answer)
    return answer


async def run_check(
    name: str, target: str, check: Callable[[], Awaitable[str]], timeout_s: float
) -> Outcome:
    """Run one check within `timeout_s` seconds (plus 1 s for the client's own timeout to
    report first); every error becomes a failed Outcome, never an exception."""
    try:
        async with asyncio.timeout(timeout_s + 1.0):
            detail = await check()
    except CheckFailedError as exc:
        return Outcome(name, target, False, _short(str(exc)))
    except TimeoutError:
        return Outcome(name, target, False, f"no answer within {timeout_s:g} s")
    except Exception as exc:
        message = str(exc) or repr(exc)
        return Outcome(name, target, False, _short(f"{type(exc).__name__}: {message}"))
    return Outcome(name, target, True, _short(detail))


async def check_all(settings: CheckSettings) -> list[Outcome]:
    """Every configured check at once; outcomes in a fixed order (PostgreSQL, Redis, Kafka,
    provider API), those not configured left out."""
    t = settings.timeout_seconds
    checks: list[Awaitable[Outcome]] = []
    if (db := settings.database_url) is not None:
        checks.append(
            run_check("PostgreSQL", postgres_target(db), lambda: check_postgresql(db, t), t)
        )
    if (r := settings.redis_url) is not None:
        checks.append(run_check("Redis", redis_target(r), lambda: check_redis(r, t), t))
    if (k := settings.kafka_bootstrap_servers) is not None:
        topics = settings.kafka_topics
        checks.append(run_check("Kafka", k, lambda: check_kafka(k, topics, t), t))
    if (api := settings.provider_api_url) is not None:
        url = readyz_url(api)
        checks.append(run_check("provider API", url, lambda: check_provider_api(url, t), t))
    return list(await asyncio.gather(*checks))


def summary(outcomes: Sequence[Outcome]) -> tuple[str, int]:
    """The last line and the exit status of a run."""
    if not outcomes:
        return (
            "cj-check: nothing to check (set DATABASE_URL, REDIS_URL, KAFKA_BOOTSTRAP_SERVERS "
            "or CJ_CHECK_PROVIDER_API_URL)",
            EXIT_USAGE,
        )
    failed = sum(not o.ok for o in outcomes)
    if failed:
        return f"cj-check: {failed} of {len(outcomes)} checks failed", EXIT_FAILED
    return f"cj-check: all {len(outcomes)} checks passed", EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``cj-check`` (no arguments; settings from the environment)."""
    parser = argparse.ArgumentParser(
        prog="cj-check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    # The clients' own log lines repeat what the check's line says (aiokafka logs every
    # refused connection); only their failures are reported, once, by the check.
    logging.basicConfig(level=logging.CRITICAL)
    try:
        settings = CheckSettings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            print(f"cj-check: invalid setting {where}: {error['msg']}", file=sys.stderr)
        return EXIT_USAGE
    outcomes = asyncio.run(check_all(settings))
    for outcome in outcomes:
        print(outcome.line(), flush=True)
    line, status = summary(outcomes)
    print(line, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
