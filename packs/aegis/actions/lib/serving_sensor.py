"""A sensor that dispatches no triggers and serves HTTP from st2's sensor container.

st2 has no place for a long-running pack service but the sensor container, so the pack's
services (knowledge search, the cockpit, Slack's interactivity callbacks) are sensors of
this one shape::

    class CockpitSensor(ServingSensor):
        def open_server(self):
            return CockpitServer(self.sensor_service, self.config, self._logger)  # or None: stay idle

The server is anything with ``serve_forever()``, ``stop()`` (end a ``serve_forever`` that runs
or is about to, and release the port) and ``close()`` (release the port of a server that never
served: socketserver's ``shutdown()`` would wait forever for it). ``open_server`` runs in
``run()``; a subclass that must hold its port before ``run()`` opens it in ``setup()``
(``self._server = ...``). A sensor with nothing to serve (disabled, port taken by another
process) waits idle until cleanup instead of exiting: st2's sensor container restarts a
sensor that exits, which would be a crash loop.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from st2reactor.sensor.base import Sensor


class Server(Protocol):
    def serve_forever(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


class ServingSensor(Sensor):
    def setup(self) -> None:
        self._logger = self.sensor_service.get_logger(name=self.__class__.__name__)
        self._stopped = threading.Event()
        self._server: Any = None
        self._lock = threading.Lock()  # run() and cleanup() agree on whether it serves
        self._serving = False

    def open_server(self) -> Server | None:
        """The server to run, or None to stay idle. Only called when setup() opened none."""
        return None

    def run(self) -> None:
        if self._server is None:
            server = self.open_server()
            with self._lock:
                if self._stopped.is_set() and server is not None:
                    server.close()  # cleanup came while it was opening
                    server = None
                self._server = server
        with self._lock:
            self._serving = self._server is not None and not self._stopped.is_set()
        if self._serving:
            self._server.serve_forever()
        else:
            self._stopped.wait()

    def cleanup(self) -> None:
        with self._lock:
            self._stopped.set()
            server, serving = self._server, self._serving
        if server is not None:
            server.stop() if serving else server.close()

    # It dispatches nothing, so it has no trigger instances to follow.
    def add_trigger(self, trigger: dict) -> None:
        pass

    def update_trigger(self, trigger: dict) -> None:
        pass

    def remove_trigger(self, trigger: dict) -> None:
        pass
