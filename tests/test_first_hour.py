"""A new user's first hour (issue 11 part 7): clear one-line errors, a CLI that leaves the
service alone, help that shows everything."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from conftest import FIXTURE_PACKS, run_cli, start_runtime, wait_for


def _write_config(env: dict[str, str], text: str) -> Path:
    path = Path(env["AEGIS_HOME"]) / "configs" / "aegis.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        ("mode: off\n", ["mode:", "not one of", "YAML reads unquoted", "off", "quote it"]),
        ("alertmanager:\n  port: nine\n", ["alertmanager.port:", "'nine' is not of type 'integer'", "number"]),
        ("alertmanager:\n  port: [\n", ["invalid YAML", "line"]),
        ("diagnosis:\n  min_confidence: 5\n", ["diagnosis.min_confidence:", "from 0 to 1"]),
    ],
    ids=["mode-off", "port-not-a-number", "yaml-syntax", "out-of-range"],
)
@pytest.mark.parametrize("command", [["run"], ["alias", "execute", "aegis mode monitor"]], ids=["run", "alias"])
def test_a_bad_config_is_one_line_naming_file_key_and_fix(aegis_env, config, fragments, command):
    aegis_env.pop("AEGIS_PACKS_DIR", None)
    path = _write_config(aegis_env, config)
    result = run_cli(command, aegis_env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("aegis: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"aegis: {path}: ")
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_a_port_in_use_is_one_line(aegis_env):
    aegis_env["AEGIS_PACKS_DIR"] = str(FIXTURE_PACKS / "svctest")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        aegis_env["AEGIS_API_LISTEN"] = f"127.0.0.1:{taken.getsockname()[1]}"
        result = run_cli(["run"], aegis_env, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("aegis: ")]
    assert "AEGIS_API_LISTEN" in line and "in use" in line and "free port" in line


@pytest.mark.parametrize(("variable", "value"), [("AEGIS_API_LISTEN", "9181"), ("AEGIS_WORKERS", "two")])
def test_a_bad_environment_variable_is_one_line(aegis_env, variable, value):
    aegis_env[variable] = value
    result = run_cli(["execution", "list"], aegis_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"aegis: {variable}={value!r}"), result.stderr


def test_cli_commands_leave_the_service_metrics_alone(aegis_env):
    """`alias execute`, `alias match` and `action execute` beside a running service."""
    aegis_env["AEGIS_PACKS_DIR"] = str(FIXTURE_PACKS / "svctest")
    log_file = Path(aegis_env["AEGIS_HOME"]).parent / "runtime.log"
    proc = start_runtime(aegis_env, log_file)
    url = f"http://{aegis_env['AEGIS_API_LISTEN']}"

    def ready():
        assert proc.poll() is None, log_file.read_text()
        try:
            return requests.get(f"{url}/readyz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_for(ready, timeout=60, what="/readyz 200")
        metrics_dir = Path(aegis_env["AEGIS_HOME"]) / "run" / "metrics"
        # A pack process's counter, written as the service's sensors and workers write theirs.
        code = "from prometheus_client import Counter; Counter('aegis_marker', 'a pack metric').inc(3)"
        subprocess.run([sys.executable, "-c", code], env={**aegis_env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
                       check=True)  # fmt: skip
        series = "aegis_marker_total 3.0"
        assert series in requests.get(f"{url}/metrics", timeout=5).text
        for command in (["action", "execute", "svctest.slow", "n=1", "seconds=0"],
                        ["alias", "match", "nothing matches this"], ["alias", "list"]):  # fmt: skip
            run_cli(command, aegis_env)
        assert series in requests.get(f"{url}/metrics", timeout=5).text, "a CLI command emptied the service's metrics"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_help_lists_every_command_with_help_text(aegis_env):
    aegis_env.pop("AEGIS_PACKS_DIR", None)
    text = run_cli(["--help"], aegis_env).stdout
    for command in ("run", "validate", "alias", "execution", "key", "knowledge", "diagnose", "eval"):
        assert f"\n    {command} " in text or f"\n    {command}\n" in text, (command, text)
    options = run_cli(["execution", "list", "--help"], aegis_env).stdout
    for option in ("--action", "--status", "-n", "--all", "--json"):
        line = next(x for x in options.splitlines() if x.strip().startswith(option))
        assert len(line.split()) > 1 or option == "-n", f"{option} has no help text: {options}"


def test_execution_list_rejects_an_unknown_status(aegis_env):
    result = run_cli(["execution", "list", "--status", "bogus"], aegis_env)
    assert result.returncode == 2
    assert "invalid choice: 'bogus'" in result.stderr and "'succeeded'" in result.stderr and "'abandoned'" in result.stderr


def test_alias_list_and_an_unknown_alias_lists_the_formats(aegis_env):
    aegis_env.pop("AEGIS_PACKS_DIR", None)
    listed = run_cli(["alias", "list"], aegis_env)
    assert listed.returncode == 0 and "aegis mode <monitor|advisory|auto|clear>" in listed.stdout
    # ("aegis <anything>" is the pack's catch-all help alias, which suggests the closest commands)
    unknown = run_cli(["alias", "execute", "frobnicate the cluster"], aegis_env)
    assert unknown.returncode == 2
    assert "matched no patterns" in unknown.stderr and "\n  aegis mode" in unknown.stderr, unknown.stderr
