"""The runtime's Prometheus metrics, and those of its sensor and worker processes.

Pack processes run with ``PROMETHEUS_MULTIPROC_DIR`` pointing at a directory the runtime
empties at start; their plain ``prometheus_client`` metrics are merged into the runtime's
``/metrics`` by a ``MultiProcessCollector``. Only the service (``aegis run``) uses
``$AEGIS_HOME/run/metrics``; any other runtime (a CLI command) passes ``None`` and gets a
private directory of its own, removed by ``close()``, so it never empties the service's.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector


class RuntimeMetrics:
    def __init__(self, multiproc_dir: Path | None) -> None:
        self._private = multiproc_dir is None
        if multiproc_dir is None:
            self.multiproc_dir = Path(tempfile.mkdtemp(prefix="st2lite-metrics-"))
        else:
            self.multiproc_dir = Path(multiproc_dir)
            shutil.rmtree(self.multiproc_dir, ignore_errors=True)
            self.multiproc_dir.mkdir(parents=True, exist_ok=True)
        self.registry = CollectorRegistry()
        MultiProcessCollector(self.registry, path=str(self.multiproc_dir))
        r = self.registry
        self.trigger_instances = Counter(
            "st2lite_trigger_instances_total", "Trigger instances processed by the rules engine", ["trigger"], registry=r
        )
        self.enforcements = Counter(
            "st2lite_rule_enforcements_total", "Rule enforcements", ["rule", "status"], registry=r
        )
        self.executions = Counter(
            "st2lite_executions_total", "Completed action executions", ["action", "status"], registry=r
        )
        self.duration = Histogram(
            "st2lite_execution_duration_seconds", "Action execution wall time", ["action"], registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.sensor_restarts = Counter(
            "st2lite_sensor_restarts_total", "Sensor processes restarted after exiting", ["sensor"], registry=r
        )
        self.up = Gauge("st2lite_up", "1 while the runtime is serving", registry=r)
        self.up.set(1)

    def trigger_instance(self, trigger: str) -> None:
        self.trigger_instances.labels(trigger).inc()

    def rule_enforced(self, rule: str, status: str) -> None:
        self.enforcements.labels(rule, status).inc()

    def execution_finished(self, action: str, status: str, seconds: float) -> None:
        self.executions.labels(action, status).inc()
        self.duration.labels(action).observe(seconds)

    def sensor_restarted(self, sensor: str) -> None:
        self.sensor_restarts.labels(sensor).inc()

    def close(self) -> None:
        """Remove a private directory (the service keeps its own for inspection)."""
        if self._private:
            shutil.rmtree(self.multiproc_dir, ignore_errors=True)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
