"""The anthropic and openai judges through the official SDKs against local HTTP servers
that speak each vendor's wire format: success, 429 + Retry-After, 500, timeout, malformed
JSON and refusal."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cj_workers.manifest import ModelManifest
from cj_workers.metrics import WorkerMetrics
from cj_workers.providers.anthropic_judge import AnthropicJudge
from cj_workers.providers.base import Judge, JudgeCall, JudgeError
from cj_workers.providers.openai_judge import OpenAIJudge
from cj_workers.providers.prompt import COMPARISON_TOOL_NAME
from cj_workers.ratelimit import Reservation
from cj_workers.settings import WorkerSettings
from cj_workers.worker.processor import RequestProcessor
from common_core import (
    EssayComparisonWinner,
    LLMComparisonRequest,
    LLMConfigOverrides,
    LLMErrorCode,
    LLMProviderType,
    QueuedRequest,
)


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class VendorServer:
    """A local HTTP server answering each POST with the next scripted Reply."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                outer.requests.append((self.path, json.loads(self.rfile.read(length))))
                reply = outer.replies.pop(0)
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
                data = body.encode() if isinstance(body, str) else body
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[VendorServer]:
    s = VendorServer()
    yield s
    s.close()


def anthropic_message(
    content: list[dict[str, Any]], stop_reason: str = "tool_use"
) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 1200, "output_tokens": 40},
    }


def tool_use(answer: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_01", "name": COMPARISON_TOOL_NAME, "input": answer}


def openai_completion(
    content: str | None, refusal: str | None = None, finish: str = "stop"
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4.1-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 30, "total_tokens": 1030},
    }


