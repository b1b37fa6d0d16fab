"""Process plumbing shared by the operator (`cj_operator`) and the provider side (`cj_workers`):
what both do the same way, written once. Contracts live in `common_core`, not here.

- `cj_plumbing.logs`: structlog set-up (JSON lines in pods, context on every line).
- `cj_plumbing.backoff`: retry delays (capped exponential, full jitter) and Retry-After clamping.
- `cj_plumbing.breaker`: the circuit breaker in front of a remote service.
- `cj_plumbing.kafka_admin`: topic creation and listing with aiokafka's admin client.
- `cj_plumbing.kafka_errors`: producer errors after which only a new producer can send.
- `cj_plumbing.test_hooks`: hold a process at a named point for the fault suite (off unless
  CJ_TEST_HOOK_DIR is set).
"""
