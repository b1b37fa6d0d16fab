"""Read a process's Prometheus /metrics page: one scraper for tests and benchmarks.

The page is parsed by prometheus-client's own text parser; samples are matched by name and by
their exact label set.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@dataclass(frozen=True)
class Scrape:
    """The samples of one or more /metrics pages."""

    samples: tuple[Sample, ...]

    def value(self, name: str, **labels: str) -> float:
        """The sample `name` with exactly `labels`, summed over the pages (0 when absent)."""
        return sum(s.value for s in self.samples if s.name == name and s.labels == labels)

    def buckets(self, histogram: str) -> list[tuple[float, float]]:
        """(le, cumulative count) of `histogram` (its name without `_bucket`), summed over every
        other label and page, by ascending le (+Inf last)."""
        summed: dict[float, float] = defaultdict(float)
        for s in self.samples:
            if s.name == f"{histogram}_bucket":
                summed[float(s.labels["le"])] += s.value
        return sorted(summed.items())

    def counters(self) -> dict[str, float]:
        """Every `*_total` sample, keyed `name{k=v,...}` (labels sorted), summed over pages."""
        out: dict[str, float] = defaultdict(float)
        for s in self.samples:
            if s.name.endswith("_total"):
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}"] += s.value
        return dict(out)


def parse(text: str) -> Scrape:
    """The samples of a /metrics page's text."""
    return Scrape(tuple(s for f in text_string_to_metric_families(text) for s in f.samples))


def scrape(*base_urls: str) -> Scrape:
    """GET `<base_url>/metrics` of each process and parse them together; raises httpx errors."""
    samples: list[Sample] = []
    for url in base_urls:
        samples += parse(httpx.get(f"{url}/metrics", timeout=10).text).samples
    return Scrape(tuple(samples))


def metric(base_url: str, name: str, **labels: str) -> float:
    """One sample of the process at `base_url` (0 when absent)."""
    return scrape(base_url).value(name, **labels)


def bucket_quantile(buckets: Iterable[tuple[float, float]], q: float) -> float | None:
    """Upper bound of the bucket holding quantile `q` (0-1) of (le, cumulative count) buckets,
    as Prometheus' histogram_quantile without interpolation; None when the histogram is empty."""
    ordered = sorted(buckets)
    total = ordered[-1][1] if ordered else 0.0
    if total == 0:
        return None
    return next(le for le, count in ordered if count >= q * total)
