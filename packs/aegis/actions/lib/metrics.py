"""Prometheus metrics of the pack's sensors.

    REQUESTS = metric(Counter, "aegis_webhook_requests", "Webhook requests answered.", ("code",))

Plain ``prometheus_client`` metrics: st2lite runs sensors with ``PROMETHEUS_MULTIPROC_DIR``
set and merges them into its own ``/metrics``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY


def metric(kind: type, name: str, doc: str, labels: tuple[str, ...] = (), **kwargs: Any) -> Any:
    """A module-level metric that survives its module being loaded twice in one process
    (``kwargs``: e.g. a histogram's ``buckets``)."""
    try:
        return kind(name, doc, labels, **kwargs)
    except ValueError:  # already registered (st2lite and tests may import a sensor file twice)
        return REGISTRY._names_to_collectors[name]
