"""st2's sensor base classes, as pack sensors import them.

    from st2reactor.sensor.base import Sensor, PollingSensor
"""

from __future__ import annotations

import abc
import time
from typing import Any


class Sensor(abc.ABC):
    """A long-running sensor: ``run()`` may block forever; the container calls ``cleanup()``."""

    def __init__(self, sensor_service: Any, config: dict[str, Any] | None = None) -> None:
        self._sensor_service = sensor_service
        self._config = config or {}

    @property
    def sensor_service(self) -> Any:
        return self._sensor_service

    @property
    def config(self) -> dict[str, Any]:
        return self._config

    @abc.abstractmethod
    def setup(self) -> None: ...

    @abc.abstractmethod
    def run(self) -> None: ...

    @abc.abstractmethod
    def cleanup(self) -> None: ...

    @abc.abstractmethod
    def add_trigger(self, trigger: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def update_trigger(self, trigger: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def remove_trigger(self, trigger: dict[str, Any]) -> None: ...


class PollingSensor(Sensor):
    """A sensor whose ``run()`` calls ``poll()`` every ``poll_interval`` seconds."""

    def __init__(
        self, sensor_service: Any, config: dict[str, Any] | None = None, poll_interval: float = 5
    ) -> None:
        super().__init__(sensor_service=sensor_service, config=config)
        self._poll_interval = poll_interval

    @abc.abstractmethod
    def poll(self) -> None: ...

    def run(self) -> None:
        while True:
            self.poll()
            time.sleep(self._poll_interval)

    def get_poll_interval(self) -> float:
        return self._poll_interval

    def set_poll_interval(self, poll_interval: float) -> None:
        self._poll_interval = poll_interval
