"""aegis.CockpitSensor: serves the incident cockpit (a web page for on-call) from st2's sensor container.

Like the knowledge service, a long-running sensor process with an HTTP server
(``cockpit.host``:``cockpit.port``, default 127.0.0.1:9183), so the same cockpit runs on a
real StackStorm and in st2lite. It reads incidents from the datastore and executions through
st2's API (``cockpit.st2_api_url`` with ``cockpit.st2_api_key``); people log in with their
st2 users. Everything it serves is in the pack (``cockpit/``): no CDN, no build step.
Dispatches no triggers. ``cockpit.enabled: false`` keeps it idle.
"""

from __future__ import annotations

import os
import sys

# st2 puts actions/lib on the path of actions only; sensors add it themselves.
_LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "actions", "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)

from cockpit_http import CockpitServer  # noqa: E402
from serving_sensor import ServingSensor  # noqa: E402


class CockpitSensor(ServingSensor):
    def setup(self) -> None:
        super().setup()
        section = (self.config or {}).get("cockpit") or {}
        if section.get("enabled", True) is False:
            return
        try:
            # Bound in setup(): the port is taken (or the clash reported) before run() begins.
            self._server = CockpitServer(self.sensor_service, self.config, self._logger)
        except OSError as exc:
            self._logger.error("cockpit not started on %s:%s: %s", section.get("host", "127.0.0.1"), section.get("port", 9183), exc)
            return
        self._logger.info("cockpit on http://%s:%s/", self._server.host, self._server.port)
