"""Where st2lite keeps its state and how it is reached, from the environment.

| variable            | default                              | what                                  |
|---------------------|--------------------------------------|---------------------------------------|
| AEGIS_HOME          | ``$XDG_DATA_HOME/aegis`` (~/.local/share/aegis) | all state: datastore, history, configs, logs |
| AEGIS_PACKS_DIR     | ``packs/`` beside the st2lite package | packs to load (st2's /opt/stackstorm/packs) |
| AEGIS_VIRTUALENVS   | ``$AEGIS_HOME/virtualenvs``          | one virtualenv per pack               |
| AEGIS_API_LISTEN    | ``127.0.0.1:9181``                   | ``/metrics`` and ``/healthz``         |
| AEGIS_WORKERS       | ``2``                                | warm python-action workers per pack   |
| AEGIS_SHUTDOWN_GRACE| ``30``                               | seconds running executions get to finish on SIGTERM |

    >>> settings = Settings.from_env()
    >>> settings.history_db.name
    'history.sqlite'
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
PACK_ENV_DIR = Path(__file__).resolve().parent / "pack_env"


def _default_home() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data_home) / "aegis"


class StartupError(Exception):
    """A configuration or start-up problem, told as lines naming the file or variable, key and fix.

    The CLI prints each line (no traceback) and exits non-zero.
    """

    def __init__(self, *lines: str) -> None:
        super().__init__("; ".join(lines))
        self.lines = list(lines)


def _parse_listen(value: str, variable: str = "AEGIS_API_LISTEN") -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise StartupError(f"{variable}={value!r} is not a listen address; set it to HOST:PORT, e.g. 127.0.0.1:9181")
    return host, int(port)


def _env_number(name: str, default: str, cast: type) -> Any:
    value = os.environ.get(name, default)
    try:
        number = cast(value)
    except ValueError:
        raise StartupError(f"{name}={value!r} is not a{'n integer' if cast is int else ' number'}; "
                           f"unset it or set e.g. {name}={default}") from None
    if number < 0:
        raise StartupError(f"{name}={value!r} is negative; unset it or set e.g. {name}={default}")
    return number


@dataclass
class Settings:
    home: Path
    packs_dir: Path
    virtualenvs_dir: Path
    api_host: str = "127.0.0.1"
    api_port: int = 9181
    workers_per_pack: int = 2
    shutdown_grace: float = 30.0
    config_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.config_dir = self.home / "configs"

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        env = os.environ
        home = Path(overrides.pop("home", None) or env.get("AEGIS_HOME") or _default_home()).expanduser()
        packs_dir = Path(overrides.pop("packs_dir", None) or env.get("AEGIS_PACKS_DIR") or REPO_ROOT / "packs")
        venvs = Path(overrides.pop("virtualenvs_dir", None) or env.get("AEGIS_VIRTUALENVS") or home / "virtualenvs")
        host, port = _parse_listen(env.get("AEGIS_API_LISTEN", "127.0.0.1:9181"))
        workers = _env_number("AEGIS_WORKERS", "2", int)
        grace = _env_number("AEGIS_SHUTDOWN_GRACE", "30", float)
        settings = cls(
            home=home,
            packs_dir=packs_dir.resolve(),
            virtualenvs_dir=venvs.resolve(),
            api_host=host,
            api_port=port,
            workers_per_pack=workers,
            shutdown_grace=grace,
        )
        for key, value in overrides.items():
            setattr(settings, key, value)
        return settings

    @property
    def datastore_db(self) -> Path:
        return self.home / "datastore.sqlite"

    @property
    def history_db(self) -> Path:
        return self.home / "history.sqlite"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    def pack_config_file(self, pack_ref: str) -> Path:
        return self.config_dir / f"{pack_ref}.yaml"

    def ensure_dirs(self) -> None:
        os.umask(0o077)  # the home holds secrets: what the runtime and its children create is 0600/0700
        for path in (self.home, self.config_dir, self.logs_dir, self.run_dir):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.home.chmod(0o700)  # also a home made by an older version, or by hand
