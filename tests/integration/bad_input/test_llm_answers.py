"""Bad-input suite, malformed LLM answers through a real worker process.

The worker's `openai_compatible` judge talks to a local HTTP server speaking the Chat
Completions wire format, which answers each request by the case named in its essay A: an empty
answer, prose, a refusal, a wrong winner, a duplicated key, a 0-1 confidence, a huge
justification with control characters, token counts no column can hold. Each request ends as
exactly one event on Kafka with the right error code (or a bounded success), the judge is asked
once (nothing worth retrying), and nothing is left queued or pending.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from common_core import LLMComparisonRequest, LLMComparisonResultV1, LLMErrorCode, QueuedRequest
from common_core.events import JUSTIFICATION_MAX_CHARS
from tests.integration.bad_input.queue_view import queued
from tests.integration.workers.comparisons import collect, request
from tests.support.devcluster import ClusterEnv
from tests.support.isolation import delete_redis_keys, unique_name
from tests.support.polling import wait_for
from tests.support.stack import Stack, StackConfig

GOOD = {"winner": "essay_b", "justification": "B argues with evidence.", "confidence": 4}


def completion(content: str | None, usage: tuple[int, int] = (900, 40)) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bad-input",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "llama-test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        },
    }


ANSWERS: dict[str, tuple[dict[str, Any], LLMErrorCode | None, str]] = {
    "good": (completion(json.dumps(GOOD)), None, ""),
    "empty": (completion(""), LLMErrorCode.PARSING_ERROR, "no answer text"),
    "no content": (completion(None), LLMErrorCode.PARSING_ERROR, "no answer text"),
    "prose": (
        completion("Essay B is clearly better: it uses evidence."),
        LLMErrorCode.PARSING_ERROR,
        "not valid JSON",
    ),
    "refusal text": (
        completion("I'm sorry, but I can't help with comparing these essays."),
        LLMErrorCode.PARSING_ERROR,
        "not valid JSON",
    ),
    "JSON around prose": (
        completion(f"Here is my verdict: {json.dumps(GOOD)} Hope that helps!"),
        LLMErrorCode.PARSING_ERROR,
        "not valid JSON",
    ),
    "winner tie": (
        completion(json.dumps({**GOOD, "winner": "tie"})),
        LLMErrorCode.PARSING_ERROR,
        "winner 'tie' names neither",
    ),
    "winner null": (
        completion(json.dumps({**GOOD, "winner": None})),
        LLMErrorCode.PARSING_ERROR,
        "winner is not a string",
    ),
    "two winners": (
        completion(
            '{"winner": "essay_a", "winner": "essay_b", "justification": "x", "confidence": 3}'
        ),
        LLMErrorCode.PARSING_ERROR,
        "ambiguous: 'winner' appears twice",
    ),
    "a list of answers": (
        completion(json.dumps([GOOD, GOOD])),
        LLMErrorCode.PARSING_ERROR,
        "JSON but not an object",
    ),
    "confidence 0.8": (
        completion(json.dumps({**GOOD, "confidence": 0.8})),
        LLMErrorCode.INVALID_RESPONSE,
        "outside 1-5",
    ),
    "huge justification": (
        completion(json.dumps({**GOOD, "justification": "Because\x00 \x1b[31m" + "B " * 10_000})),
        None,
        "",
    ),
    "3e9 prompt tokens": (
        completion(json.dumps(GOOD), usage=(3_000_000_000, 40)),
        LLMErrorCode.INVALID_RESPONSE,
        "reported 3000000000 prompt_tokens",
    ),
    "negative tokens": (
        completion(json.dumps(GOOD), usage=(900, -40)),
        LLMErrorCode.INVALID_RESPONSE,
        "reported -40 completion_tokens",
    ),
}
"""Case name -> (the server's Chat Completions answer, expected error code or None for a
success, a substring of the error message)."""


class LlmServer:
    """Answers POST /v1/chat/completions with ANSWERS[case], the case named in the prompt."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                prompt = body["messages"][-1]["content"]
                case = next(name for name in ANSWERS if f"[case: {name}]" in prompt)
                outer.calls[case] += 1
                data = json.dumps(ANSWERS[case][0]).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Answered:
    results: dict[str, LLMComparisonResultV1]
    """The one result event of each case."""
    events: int
    calls: Counter[str]
    """Calls the judge's server received, by case."""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def answered(
    cluster: ClusterEnv, module_topic: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Answered]:
    """Every case enqueued as the API does, judged by one worker against the local server;
    waits until nothing is queued or pending."""
    llm = LlmServer()
    config = StackConfig(
        cluster=cluster,
        callback_topic=module_topic,
        redis_prefix=unique_name("t:llm:") + ":",
        group=unique_name("t-llm-"),
        workers=0,
        operator=False,
        create_topics=False,
        worker_env={
            "CJ_WORKER_OPENAI_COMPATIBLE_BASE_URL": llm.url,
            "CJ_WORKER_OPENAI_COMPATIBLE_JSON_MODE": "json_object",
            "CJ_WORKER_JUSTIFICATION_MAX_CHARS": str(JUSTIFICATION_MAX_CHARS),
            "CJ_WORKER_CONCURRENCY": "8",
        },
    )
    stack = Stack(config, tmp_path_factory.mktemp("llm"))
    client = aioredis.from_url(cluster.redis_url)
    try:
        queue = stack.queue(client)
        await queue.ensure_group()
        entries = [
            QueuedRequest.from_request(
                LLMComparisonRequest.model_validate(
                    request(
                        config.callback_topic,
                        case,
                        essay_a=f"[case: {case}] Essay A argues a point.",
                        llm_config_overrides={
                            "provider_override": "openai_compatible",
                            "model_override": "llama-test",
                        },
                    )
                ),
                3600,
            )
            for case in ANSWERS
        ]
        outcome = await queue.enqueue(entries, high_water=10_000, low_water=5_000)
        assert None not in outcome.entry_ids
        stack.start_worker("w1")
        events = await collect(stack, len(ANSWERS), within=60, settle=1.0)

        async def settled() -> bool:
            return await queue.pending_count() == 0 and await queued(stack, client) == 0

        await wait_for(settled, 20, "no entry left queued or pending")
        yield Answered(
            results={str(e.data.request_metadata["case"]): e.data for _, e in events},
            events=len(events),
            calls=Counter(llm.calls),
        )
    finally:
        stack.stop()
        llm.close()
        await delete_redis_keys(cluster, config.redis_prefix)
        await client.aclose()


@pytest.mark.parametrize("case", list(ANSWERS))
def test_a_malformed_answer_becomes_its_error_event(answered: Answered, case: str) -> None:
    _, code, says = ANSWERS[case]
    result = answered.results[case]
    detail = result.error_detail
    assert (detail.error_code if detail else None) is code, detail
    if detail is not None:
        assert says in detail.message, detail.message
        assert detail.retryable is False
    assert answered.calls[case] == 1, "the judge was asked again for an answer no retry fixes"


def test_one_event_per_request_and_justifications_bounded(answered: Answered) -> None:
    assert answered.events == len(ANSWERS) and sorted(answered.results) == sorted(ANSWERS)
    huge = answered.results["huge justification"]
    assert huge.justification is not None and len(huge.justification) == JUSTIFICATION_MAX_CHARS
    assert huge.justification.startswith("Because [31mB B")  # control characters removed
    assert answered.results["good"].justification == GOOD["justification"]
    assert answered.results["good"].token_usage.total_tokens == 940
