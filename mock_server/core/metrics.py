"""Server metrics for GET /__admin/metrics: plain counters per request, Prometheus text on a scrape.

Every request adds to a dict entry and a histogram bucket (a few hundred nanoseconds); the
prometheus-client families are built only when a scraper asks, so the serving path never takes
a lock or a label lookup of the client library."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence, Sized
from decimal import Decimal
from typing import Any, Protocol


class _Journaled(Protocol):
    @property
    def journal(self) -> Sized: ...


class Sessions(Protocol):
    """What a scrape reads of the world (core.world.World has it)."""

    def sessions(self) -> Sequence[_Journaled]: ...

# request durations, in milliseconds (the bucket bounds are published in seconds)
LATENCY_BOUNDS_MS = (0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
                     5000.0, 10000.0, 30000.0, 60000.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """What the sandbox counts, for one app (all its sessions together)."""

    def __init__(self) -> None:
        # (provider, operation or "", status) -> requests answered
        self.requests: dict[tuple[str, str, int], int] = {}
        # provider -> [count per bucket (the last one: above every bound), sum of milliseconds]
        self.latency: dict[str, list[Any]] = {}
        # (provider, currency) -> [refunds made, their amounts]
        self.refunds: dict[tuple[str, str], list[Any]] = {}
        # (provider, rule name, outcome) -> times a fault rule acted
        self.faults: dict[tuple[str, str, str], int] = {}

    def observe(self, provider: str, operation: str | None, status: int,
                duration_ms: float) -> None:
        key = (provider, operation or "", status)
        counts = self.requests
        counts[key] = counts.get(key, 0) + 1
        buckets = self.latency.get(provider)
        if buckets is None:
            buckets = self.latency[provider] = [[0] * (len(LATENCY_BOUNDS_MS) + 1), 0.0]
        buckets[0][bisect_left(LATENCY_BOUNDS_MS, duration_ms)] += 1
        buckets[1] += duration_ms

    def refund_made(self, provider: str, currency: str, amount: Decimal) -> None:
        found = self.refunds.get((provider, currency))
        if found is None:
            self.refunds[(provider, currency)] = [1, amount]
        else:
            found[0] += 1
            found[1] += amount

    def fault_fired(self, provider: str, rule: str, outcome: str) -> None:
        key = (provider, rule, outcome)
        self.faults[key] = self.faults.get(key, 0) + 1

    def ledger_refund(self, account: tuple[str, str, str], currency: str,
                      amount: Decimal) -> None:
        """A session ledger's refund hook: account is (provider, merchant id, order id)."""
        self.refund_made(account[0], currency, amount)


class _Collector:
    """prometheus-client's view of a Metrics and its world, read at scrape time."""

    def __init__(self, metrics: Metrics, world: Sessions) -> None:
        self.metrics = metrics
        self.world = world

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        m = self.metrics
        requests = CounterMetricFamily(
            "sandbox_requests", "Requests answered, by surface, operation and HTTP status "
            "(0: a network fault cut the answer)", labels=["provider", "operation", "status"])
        for (provider, operation, status), count in sorted(dict(m.requests).items()):
            requests.add_metric([provider, operation, str(status)], count)
        yield requests

        latency = HistogramMetricFamily(
            "sandbox_request_duration_seconds", "Time from a request's arrival to its answer "
            "sent (fault delays included)", labels=["provider"])
        for provider, (counts, total_ms) in sorted(dict(m.latency).items()):
            cumulative, running = [], 0
            for bound, count in zip((*LATENCY_BOUNDS_MS, float("inf")), list(counts),
                                    strict=True):
                running += count
                cumulative.append((_seconds(bound), running))
            latency.add_metric([provider], cumulative, total_ms / 1000)
        yield latency

        refunds = CounterMetricFamily("sandbox_refunds", "Refunds made, by provider and currency",
                                      labels=["provider", "currency"])
        amounts = CounterMetricFamily(
            "sandbox_refunded_amount", "Sum of the refunds made, in units of the currency",
            labels=["provider", "currency"])
        for (provider, currency), (count, amount) in sorted(dict(m.refunds).items()):
            refunds.add_metric([provider, currency], count)
            amounts.add_metric([provider, currency], float(amount))
        yield refunds
        yield amounts

        faults = CounterMetricFamily("sandbox_faults_fired", "Times a fault rule acted, by "
                                     "provider, rule name and outcome",
                                     labels=["provider", "rule", "outcome"])
        for (provider, rule, outcome), count in sorted(dict(m.faults).items()):
            faults.add_metric([provider, rule, outcome], count)
        yield faults

        sessions = self.world.sessions()
        yield GaugeMetricFamily("sandbox_sessions", "Sessions in memory", value=len(sessions))
        yield GaugeMetricFamily("sandbox_journal_entries", "Journal entries kept, all sessions",
                                value=sum(len(s.journal) for s in sessions))


def _seconds(bound_ms: float) -> str:
    return "+Inf" if bound_ms == float("inf") else repr(bound_ms / 1000)


def exposition(metrics: Metrics, world: Sessions) -> bytes:
    """The Prometheus text format of everything counted so far."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(metrics, world))
    return generate_latest(registry)
