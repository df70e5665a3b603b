"""aegis.KnowledgeServiceSensor: hosts the knowledge service in st2's sensor container.

st2 runs each python action in a fresh process, so an action that loads the embedding
model itself pays ~9 s (torch + sentence-transformers import) on every alert. Sensors are
long-running processes, so this one loads the model and the index once and serves
searches on 127.0.0.1:<knowledge.service_port> (default 9182); actions ask it first and
fall back to in-process search when it is not there. It dispatches no triggers.

Only the pack's actions may use it: on first start it generates a shared secret into the
datastore (encrypted system key ``aegis.knowledge_service.token``), which the actions read
(``knowledge_service.client_settings``); a request without it is refused.

Disable it (st2 sensor disable aegis.KnowledgeServiceSensor) to make every action
search in-process, e.g. when the action runners are on other hosts than the sensor
container (then run ``aegis_cli.py knowledge serve`` on each runner host instead).
"""

from __future__ import annotations

import os
import sys

# st2 puts actions/lib on the path of actions only; sensors add it themselves.
_LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "actions", "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)

from knowledge_service import KnowledgeService, ensure_token, read_token  # noqa: E402
from serving_sensor import ServingSensor  # noqa: E402

from knowledge import KnowledgeSettings  # noqa: E402


class KnowledgeServiceSensor(ServingSensor):
    def open_server(self) -> KnowledgeService | None:
        settings = KnowledgeSettings.from_config(self.config)
        ensure_token(self.sensor_service)
        service = KnowledgeService(settings, lambda: read_token(self.sensor_service))
        self._logger.info("loading model %s and index %s", settings.embedding_model, settings.index_dir)
        try:
            service.open()
        except OSError as exc:
            # another process (a second sensor node, a manual `knowledge serve`) owns the
            # port: actions are served by it, so stay idle instead of crash-looping
            self._logger.warning("knowledge service not started on port %s: %s", settings.service_port, exc)
            return None
        self._logger.info("knowledge service listening on %s:%s", service.host, service.port)
        return service
