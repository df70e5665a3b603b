"""docker-compose.yml, the production path: its structure, checked without a Docker daemon.

What must hold: StackStorm 3.9's official images in the st2-docker layout, the stores st2
needs, the monitoring stack and the victim; the pack mounted and registered; every file
mounted from the repository exists; Alertmanager posts to the pack's webhook sensor with a
bearer token; the sensor's config listens where Alertmanager posts. ``docker compose
config`` validates the file where the compose plugin is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO

COMPOSE = REPO / "docker-compose.yml"
ST2_SERVICES = {
    "st2api", "st2auth", "st2stream", "st2rulesengine", "st2sensorcontainer", "st2workflowengine",
    "st2actionrunner", "st2scheduler", "st2notifier", "st2garbagecollector", "st2web", "st2chatops",
}  # fmt: skip
OTHER_SERVICES = {"mongo", "rabbitmq", "redis", "prometheus", "alertmanager", "victim"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # merge keys (<<) resolved as compose resolves them


def _mounts(service: dict) -> list[tuple[str, str, str]]:
    """(source, target, mode) of each short-syntax volume."""
    out = []
    for spec in service.get("volumes") or []:
        parts = spec.split(":")
        out.append((parts[0], parts[1], parts[2] if len(parts) > 2 else "rw"))
    return out


def _mounted_at(service: dict, target: str) -> str | None:
    return next((src for src, dst, _ in _mounts(service) if dst == target), None)


def test_services_and_images(compose):
    services = compose["services"]
    assert ST2_SERVICES | OTHER_SERVICES <= set(services)
    for name in ST2_SERVICES:
        image = services[name]["image"]
        assert image == f"stackstorm/{name}:${{ST2_VERSION:-3.9}}", (name, image)
    # st2client and the key generator use the action runner's image, as in st2-docker.
    assert services["st2client"]["image"] == "stackstorm/st2actionrunner:${ST2_VERSION:-3.9}"
    for name in ("mongo", "rabbitmq", "redis", "prometheus", "alertmanager"):
        assert ":" in services[name]["image"] and not services[name]["image"].endswith(":latest"), name
    assert services["victim"]["build"] == "./demo/victim"


def test_every_mounted_path_exists_and_named_volumes_are_declared(compose):
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for source, _target, mode in _mounts(service):
            assert mode in ("ro", "rw"), (name, source, mode)
            if source.startswith(("./", "/")):
                if source == "/var/run/docker.sock":
                    continue  # the host's Docker socket, not a repository path
                assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in declared, f"{name} uses volume {source!r}, not declared"
    build = REPO / compose["services"]["victim"]["build"]
    assert (build / "Dockerfile").is_file()


def test_pack_runbooks_and_config_are_mounted_where_st2_reads_them(compose):
    services = compose["services"]
    for name in ("st2api", "st2actionrunner", "st2sensorcontainer", "st2client"):
        assert _mounted_at(services[name], "/opt/stackstorm/packs.dev/aegis") == "./packs/aegis", name
    for name in ("st2api", "st2actionrunner", "st2sensorcontainer"):
        assert _mounted_at(services[name], "/opt/stackstorm/configs/aegis.yaml") == "./demo/compose/aegis.yaml", name
    for name in ("st2actionrunner", "st2sensorcontainer"):
        assert _mounted_at(services[name], "/opt/stackstorm/aegis/knowledge") == "./knowledge", name
        assert _mounted_at(services[name], "/opt/stackstorm/virtualenvs") == "stackstorm-virtualenvs", name
        assert _mounted_at(services[name], "/opt/stackstorm/aegis/index") == "aegis-index", name
    # st2 looks for packs in packs.dev because the st2 config says so.
    st2conf = (REPO / "demo/compose/st2.conf").read_text()
    assert "packs_base_paths = /opt/stackstorm/packs.dev" in st2conf
    assert all(_mounted_at(services[n], "/etc/st2/st2.docker.conf") == "./demo/compose/st2.conf"
               for n in ST2_SERVICES - {"st2web", "st2chatops"})  # fmt: skip
    # The pack is registered and its virtualenv built from requirements.txt by st2's own action.
    register = (REPO / "demo/compose/register-aegis.sh").read_text()
    assert "st2 pack register /opt/stackstorm/packs.dev/aegis" in register
    assert "st2 run packs.setup_virtualenv packs=aegis" in register
    assert services["st2client"]["command"] == "/register-aegis.sh"
    config = yaml.safe_load((REPO / "demo/compose/aegis.yaml").read_text())
    assert config["knowledge"]["runbooks_dir"] == "/opt/stackstorm/aegis/knowledge/runbooks"
    assert (REPO / "knowledge" / "runbooks").is_dir()


def test_alertmanager_posts_to_the_sensor_with_a_bearer_token(compose):
    am = yaml.safe_load((REPO / "demo/compose/alertmanager.yml").read_text())
    receiver = next(r for r in am["receivers"] if r["name"] == am["route"]["receiver"])
    hook = receiver["webhook_configs"][0]
    config = yaml.safe_load((REPO / "demo/compose/aegis.yaml").read_text())["alertmanager"]
    assert hook["url"] == f"http://st2sensorcontainer:{config['port']}{config['path']}"
    assert hook["send_resolved"] is True
    assert hook["http_config"]["authorization"]["type"] == "Bearer"
    assert config["host"] == "0.0.0.0" and config["auth"]["type"] == "bearer"
    assert "decrypt_kv" in config["auth"]["token"], "the token comes from the datastore"
    # The token file Alertmanager reads is the one register-aegis.sh stores in the datastore.
    token_file = hook["http_config"]["authorization"]["credentials_file"]
    mount = _mounted_at(compose["services"]["alertmanager"], str(Path(token_file).parent))
    assert (REPO / mount / Path(token_file).name).is_file()
    assert f"/run/secrets/aegis/{Path(token_file).name}" in (REPO / "demo/compose/register-aegis.sh").read_text()
    # Prometheus evaluates the demo's rules and sends to this Alertmanager.
    prom = yaml.safe_load((REPO / "demo/compose/prometheus.yml").read_text())
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    rules_target = prom["rule_files"][0]
    assert _mounted_at(compose["services"]["prometheus"], rules_target) == "./demo/config/alert_rules.yml"


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config_accepts_the_file(tmp_path):
    command = _compose_command()
    if command is None:
        pytest.skip("neither the docker compose plugin nor docker-compose is installed (a tool, not a service): "
                    "scripts/setup.sh --services installs Debian's docker-compose")
    proc = subprocess.run([*command, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    # The same tool refuses a broken copy: the check above is a real validation.
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["victim"]["restart"] = {"policy": "always"}
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken))
    proc = subprocess.run([*command, "-f", str(tmp_path / "docker-compose.yml"), "config", "--quiet"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode != 0 and "restart" in proc.stderr, proc.stderr
