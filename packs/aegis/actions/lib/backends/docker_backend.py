"""Docker containers through the docker SDK (the Engine API).

    dock = Docker.from_config({"base_url": "unix:///var/run/docker.sock"})
    dock.describe("checkout-1")     # {"id": ..., "name": ..., "status": "running", "started_at": ...}
    dock.restart("checkout-1")      # POST /containers/{id}/restart
    dock.compose_scale_plan("shop", "web", step=1, maximum=6)   # Docker Compose service scale

Config ``docker``: ``base_url`` (``unix:///var/run/docker.sock`` or ``tcp://host:2375``),
``api_version`` (``1.41``; pinned so no version probe is needed), ``timeout`` (60),
``stop_timeout`` (seconds the container gets to stop, 10).
"""

from __future__ import annotations

from typing import Any

import docker
from docker.errors import DockerException, NotFound

from backends import BackendError

PROJECT, SERVICE, NUMBER = "com.docker.compose.project", "com.docker.compose.service", "com.docker.compose.container-number"


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

    # -- Docker Compose service scale, through the Engine API (what `docker compose up
    # --scale` does for new replicas: a container like the existing ones, numbered on)

    def _service_containers(self, project: str, service: str) -> list[Any]:
        try:
            return self._client.containers.list(filters={"label": [f"{PROJECT}={project}", f"{SERVICE}={service}"]})
        except DockerException as exc:
            raise BackendError(f"docker: {exc}") from exc

    def compose_scale_plan(self, project: str, service: str, step: int, maximum: int, approved: bool = False) -> dict[str, Any]:
        running = self._service_containers(project, service)
        if not running:
            raise BackendError(f"docker compose: no running container of service {service!r} in project {project!r}")
        current = len(running)
        wanted = min(current + step, maximum) if approved else min(current + step, maximum, 2 * current)
        if wanted <= current:
            raise BackendError(f"docker compose: {project}/{service} already has {current} replicas (max {maximum})")
        template = max(running, key=lambda c: int(c.labels.get(NUMBER, 0) or 0))
        first = int(template.labels.get(NUMBER, current) or current) + 1
        names = [f"{project}-{service}-{n}" for n in range(first, first + wanted - current)]
        return {"project": project, "service": service, "replicas_from": current, "replicas_to": wanted,
                "template": template.id, "new_containers": names,
                "commands": [f"docker compose -p {project} up -d --no-recreate --scale {service}={wanted}"]}

    def compose_scale(self, plan: dict[str, Any]) -> dict[str, Any]:
        template = self._client.containers.get(plan["template"])
        config = template.attrs.get("Config") or {}
        networks = list(((template.attrs.get("NetworkSettings") or {}).get("Networks") or {}).keys())
        created = []
        try:
            for name in plan["new_containers"]:
                number = name.rsplit("-", 1)[1]
                container = self._client.containers.create(
                    config.get("Image"), command=config.get("Cmd"), name=name, environment=config.get("Env"),
                    labels={**(config.get("Labels") or {}), NUMBER: number}, network=networks[0] if networks else None,
                )
                container.start()
                created.append(container.id)
        except DockerException as exc:
            raise BackendError(f"docker compose: scale {plan['service']}: {exc} (started so far: {len(created)})") from exc
        return {"replicas_from": plan["replicas_from"], "started": created,
                "replicas": len(self._service_containers(plan["project"], plan["service"]))}
