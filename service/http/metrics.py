"""Prometheus metrics: request counts and latencies, appends, lag, webhooks, SSE clients."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Mapping
from typing import Final

BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """Cumulative buckets, a sum and a count, as Prometheus wants them."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds


class Metrics:
    """This process's counters (a scrape adds the gauges read at that moment)."""

    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: defaultdict[str, Histogram] = defaultdict(Histogram)
        self.appended = 0

    def count_appended(self, events: int) -> None:
        """Count events this process appended (retries of stored ones excluded)."""
        self.appended += events


def _labels(**labels: object) -> str:
    inner = ",".join(f'{k}="{str(v).replace(chr(34), chr(39))}"' for k, v in labels.items())
    return "{" + inner + "}"


def render(metrics: Metrics, gauges: Mapping[str, tuple[str, float]]) -> str:
    """The Prometheus text exposition of the counters and the given gauges."""
    lines = [
        "# HELP legation_http_requests_total HTTP requests by route, method and status.",
        "# TYPE legation_http_requests_total counter",
    ]
    for (route, method, status), count in sorted(metrics.requests.items()):
        labels = _labels(route=route, method=method, status=status)
        lines.append(f"legation_http_requests_total{labels} {count}")
    lines += [
        "# HELP legation_http_request_duration_seconds HTTP request latency by route.",
        "# TYPE legation_http_request_duration_seconds histogram",
    ]
    for route, histogram in sorted(metrics.latency.items()):
        running = 0
        for bound, count in zip((*BUCKETS, "+Inf"), histogram.counts, strict=True):
            running += count
            labels = _labels(route=route, le=bound)
            lines.append(f"legation_http_request_duration_seconds_bucket{labels} {running}")
        lines.append(
            f"legation_http_request_duration_seconds_sum{_labels(route=route)} {histogram.total}"
        )
        lines.append(
            f"legation_http_request_duration_seconds_count{_labels(route=route)} {running}"
        )
    for name, (kind_and_help, value) in gauges.items():
        kind, _, help_text = kind_and_help.partition(" ")
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    return "\n".join(lines) + "\n"
