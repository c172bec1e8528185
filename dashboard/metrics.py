"""GET /metrics: the gateway's counters and gauges in Prometheus' text format,
read from the gateway at each scrape (prometheus-client renders them)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

FAMILY = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily}
PREFIX = "lonewatch_"


class _GatewayCollector:
    def __init__(self, gateway):
        self._gateway = gateway

    def collect(self):
        for metric in self._gateway.metrics():
            labels = sorted({key for sample_labels, _ in metric.samples for key in sample_labels})
            family = FAMILY[metric.kind](PREFIX + metric.name, metric.help, labels=labels)
            for sample_labels, value in metric.samples:
                family.add_metric([sample_labels[key] for key in labels], value)
            yield family


def registry_for(gateway) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_GatewayCollector(gateway))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
