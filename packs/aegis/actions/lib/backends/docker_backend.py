"""Docker containers through the docker SDK (the Engine API).

    dock = Docker.from_config({"base_url": "unix:///var/run/docker.sock"})
    dock.describe("checkout-1")     # {"id": ..., "name": ..., "status": "running", "started_at": ...}
    dock.restart("checkout-1")      # POST /containers/{id}/restart

Config ``docker``: ``base_url`` (``unix:///var/run/docker.sock`` or ``tcp://host:2375``),
``api_version`` (``1.41``; pinned so no version probe is needed), ``timeout`` (60),
``stop_timeout`` (seconds the container gets to stop, 10).
"""

from __future__ import annotations

from typing import Any

import docker
from docker.errors import DockerException, NotFound

from backends import BackendError


class Docker:
    def __init__(self, base_url: str, api_version: str = "1.41", timeout: float = 60, stop_timeout: int = 10) -> None:
        self._client = docker.DockerClient(base_url=base_url, version=api_version, timeout=int(timeout))
        self._stop_timeout = int(stop_timeout)

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> Docker:
        return cls(section.get("base_url") or "unix:///var/run/docker.sock", section.get("api_version") or "1.41",
                   section.get("timeout") or 60, section.get("stop_timeout") or 10)

    def _container(self, name: str) -> Any:
        try:
            return self._client.containers.get(name)
        except NotFound as exc:
            raise BackendError(f"docker: no container {name!r}") from exc
        except DockerException as exc:
            raise BackendError(f"docker: {exc}") from exc

    def describe(self, name: str) -> dict[str, Any]:
        c = self._container(name)
        state = c.attrs.get("State") or {}
        return {"id": c.id, "name": c.name, "status": c.status, "started_at": state.get("StartedAt"),
                "image": (c.attrs.get("Config") or {}).get("Image")}

    def restart(self, name: str) -> dict[str, Any]:
        c = self._container(name)
        before = self.describe(name)
        try:
            c.restart(timeout=self._stop_timeout)
        except DockerException as exc:
            raise BackendError(f"docker: restart {name}: {exc}") from exc
        return {"before": before, "after": self.describe(name)}
