"""The cj-operator Grafana dashboard, as code (Grafana's typed builders, grafana-foundation-sdk).

The panels are declared in `ROWS` (title, unit, PromQL); `build_dashboard` turns them into
the SDK's builders and `render` into the JSON the Helm chart ships at
`charts/cj-operator/files/dashboards/cj-operator.json`. Regenerate it with

    .venv/bin/python -m deploy.dashboard          # writes the file
    .venv/bin/python -m deploy.dashboard --check  # exit 1 when the file is stale

Every query filters on the `namespace` template variable (`=~`, so series without a
namespace label, e.g. from a static scrape, match `.*`) and uses `$__rate_interval` for rates.
The metric names are those of cj_workers/metrics.py (`cj_provider_*`) and of the operator's
metrics module (`cj_operator_*`); tests/integration/deploy checks every query returns data
from a real Prometheus scraping a run.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    QueryVariable,
    Row,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as StatPanel
from grafana_foundation_sdk.builders.timeseries import Panel as TimeseriesPanel
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_PATH = REPO_ROOT / "charts" / "cj-operator" / "files" / "dashboards" / "cj-operator.json"
DASHBOARD_UID = "cj-operator"

RATE = "$__rate_interval"
"""Grafana's rate window: at least four scrape intervals."""

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


def sel(metric: str, *matchers: str) -> str:
    """`metric{namespace=~"$namespace", <matchers>}`: a selector filtered by namespace."""
    return metric + "{" + ", ".join(['namespace=~"$namespace"', *matchers]) + "}"


def rate(metric: str, *matchers: str) -> str:
    """`rate(<selector>[$__rate_interval])`: per-second rate of a counter."""
    return f"rate({sel(metric, *matchers)}[{RATE}])"


def quantile(q: float, histogram: str, by: str = "") -> str:
    """`histogram_quantile(q, sum by (le, <by>) (rate(<histogram>_bucket[...])))`."""
    labels = ", ".join(["le", *([by] if by else [])])
    return f"histogram_quantile({q}, sum by ({labels}) ({rate(histogram + '_bucket')}))"


NOT_SUCCESS = 'status!="success"'
NOT_QUEUED = 'outcome!="queued"'
WORKER_SAMPLED = 'priority!="all"'
"""The API's own sample (priority "all") is taken only at submissions, so it can go stale."""


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel and its legend (`{{label}}` placeholders)."""

    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    """One panel: a time series or a single stat, `width` of 24 grid columns, `unit` in
    Grafana's unit ids (s, reqps, short, currencyUSD...)."""

    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    kind: Literal["timeseries", "stat"] = "timeseries"
    width: int = 8


