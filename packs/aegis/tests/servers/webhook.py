"""Run ``AlertmanagerWebhookSensor`` in a thread on a loopback port, with any sensor service.

    with running_webhook_sensor(service, config) as (sensor, url):
        requests.post(url, json=body)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from alertmanager_webhook_sensor import AlertmanagerWebhookSensor


@contextlib.contextmanager
def running_webhook_sensor(
    service: Any, config: dict[str, Any] | None = None
) -> Iterator[tuple[AlertmanagerWebhookSensor, str]]:
    """Set up and run the sensor on 127.0.0.1 (port 0 unless configured); clean up on exit."""
    config = dict(config or {})
    config["alertmanager"] = {"port": 0, **(config.get("alertmanager") or {})}
    sensor = AlertmanagerWebhookSensor(sensor_service=service, config=config)
    sensor.setup()
    thread = threading.Thread(target=sensor.run, name="webhook-sensor", daemon=True)
    thread.start()
    try:
        yield sensor, f"http://127.0.0.1:{sensor.port}{sensor.settings['path']}"
    finally:
        sensor.cleanup()
        thread.join(60)  # a bound, only reached when run() ignores cleanup(); a busy machine may take seconds
        assert not thread.is_alive(), "sensor.run() did not return after cleanup()"
