"""The fault cases of issue 12 with a larger batch, as a table (not run by make test).

    .venv/bin/python -m bench.faults                       # every case, 300 essays x 6
    .venv/bin/python -m bench.faults --essays 120 --per-essay 4 --cases kafka-stopped

Runs the cases of tests/faults/cases.py (the fault suite's, in the same order) on one stack
(provider API, two workers, the operator: `tests.faults.harness.FaultStack`) against the
local cluster (`hack/devcluster up`; the cases stop and restart its Kafka, Redis and
PostgreSQL, so do not run it on a cluster others are using). Prints one line per case as it
ends, then the markdown table docs/operator.md shows: fault, comparisons, outage and recovery
time (seconds from the injection), comparisons lost, double-counted, duplicates seen (extra
publishes of a comparison), the duplicates' cost the batch does not count, completion event
ids. Exit status 1 when any case broke a guarantee (its problems are printed).
The run's namespace and database (`cj-faults-<run id>`) and the processes' logs (the
directory printed first) are left for inspection.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from tests.faults.cases import CASES
from tests.faults.harness import FaultReport, FaultSettings, FaultStack, markdown_table
from tests.support import devcluster


async def main() -> int:
    defaults = FaultSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--essays", type=int, default=300)
    parser.add_argument("--per-essay", type=int, default=6)
    parser.add_argument("--mock-latency-ms", type=int, default=defaults.mock_latency_ms)
    parser.add_argument("--concurrency", type=int, default=16, help="per worker")
    parser.add_argument(
        "--cases",
        nargs="*",
        choices=[c.key for c in CASES],
        default=[c.key for c in CASES],
        help="which cases (default: all, in the suite's order)",
    )
    args = parser.parse_args()
    settings = replace(
        defaults,
        essays=args.essays,
        per_essay=args.per_essay,
        mock_latency_ms=args.mock_latency_ms,
        worker_concurrency=args.concurrency,
    )

    if not devcluster.is_running():
        devcluster.up()
    cluster = devcluster.read_env()
    run_id = uuid.uuid4().hex[:8]
    print(
        f"{len(args.cases)} cases, {settings.essays} essays x {settings.per_essay} comparisons, "
        f"mock judge {settings.mock_latency_ms} ms, 2 workers x {settings.worker_concurrency}; "
        f"run {run_id}",
        flush=True,
    )
    reports: list[FaultReport] = []
    failed: list[str] = []
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f"cj-faults-{run_id}-"))
    print(f"processes' logs in {work / 'logs'}", flush=True)
    stack = await FaultStack.create(cluster, work, settings, run_id)
    try:
        await stack.start()
        for case in (c for c in CASES if c.key in args.cases):
            await stack.ensure_running()
            try:
                report = await case.run(stack)
            except Exception as exc:  # one broken case does not stop the table
                failed.append(f"{case.key}: {exc!r}")
                print(f"{case.key}: did not finish: {exc!r}", flush=True)
                continue
            finally:
                await asyncio.to_thread(stack.services.ensure_up)
            reports.append(report)
            print(report.line(), flush=True)
            failed += [f"{case.key}: {p}" for p in report.problems()]
    finally:
        await stack.close(cleanup=False)
    print()
    print(markdown_table(reports))
    print(f"\n{len(reports)} cases in {time.monotonic() - started:.0f} s")
    for problem in failed:
        print(f"PROBLEM {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