ROWS: tuple[tuple[str, tuple[PanelSpec, ...]], ...] = (
    (
        "Batches",
        (
            PanelSpec(
                "Batches by phase",
                "CJBatches the operator stores, by phase (INITIALIZING ... COMPLETED, FAILED).",
                "short",
                (Query(f"sum by (phase) ({sel('cj_operator_batches')})", "{{phase}}"),),
                width=6,
            ),
            PanelSpec(
                "Comparisons per second",
                "Comparison requests the operator sent, by outcome (queued, refused, deferred), "
                "and those the workers finished, by status (success or the error code).",
                "reqps",
                (
                    Query(
                        f"sum by (outcome) ({rate('cj_operator_comparisons_submitted_total')})",
                        "submitted {{outcome}}",
                    ),
                    Query(
                        f"sum by (status) ({rate('cj_provider_requests_total')})",
                        "finished {{status}}",
                    ),
                ),
                width=6,
            ),
            PanelSpec(
                "Callbacks by outcome",
                "Callback events the operator processed: success, failure, duplicate, stale, "
                "unknown (not ours), malformed (dead-lettered).",
                "reqps",
                (
                    Query(
                        f"sum by (outcome) ({rate('cj_operator_callbacks_total')})",
                        "{{outcome}}",
                    ),
                ),
                width=6,
            ),
            PanelSpec(
                "Callback lag p50 / p99",
                "Time from the operator receiving a callback to the CJBatch status showing it.",
                "s",
                (
                    Query(quantile(0.5, "cj_operator_callback_to_status_latency_seconds"), "p50"),
                    Query(quantile(0.99, "cj_operator_callback_to_status_latency_seconds"), "p99"),
                ),
                width=6,
            ),
        ),
    ),
    (
        "Queue and workers",
        (
            PanelSpec(
                "Queue depth",
                "Requests queued or in flight in the Redis streams, by priority, as the "
                "workers sample it every few seconds (the largest value any worker saw).",
                "short",
                (
                    Query(
                        f"max by (priority) ({sel('cj_provider_queue_depth', WORKER_SAMPLED)})",
                        "{{priority}}",
                    ),
                ),
                width=6,
            ),
            PanelSpec(
                "Queue wait p99",
                "Time from enqueue to a worker taking the request, by priority.",
                "s",
                (
                    Query(
                        quantile(0.99, "cj_provider_queue_wait_seconds", by="priority"),
                        "{{priority}}",
                    ),
                ),
                width=6,
            ),
            PanelSpec(
                "Workers",
                "Worker processes reporting, and the requests they handle now.",
                "short",
                (
                    Query(f"count({sel('cj_provider_worker_in_flight')})", "workers"),
                    Query(f"sum({sel('cj_provider_worker_in_flight')})", "in flight"),
                ),
                width=6,
            ),
            PanelSpec(
                "Callback consumer lag",
                "Callback events on Kafka the operator has not read yet (records; the active "
                "replica's consumer group). Growing: the operator cannot keep up.",
                "short",
                (Query(f"max({sel('cj_operator_callback_consumer_lag')})", "records"),),
                width=6,
            ),
        ),
    ),
    (
        "Providers",
        (
            PanelSpec(
                "Provider latency p50 / p99",
                "Time from a worker taking a request to the judge's final answer (retries "
                "included), by provider.",
                "s",
                (
                    Query(
                        quantile(0.5, "cj_provider_response_duration_seconds", by="provider"),
                        "p50 {{provider}}",
                    ),
                    Query(
                        quantile(0.99, "cj_provider_response_duration_seconds", by="provider"),
                        "p99 {{provider}}",
                    ),
                ),
            ),
            PanelSpec(
                "Errors by code",
                "Comparisons that ended in an error event, by LLMErrorCode, and requests the "
                "API refused, by code.",
                "reqps",
                (
                    Query(
                        f"sum by (status) ({rate('cj_provider_requests_total', NOT_SUCCESS)})",
                        "judge {{status}}",
                    ),
                    Query(
                        "sum by (outcome) "
                        f"({rate('cj_provider_api_submissions_total', NOT_QUEUED)})",
                        "refused {{outcome}}",
                    ),
                ),
            ),
            PanelSpec(
                "Callback publishing",
                "Callback events acknowledged by Kafka by status, failed publish attempts "
                "(the stream entry stays pending and is retried), and stream entries moved to "
                "the dead-letter stream by reason.",
                "reqps",
                (
                    Query(
                        f"sum by (status) ({rate('cj_provider_callback_events_published_total')})",
                        "published {{status}}",
                    ),
                    Query(
                        f"sum({rate('cj_provider_callback_publish_failures_total')})",
                        "publish failures",
                    ),
                    Query(
                        f"sum by (reason) ({rate('cj_provider_dead_letters_total')})",
                        "dead letters {{reason}}",
                    ),
                ),
            ),
            PanelSpec(
                "Tokens per second",
                "Tokens the providers reported, by provider and kind (prompt, completion).",
                "short",
                (
                    Query(
                        f"sum by (provider, kind) ({rate('cj_provider_tokens_total')})",
                        "{{provider}} {{kind}}",
                    ),
                ),
            ),
            PanelSpec(
                "Cost (USD per hour)",
                "Estimated spend rate: manifest prices times reported tokens, by provider.",
                "currencyUSD",
                (
                    Query(
                        f"sum by (provider) ({rate('cj_provider_cost_usd_total')}) * 3600",
                        "{{provider}}",
                    ),
                ),
            ),
            PanelSpec(
                "Open circuit breakers",
                "Workers whose circuit breaker for a provider is open now (calls fail fast).",
                "short",
                (Query(f"sum by (provider) ({sel('cj_provider_circuit_open')})", "{{provider}}"),),
            ),
        ),
    ),
)


def all_queries() -> list[str]:
    """Every PromQL expression of the dashboard, in panel order (tests evaluate each)."""
    return [q.expr for _, panels in ROWS for p in panels for q in p.queries]


def _panel(spec: PanelSpec, panel_id: int) -> TimeseriesPanel | StatPanel:
    panel: TimeseriesPanel | StatPanel
    if spec.kind == "stat":
        panel = StatPanel().reduce_options(
            common_builders.ReduceDataOptions().calcs(["lastNotNull"])
        )
    else:
        panel = (
            TimeseriesPanel()
            .fill_opacity(10)
            .legend(
                common_builders.VizLegendOptions()
                .display_mode(common.LegendDisplayMode.LIST)
                .placement(common.LegendPlacement.BOTTOM)
                .show_legend(True)
            )
        )
    panel = (
        panel.id(panel_id)
        .title(spec.title)
        .description(spec.description)
        .unit(spec.unit)
        .datasource(DATASOURCE)
        .height(8)
        .span(spec.width)
    )
    for ref, query in zip("ABCDEFGH", spec.queries, strict=False):
        panel = panel.with_target(
            Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref).range()
        )
    return panel


def build_dashboard() -> Dashboard:
    """The dashboard builder: variables `datasource` and `namespace`, then `ROWS`."""
    dashboard = (
        Dashboard("CJ operator")
        .uid(DASHBOARD_UID)
        .description(
            "Comparative judgement: batches, comparisons, callback lag, queue, providers, "
            "errors, tokens and cost. Generated by deploy/dashboard.py."
        )
        .tags(["cj-operator", "generated"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            QueryVariable("namespace")
            .label("Namespace")
            .datasource(DATASOURCE)
            .query("label_values(cj_provider_queue_depth, namespace)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .include_all(True)
            .all_value(".*")
            .multi(True)
        )
    )
    panel_id = 0
    for title, panels in ROWS:
        panel_id += 1
        dashboard = dashboard.with_row(Row(title).id(panel_id))
        for spec in panels:
            panel_id += 1
            dashboard = dashboard.with_panel(_panel(spec, panel_id))
    return dashboard


def render() -> str:
    """The dashboard JSON as the chart ships it: sorted keys, two-space indent, final newline."""
    model = build_dashboard().build()
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the chart's dashboard JSON; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m deploy.dashboard", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--output", type=Path, default=DASHBOARD_PATH)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python -m deploy.dashboard", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