def anthropic_error(kind: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": f"{kind} from the test server"}}


def openai_error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error", "code": None, "param": None}}


GOOD = {"winner": "essay_b", "justification": "B develops its argument.", "confidence": 4}


def call(provider: LLMProviderType, timeout: float = 5.0) -> JudgeCall:
    return JudgeCall(
        correlation_id=uuid.uuid4(),
        provider=provider,
        model="claude-haiku-4-5" if provider is LLMProviderType.ANTHROPIC else "gpt-4.1-mini",
        system_prompt="You judge essays.",
        user_message="Assignment\n\nEssay A:\n<essay_a>\nx\n</essay_a>",
        user_prompt="Assignment",
        essay_a="x",
        essay_b="y",
        temperature=0.0,
        max_tokens=256,
        timeout_seconds=timeout,
    )


def anthropic(server: VendorServer) -> AnthropicJudge:
    return AnthropicJudge("test-key", f"http://127.0.0.1:{server.port}")


def openai(server: VendorServer) -> OpenAIJudge:
    return OpenAIJudge("test-key", f"http://127.0.0.1:{server.port}/v1")


# ---- Anthropic ------------------------------------------------------------------------


async def test_anthropic_success_forces_the_comparison_tool(server: VendorServer) -> None:
    server.replies.append(Reply(body=anthropic_message([tool_use(GOOD)])))
    judge = anthropic(server)
    answer = await judge.judge(call(LLMProviderType.ANTHROPIC))
    await judge.aclose()
    assert answer.winner is EssayComparisonWinner.ESSAY_B
    assert (answer.confidence, answer.prompt_tokens, answer.completion_tokens) == (4.0, 1200, 40)
    path, body = server.requests[0]
    assert path == "/v1/messages"
    assert body["tool_choice"] == {"type": "tool", "name": COMPARISON_TOOL_NAME}
    assert body["tools"][0]["input_schema"]["required"] == ["winner", "justification", "confidence"]
    assert body["system"] == "You judge essays."
    assert body["temperature"] == 0.0


@pytest.mark.parametrize(
    ("reply", "code", "retryable"),
    [
        (
            Reply(429, anthropic_error("rate_limit_error"), {"retry-after": "3"}),
            LLMErrorCode.PROVIDER_RATE_LIMIT,
            True,
        ),
        (Reply(500, anthropic_error("api_error")), LLMErrorCode.PROVIDER_API_ERROR, True),
        (Reply(529, anthropic_error("overloaded_error")), LLMErrorCode.PROVIDER_UNAVAILABLE, True),
        (Reply(401, anthropic_error("authentication_error")), LLMErrorCode.INVALID_CONFIG, False),
        (
            Reply(200, b'{"id": "msg_01", "content": [{"type": "tool_'),
            LLMErrorCode.PARSING_ERROR,
            False,
        ),
        (
            Reply(200, anthropic_message([], stop_reason="refusal")),
            LLMErrorCode.INVALID_RESPONSE,
            False,
        ),
        (
            Reply(200, anthropic_message([{"type": "text", "text": "A is better"}], "end_turn")),
            LLMErrorCode.PARSING_ERROR,
            False,
        ),
        (
            Reply(200, anthropic_message([tool_use({**GOOD, "confidence": 9})])),
            LLMErrorCode.INVALID_RESPONSE,
            False,
        ),
    ],
    ids=["429", "500", "529", "401", "malformed-json", "refusal", "no-tool-call", "confidence-9"],
)
async def test_anthropic_failures(
    server: VendorServer, reply: Reply, code: LLMErrorCode, retryable: bool
) -> None:
    server.replies.append(reply)
    judge = anthropic(server)
    with pytest.raises(JudgeError) as err:
        await judge.judge(call(LLMProviderType.ANTHROPIC))
    await judge.aclose()
    assert err.value.code is code
    assert err.value.retryable is retryable
    if reply.status == 429:
        assert err.value.retry_after == 3.0


async def test_anthropic_timeout(server: VendorServer) -> None:
    server.replies.append(Reply(body=anthropic_message([tool_use(GOOD)]), delay=2.0))
    judge = anthropic(server)
    with pytest.raises(JudgeError) as err:
        await judge.judge(call(LLMProviderType.ANTHROPIC, timeout=0.3))
    await judge.aclose()
    assert err.value.code is LLMErrorCode.PROVIDER_TIMEOUT and err.value.provider_fault


# ---- OpenAI -----------------------------------------------------------------------------


async def test_openai_success_asks_for_the_strict_json_schema(server: VendorServer) -> None:
    server.replies.append(Reply(body=openai_completion(json.dumps(GOOD))))
    judge = openai(server)
    answer = await judge.judge(call(LLMProviderType.OPENAI))
    await judge.aclose()
    assert answer.winner is EssayComparisonWinner.ESSAY_B
    assert (answer.prompt_tokens, answer.completion_tokens) == (1000, 30)
    path, body = server.requests[0]
    assert path == "/v1/chat/completions"
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert body["max_completion_tokens"] == 256
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


@pytest.mark.parametrize(
    ("reply", "code", "retryable"),
    [
        (
            Reply(429, openai_error("slow down"), {"retry-after-ms": "1500"}),
            LLMErrorCode.PROVIDER_RATE_LIMIT,
            True,
        ),
        (Reply(500, openai_error("boom")), LLMErrorCode.PROVIDER_API_ERROR, True),
        (
            Reply(400, openai_error("This model's maximum context length is 8192 tokens")),
            LLMErrorCode.CONTENT_TOO_LONG,
            False,
        ),
        (Reply(200, b'{"id": "chatcmpl-1", "choices": [{"mess'), LLMErrorCode.PARSING_ERROR, False),
        (
            Reply(200, openai_completion('{"winner": "essay_a", "justif')),
            LLMErrorCode.PARSING_ERROR,
            False,
        ),
        (
            Reply(200, openai_completion(None, refusal="I can't help with that.")),
            LLMErrorCode.INVALID_RESPONSE,
            False,
        ),
        (
            Reply(200, openai_completion(json.dumps({**GOOD, "confidence": 0.7}))),
            LLMErrorCode.INVALID_RESPONSE,
            False,
        ),
    ],
    ids=[
        "429",
        "500",
        "400-too-long",
        "malformed-body",
        "malformed-content",
        "refusal",
        "conf-0.7",
    ],
)
async def test_openai_failures(
    server: VendorServer, reply: Reply, code: LLMErrorCode, retryable: bool
) -> None:
    server.replies.append(reply)
    judge = openai(server)
    with pytest.raises(JudgeError) as err:
        await judge.judge(call(LLMProviderType.OPENAI))
    await judge.aclose()
    assert err.value.code is code
    assert err.value.retryable is retryable
    if reply.status == 429:
        assert err.value.retry_after == 1.5


async def test_openai_timeout(server: VendorServer) -> None:
    server.replies.append(Reply(body=openai_completion(json.dumps(GOOD)), delay=2.0))
    judge = openai(server)
    with pytest.raises(JudgeError) as err:
        await judge.judge(call(LLMProviderType.OPENAI, timeout=0.3))
    await judge.aclose()
    assert err.value.code is LLMErrorCode.PROVIDER_TIMEOUT


async def test_openai_compatible_uses_max_tokens_and_needs_no_key(server: VendorServer) -> None:
    server.replies.append(Reply(body=openai_completion(json.dumps(GOOD))))
    judge = OpenAIJudge(
        None,
        f"http://127.0.0.1:{server.port}/v1",
        name="openai_compatible",
        require_key=False,
        token_param="max_tokens",
    )
    answer = await judge.judge(call(LLMProviderType.OPENAI_COMPATIBLE))
    await judge.aclose()
    assert answer.winner is EssayComparisonWinner.ESSAY_B
    assert server.requests[0][1]["max_tokens"] == 256
    assert "max_completion_tokens" not in server.requests[0][1]


async def test_missing_key_is_invalid_config_without_a_call(server: VendorServer) -> None:
    for judge in (AnthropicJudge(None, f"http://127.0.0.1:{server.port}"), OpenAIJudge(None)):
        with pytest.raises(JudgeError) as err:
            await judge.judge(call(LLMProviderType.OPENAI))
        assert err.value.code is LLMErrorCode.INVALID_CONFIG
        await judge.aclose()
    assert server.requests == []


# ---- through the worker's retry logic -----------------------------------------------------


class NoLimit:
    def limited(self, provider: LLMProviderType) -> bool:
        return False

    async def acquire(self, provider: LLMProviderType, tokens: int) -> Reservation | float:
        raise AssertionError("not limited")

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        raise AssertionError("not limited")


async def test_a_real_429_is_retried_after_its_retry_after_then_succeeds(
    server: VendorServer,
) -> None:
    server.replies += [
        Reply(429, anthropic_error("rate_limit_error"), {"retry-after": "7"}),
        Reply(500, anthropic_error("api_error")),
        Reply(body=anthropic_message([tool_use(GOOD)])),
    ]
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    async def never(_: str) -> bool:
        return False

    judge: Judge = anthropic(server)
    processor = RequestProcessor(
        WorkerSettings(CJ_WORKER_MAX_ATTEMPTS=3, CJ_WORKER_RETRY_BASE_SECONDS=0.5),
        dict.fromkeys(LLMProviderType, judge),
        ModelManifest.load(),
        NoLimit(),
        never,
        WorkerMetrics(CollectorRegistry()),
        sleep=sleep,
        rng=random.Random(0),
    )
    request = LLMComparisonRequest(
        user_prompt="p",
        essay_a="a",
        essay_b="b",
        callback_topic="test.cb",
        llm_config_overrides=LLMConfigOverrides(provider_override=LLMProviderType.ANTHROPIC),
    )
    result = (await processor.process(QueuedRequest.from_request(request, 60))).result
    await judge.aclose()
    assert result is not None and result.is_success
    assert result.cost_estimate == pytest.approx((1200 * 1 + 40 * 5) / 1e6)
    assert sleeps[0] == 7.0 and 0 <= sleeps[1] <= 1.0
    assert len(server.requests) == 3
