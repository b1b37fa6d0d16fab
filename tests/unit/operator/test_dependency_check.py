"""cj-check's parts that need no services: settings, redaction, outcomes, exit codes, and the
provider API check against a local HTTP server. tests/integration/operator/test_dependency_check.py
runs the command against the real PostgreSQL, Redis, Kafka and provider API."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import ValidationError

from cj_operator import dependency_check as dc

CONNECTION_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "CJ_CHECK_KAFKA_TOPICS",
    "CJ_CHECK_PROVIDER_API_URL",
    "CJ_CHECK_TIMEOUT_SECONDS",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CONNECTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_targets_never_show_credentials() -> None:
    url = "postgresql+asyncpg://cj:s3cret@db.example:6543/cj"
    assert dc.postgres_target(url) == "db.example:6543/cj"
    assert dc.postgres_target("postgresql+asyncpg://cj@db/cj") == "db:5432/cj"
    assert dc.redis_target("rediss://:s3cret@cache:6380/2") == "cache:6380/2 (TLS)"
    assert dc.redis_target("redis://cache") == "cache:6379/0"
    assert dc.readyz_url("http://user:s3cret@api.cj.svc:80/") == "http://api.cj.svc:80/readyz"
    assert dc.readyz_url("http://10.0.0.7:8080") == "http://10.0.0.7:8080/readyz"


def test_settings_read_the_variables_the_chart_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://cj:pw@db:5432/cj")
    monkeypatch.setenv("CJ_CHECK_KAFKA_TOPICS", '["a.b", "c", "a.b"]')
    monkeypatch.setenv("CJ_CHECK_TIMEOUT_SECONDS", "2.5")
    settings = dc.CheckSettings()
    assert settings.database_url == "postgresql+asyncpg://cj:pw@db:5432/cj"
    assert settings.kafka_topics == ["a.b", "c"]
    assert settings.timeout_seconds == 2.5
    assert settings.redis_url is settings.kafka_bootstrap_servers is None
    assert settings.provider_api_url is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CJ_CHECK_KAFKA_TOPICS", '["bad topic"]'),
        ("CJ_CHECK_TIMEOUT_SECONDS", "0"),
        ("DATABASE_URL", "mysql://cj:s3cret@db/cj"),
    ],
)
def test_an_invalid_setting_exits_2_naming_the_variable_not_its_value(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        dc.CheckSettings()
    assert dc.main([]) == dc.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"invalid setting {variable}" in err
    assert "s3cret" not in err


def test_nothing_configured_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert dc.main([]) == dc.EXIT_USAGE
    assert "nothing to check" in capsys.readouterr().out


async def _passes() -> str:
    return "fine"


async def _refuses() -> str:
    raise dc.CheckFailedError("schema at 0006, this operator needs 0007")


async def _breaks() -> str:
    raise ConnectionRefusedError(111, "Connection refused")


async def _hangs() -> str:
    await asyncio.sleep(60)
    return "never"


async def _rambles() -> str:
    raise dc.CheckFailedError("x" * 1000)


async def test_every_kind_of_failure_becomes_a_failed_outcome() -> None:
    outcomes = await asyncio.gather(
        dc.run_check("A", "a:1", _passes, 5),
        dc.run_check("B", "b:2", _refuses, 5),
        dc.run_check("C", "c:3", _breaks, 5),
        dc.run_check("D", "d:4", _hangs, 0.1),
        dc.run_check("E", "e:5", _rambles, 5),
    )
    assert [o.ok for o in outcomes] == [True, False, False, False, False]
    assert outcomes[0].detail == "fine"
    assert outcomes[1].detail == "schema at 0006, this operator needs 0007"
    assert outcomes[2].detail == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert outcomes[3].detail == "no answer within 0.1 s"
    assert len(outcomes[4].detail) == dc.DETAIL_MAX_CHARS and outcomes[4].detail.endswith("...")


def test_lines_and_summary() -> None:
    ok = dc.Outcome("Redis", "cache:6379/0", True, "PING answered")
    failed = dc.Outcome("provider API", "http://api/readyz", False, "503 not ready")
    assert ok.line() == "Redis         ok    cache:6379/0: PING answered"
    assert failed.line() == "provider API  FAIL  http://api/readyz: 503 not ready"
    assert dc.summary([ok, ok]) == ("cj-check: all 2 checks passed", dc.EXIT_OK)
    assert dc.summary([ok, failed]) == ("cj-check: 1 of 2 checks failed", dc.EXIT_FAILED)
    assert dc.summary([])[1] == dc.EXIT_USAGE


class _Readyz(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = type(self).status if self.path == "/readyz" else 404
        body = b'{"status": "ready"}' if code == 200 else b'{"redis": "unreachable"}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def api_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Readyz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    _Readyz.status = 200


async def test_the_provider_api_must_answer_200_on_readyz(api_url: str) -> None:
    assert await dc.check_provider_api(dc.readyz_url(api_url), 5) == '200 {"status": "ready"}'
    _Readyz.status = 503
    with pytest.raises(dc.CheckFailedError, match=r'^503 \{"redis": "unreachable"\}$'):
        await dc.check_provider_api(dc.readyz_url(api_url), 5)


def test_main_prints_one_line_per_dependency_and_exits_1_on_a_failure(
    api_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _Readyz.status = 503
    monkeypatch.setenv("CJ_CHECK_PROVIDER_API_URL", api_url)
    assert dc.main([]) == dc.EXIT_FAILED
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f'provider API  FAIL  {api_url}/readyz: 503 {{"redis": "unreachable"}}',
        "cj-check: 1 of 1 checks failed",
    ]
    _Readyz.status = 200
    assert dc.main([]) == dc.EXIT_OK
    assert capsys.readouterr().out.splitlines()[-1] == "cj-check: all 1 checks passed"
