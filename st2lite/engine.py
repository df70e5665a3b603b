"""The runtime: loads packs, matches trigger instances to rules, runs and records executions.

It plays the parts of st2's rules engine, action runners (python-script in warm workers,
orquesta with the real conductor, noop), workflow engine and execution history.

    runtime = Runtime(Settings.from_env())
    runtime.start()                      # sensors, trigger processing
    ex_id = runtime.execute("core.noop", {})
    runtime.wait(ex_id)["status"]        # 'succeeded'
    runtime.stop()

Supported runners: ``python-script``, ``orquesta``, ``noop``, ``inquirer``; the built-in
``core`` pack has ``core.noop``, ``core.echo`` and ``core.ask`` (st2's inquiries: see
``st2lite.control``, which also pauses, resumes and cancels workflows). Any other runner type fails its executions with a
clear error (st2lite runs no shell, remote or HTTP runners). The packs' action policies
(concurrency, retry: ``st2lite.policies``) apply to every execution, tasks included.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import shims  # noqa: F401  (before anything imports orquesta)
from .control import ExecutionControl, Inquiries
from .criteria import RuleMatchingError, match_rules
from .loader import (
    ActionMeta,
    ConfigError,
    Pack,
    RuleMeta,
    load_pack,
    load_pack_config,
    suggest,
    unknown_config_sections,
)
from .metrics import RuntimeMetrics
from .pack_env.pack_runtime import records as rec
from .pack_env.pack_runtime.datastore import KeyValueStore
from .pack_env.pack_runtime.records import Records
from .pack_processes import WorkerPool
from .params import ParameterValidationError, mask_secrets, merged_parameter_schema, validate_parameters
from .policies import ExecutionRequest, PolicyEngine
from .sensor_container import SensorProcess, SensorSpec
from .settings import Settings, StartupError
from .templating import RenderError, build_context, get_cast, render_action_parameters, render_template
from .virtualenv import ensure_pack_virtualenv
from .workflow import TaskActionRequest, WorkflowHost, WorkflowSpecError, precompile

LOG = logging.getLogger(__name__)

DEFAULT_USER = "stanley"  # st2's default system user
PYTHON_DEFAULT_TIMEOUT = 600  # st2's python-script runner default, in seconds
SWEEP_GRACE = 5.0  # seconds before the sweep takes a trigger instance no sensor announced
INQUIRY_DEFAULT_SCHEMA: dict[str, Any] = {  # st2's inquirer runner default
    "title": "response_data",
    "type": "object",
    "properties": {"continue": {"type": "boolean", "description": "Would you like to continue the workflow?", "required": True}},
}

# Runner parameters of the runners st2lite supports (st2's runner metadata); an action's
# own parameters may override their attributes (e.g. a shorter ``timeout`` default).
RUNNER_PARAMETERS: dict[str, dict[str, dict[str, Any]]] = {
    "python-script": {
        "timeout": {"type": "integer", "default": PYTHON_DEFAULT_TIMEOUT, "description": "seconds before the action is killed"},
        "env": {"type": "object", "description": "environment variables for the action"},
        "log_level": {"type": "string", "default": "DEBUG", "enum": ["AUDIT", "CRITICAL", "DEBUG", "ERROR", "INFO", "WARNING"]},
        "debug": {"type": "boolean", "default": False},
    },
    "orquesta": {},
    "noop": {},
    # st2's inquirer runner (contrib/runners/inquirer_runner/runner.yaml): core.ask.
    "inquirer": {
        "schema": {"type": "object", "required": True, "default": INQUIRY_DEFAULT_SCHEMA,
                   "description": "A JSON schema that will be used to validate the response data"},
        "route": {"type": "string", "default": "", "description": "An arbitrary value for allowing rules to route to proper notification channel"},
        "roles": {"type": "array", "default": [], "description": "A list of roles that are permitted to respond to the action (RBAC: not enforced by st2lite)"},
        "users": {"type": "array", "default": [], "description": "A list of usernames that are permitted to respond to the action (if nothing provided, all are permitted)"},
        "ttl": {"type": "integer", "default": 1440, "required": True,
                "description": "Time (in minutes) to wait before timing out the inquiry if no response is received"},
    },
}
SUPPORTED_RUNNERS = tuple(RUNNER_PARAMETERS)


def _core_actions() -> dict[str, ActionMeta]:
    """The slice of st2's ``core`` pack that st2lite provides natively."""
    def make(name: str, runner: str, params: dict[str, Any], description: str) -> ActionMeta:
        meta = {"name": name, "pack": "core", "runner_type": runner, "description": description, "parameters": params}
        return ActionMeta(
            ref=f"core.{name}", name=name, pack="core", runner_type=runner, entry_point=None, entry_point_path=None,
            parameters=params, enabled=True, timeout=None, output_schema=None, meta=meta, file=Path("<builtin>"),
        )  # fmt: skip

    return {
        "core.noop": make("noop", "noop", {}, "Do nothing (st2's core.noop)."),
        "core.echo": make(
            "echo", "noop", {"message": {"type": "string", "required": True}},
            "Return the message (st2's core.echo; st2 runs it with the local shell runner).",
        ),
        "core.ask": make("ask", "inquirer", {}, "Action for initiating an Inquiry (usually in a workflow)"),
    }


@dataclass
class PackRuntime:
    pack: Pack
    config: dict[str, Any]
    config_file: Path
    python: Path | None = None
    pool: WorkerPool | None = None
    sensors: list[SensorProcess] = field(default_factory=list)


class Runtime:
    """One runtime. ``service=True`` only for ``aegis run``: it owns ``$AEGIS_HOME/run/metrics``
    (emptied at start); any other runtime (a CLI command beside a running service) gets a
    private metrics directory, removed at ``stop()``, and so never touches the service's.
    """

    def __init__(self, settings: Settings, build_virtualenvs: bool = True, service: bool = False) -> None:
        self.settings = settings
        settings.ensure_dirs()
        self.store = KeyValueStore(str(settings.datastore_db))
        self.records = Records(str(settings.history_db))
        self._build_virtualenvs = build_virtualenvs
        self.packs: dict[str, PackRuntime] = {}
        self.actions: dict[str, ActionMeta] = _core_actions()
        self.rules: list[RuleMeta] = []
        self.trigger_types: dict[str, dict[str, Any]] = {}
        self._trigger_queue: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._was_ready = False
        self._trigger_processor: threading.Thread | None = None
        self._done: dict[str, threading.Event] = {}
        self._done_lock = threading.Lock()
        self.started_at: float | None = None
        #: Pause, resume, cancel of executions and st2's inquiries (``st2lite.control``).
        self.control = ExecutionControl(self)
        self.inquiries = Inquiries(self)
        self._load_packs()  # first: a bad config raises StartupError before anything is created
        self.metrics = RuntimeMetrics(settings.run_dir / "metrics" if service else None)
        #: The action policies of the loaded packs (``policies.describe()`` lists them).
        self.policies = PolicyEngine.from_packs((p.pack for p in self.packs.values()), resubmit=self._resubmit)

    # -- packs -------------------------------------------------------------------------

    def _pack_dirs(self) -> list[Path]:
        root = self.settings.packs_dir
        if (root / "pack.yaml").exists():
            return [root]
        return sorted(p for p in root.iterdir() if (p / "pack.yaml").exists()) if root.is_dir() else []

    def _load_packs(self) -> None:
        for pack_dir in self._pack_dirs():
            pack = load_pack(pack_dir)
            for problem in pack.problems:
                LOG.warning("pack %s: %s", pack.ref, problem)
            config_path = self.settings.pack_config_file(pack.ref)
            try:
                config = load_pack_config(pack, config_path if config_path.exists() else None)
                config = render_template(config, build_context(self.store, user=DEFAULT_USER))
            except ConfigError as exc:
                raise StartupError(*(f"{p.file}: {p.field or '(root)'}: {p.message}" for p in exc.problems)) from None
            except RenderError as exc:
                raise StartupError(f"{config_path}: a value cannot be rendered: {exc}") from None
            for key in unknown_config_sections(pack, config):
                # st2 accepts (and ignores) them, so a warning: usually a misspelled section.
                LOG.warning("%s: %s: not in the pack's config.schema.yaml; it is ignored%s",
                            config_path, key, suggest(key, pack.config_schema))
            config_file = self.settings.run_dir / "configs" / f"{pack.ref}.json"
            config_file.parent.mkdir(parents=True, exist_ok=True)
            # The rendered config may carry secrets: readable by this user only.
            fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(config, fh)
            for action in pack.actions.values():
                if action.runner_type not in SUPPORTED_RUNNERS:
                    LOG.warning("action %s uses runner %s, which st2lite does not run (supported: %s); its "
                                "executions will fail", action.ref, action.runner_type, ", ".join(SUPPORTED_RUNNERS))
            self.packs[pack.ref] = PackRuntime(pack=pack, config=config, config_file=config_file)
            self.actions.update(pack.actions)
            self.rules.extend(pack.rules)
            self.trigger_types.update(pack.trigger_types)
            LOG.info(
                "loaded pack %s: %d actions, %d sensors, %d rules",
                pack.ref, len(pack.actions), len(pack.sensors), len(pack.rules),
            )  # fmt: skip

    def _pack_python(self, pack_rt: PackRuntime) -> Path:
        if pack_rt.python is None:
            if not self._build_virtualenvs:
                raise RuntimeError(f"pack {pack_rt.pack.ref} has no virtualenv and building them is disabled")
            pack_rt.python = ensure_pack_virtualenv(pack_rt.pack.path, self.settings.virtualenvs_dir, pack_rt.pack.ref)
        return pack_rt.python

    def _pool(self, pack_rt: PackRuntime) -> WorkerPool:
        if pack_rt.pool is None:
            pack_rt.pool = WorkerPool(
                python=self._pack_python(pack_rt),
                pack_dir=pack_rt.pack.path,
                pack_ref=pack_rt.pack.ref,
                config_file=pack_rt.config_file,
                datastore=self.settings.datastore_db,
                size=self.settings.workers_per_pack,
                log_file=self.settings.logs_dir / f"actions.{pack_rt.pack.ref}.log",
                extra_env=self._child_env(),
            )
        return pack_rt.pool

    def _child_env(self) -> dict[str, str]:
        return {"PROMETHEUS_MULTIPROC_DIR": str(self.metrics.multiproc_dir), "AEGIS_HOME": str(self.settings.home)}

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, sensors: bool = True) -> None:
        abandoned = self.records.abandon_in_flight()
        if abandoned:
            LOG.warning("marked %d execution(s) interrupted by a previous stop as abandoned: %s", len(abandoned), ", ".join(abandoned))
        self.started_at = time.time()
        self._trigger_processor = self._spawn(self._process_triggers, "trigger-processor")
        #: Compiles the packs' workflows in the background (join it to wait for them).
        self.precompiler = self._spawn(self._precompile_workflows, "workflow-precompile")
        for pack_rt in self.packs.values():
            if any(a.runner_type == "python-script" for a in pack_rt.pack.actions.values()):
                self._pool(pack_rt).warm_up()
            if sensors:
                self._start_sensors(pack_rt)
        self._trigger_queue.put("")  # sweep what sensors recorded while we were down
        self.inquiries.start()  # st2's garbage collector: inquiries past their ttl time out
        self._started.set()

    def _precompile_workflows(self) -> None:
        """Parse, inspect and compose every workflow once, so the first alert does not wait on it."""
        for action in list(self.actions.values()):
            if action.runner_type == "orquesta" and action.entry_point_path and not self._stopping.is_set():
                try:
                    precompile(Path(action.entry_point_path).read_text())
                except Exception:  # its executions will report the problem
                    LOG.debug("precompiling %s failed", action.ref, exc_info=True)

    def _start_sensors(self, pack_rt: PackRuntime) -> None:
        for sensor in pack_rt.pack.sensors:
            if not sensor.enabled:
                LOG.info("sensor %s is disabled", sensor.ref)
                continue
            spec = SensorSpec(
                ref=sensor.ref, pack_ref=pack_rt.pack.ref, pack_dir=pack_rt.pack.path, python=self._pack_python(pack_rt),
                file=sensor.entry_point_path, class_name=sensor.class_name,
                trigger_types={ref: tt for ref, tt in pack_rt.pack.trigger_types.items()},
                config_file=pack_rt.config_file, poll_interval=sensor.poll_interval, extra_env=self._child_env(),
                triggers=self._triggers_for(pack_rt.pack.trigger_types),
            )  # fmt: skip
            process = SensorProcess(
                spec, datastore=self.settings.datastore_db, records=self.settings.history_db,
                log_file=self.settings.logs_dir / f"sensor.{sensor.ref}.log",
                on_trigger=self._trigger_queue.put, on_restart=self.metrics.sensor_restarted,
            )  # fmt: skip
            process.start()
            pack_rt.sensors.append(process)

    def _triggers_for(self, trigger_types: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """st2's triggers: one per distinct (type, parameters) that enabled rules ask for."""
        triggers: dict[str, dict[str, Any]] = {}
        for rule in self.rules:
            if not rule.enabled or rule.trigger_type not in trigger_types:
                continue
            key = json.dumps([rule.trigger_type, rule.trigger_parameters], sort_keys=True)
            pack, _, name = rule.trigger_type.partition(".")
            triggers.setdefault(key, {
                "id": rec.new_id(), "uid": f"trigger:{pack}:{name}:{len(triggers)}", "name": name, "pack": pack,
                "type": rule.trigger_type, "ref": rule.trigger_type, "parameters": rule.trigger_parameters,
            })  # fmt: skip
        return list(triggers.values())

    def stop(self, grace: float = 0.0) -> None:
        """Stop taking work, let running executions finish for up to ``grace`` seconds, stop.

        Sensors stop first (a webhook then refuses connections and Alertmanager retries
        later); what was already recorded but not processed stays pending for the next
        start. Executions still running after ``grace`` are marked abandoned at the next start.
        """
        self._stopping.set()
        left = self.policies.close()
        if left:
            LOG.warning("%d delayed execution(s) not started before stop (abandoned at next start): %s", len(left), ", ".join(left))
        self._trigger_queue.put(None)
        sensors = [sensor for pack_rt in self.packs.values() for sensor in pack_rt.sensors]
        for sensor in sensors:  # SIGTERM to all, then wait: they clean up side by side
            sensor.request_stop()
        for sensor in sensors:
            sensor.stop()
        if self._trigger_processor is not None:
            self._trigger_processor.join(timeout=5)
        self.inquiries.stop()
        self._drain(grace)
        for pack_rt in self.packs.values():
            if pack_rt.pool:
                pack_rt.pool.close()
        self.metrics.close()

    def _drain(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        while True:
            with self._done_lock:
                running = list(self._done)
            if not running:
                return
            if time.monotonic() >= deadline:
                LOG.warning("stopping with %d execution(s) still running (abandoned at next start): %s",
                            len(running), ", ".join(running))
                return
            LOG.info("waiting for %d running execution(s) to finish", len(running))
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def _spawn(self, target: Any, name: str, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        return thread

    def health(self) -> dict[str, Any]:
        """Readiness, as ``/healthz`` and ``/readyz`` report it.

        ``status`` is ``starting`` until ``start()`` has returned and every enabled sensor
        and every worker pool said it is ready (then the runtime can take alerts: ``ok``);
        ``degraded`` when one is down after that (a sensor restarting, the trigger
        processor dead); ``stopping`` once ``stop()`` began. Only ``ok`` is ready.
        """
        sensors = {
            s.spec.ref: {"running": s.running(), "ready": s.ready(), "restarts": s.restarts}
            for p in self.packs.values() for s in p.sensors
        }  # fmt: skip
        pools = {ref: {"ready": p.pool.ready()} for ref, p in self.packs.items() if p.pool is not None}
        processor = self._trigger_processor is not None and self._trigger_processor.is_alive()
        all_up = (
            self._started.is_set() and processor
            and all(s["ready"] for s in sensors.values()) and all(p["ready"] for p in pools.values())
        )  # fmt: skip
        if self._stopping.is_set():
            status = "stopping"
        elif all_up:
            status = "ok"
            self._was_ready = True
        else:
            status = "degraded" if self._was_ready else "starting"
        return {"status": status, "packs": sorted(self.packs), "sensors": sensors, "worker_pools": pools,
                "trigger_processor": processor}

    @property
    def started(self) -> bool:
        """``start()`` has returned."""
        return self._started.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until ``health()`` says ``ok`` (True) or ``timeout`` passes (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for pack_rt in self.packs.values():
            for waitable in [*pack_rt.sensors, *([pack_rt.pool] if pack_rt.pool else [])]:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not waitable.wait_ready(left):
                    return False
        return self.health()["status"] == "ok"

    # -- rules -------------------------------------------------------------------------

    def _process_triggers(self) -> None:
        """Enforce rules on trigger instances as sensors announce them.

        A sensor announces a trigger instance once everything it wrote with it is durable (a
        group commit spans the history and the datastore, committed one after the other), so
        announced instances are processed at once. The sweep, every second, takes pending
        instances that no announcement named (recorded before a restart, or by a sensor that
        died before announcing) only once they are ``SWEEP_GRACE`` seconds old: younger ones
        may still be inside a sensor's group commit, their datastore half not yet visible.
        """
        announced: set[str] = set()
        while not self._stopping.is_set():
            try:
                item = self._trigger_queue.get(timeout=1.0)
            except queue.Empty:
                item = ""  # periodic sweep
            if item is None:
                return
            if item:
                announced.add(item)
            self.sweep_trigger_instances(announced, time.time())

    def sweep_trigger_instances(self, announced: set[str], now: float) -> list[str]:
        """One pass of the trigger processor at time ``now``; returns the ids it processed.

        Takes every pending instance in ``announced`` (and removes it from the set), every
        one left ``processing`` by a runtime that stopped mid-way, and every other pending
        one recorded at least ``SWEEP_GRACE`` seconds before ``now``. A younger unannounced
        instance stays pending for a later pass; a processed one is never taken again.
        """
        swept_before = rec.timestamp(now - SWEEP_GRACE)
        processed = []
        for ti in self.records.pending_trigger_instances():
            if self._stopping.is_set():
                break
            if ti["id"] in announced or ti["status"] == rec.TI_PROCESSING or ti["occurrence_time"] <= swept_before:
                announced.discard(ti["id"])
                self.process_trigger_instance(ti)
                processed.append(ti["id"])
        return processed

    def process_trigger_instance(self, ti: dict[str, Any]) -> list[str]:
        """Enforce every rule matching one recorded trigger instance; return execution ids."""
        self.records.set_trigger_instance_status(ti["id"], rec.TI_PROCESSING)
        self.metrics.trigger_instance(ti["trigger"])
        payload = ti["payload"]
        context = build_context(self.store, trigger_payload=payload, user=DEFAULT_USER)
        rules = [r for r in self.rules if r.trigger_type == ti["trigger"]]
        executions: list[str] = []
        failed = False
        try:
            results = match_rules([dict(r.meta, ref=r.ref) for r in rules], ti["trigger"], payload, context)
        except RuleMatchingError as exc:
            # As st2's rules engine: the exception fails the whole trigger instance, no rule of
            # it is enforced. st2 only logs why; the failed enforcement row says it here too.
            LOG.error("matching rules against trigger instance %s failed: %s", ti["id"], exc)
            self.records.set_trigger_instance_status(ti["id"], rec.TI_PROCESSING_FAILED)
            self.records.record_rule_enforcement(exc.rule, ti["id"], None, "failed", f"rule matching failed: {exc.error}")
            return []
        except Exception as exc:  # never crash on a trigger instance; record why
            LOG.exception("matching rules against trigger instance %s failed", ti["id"])
            self.records.set_trigger_instance_status(ti["id"], rec.TI_PROCESSING_FAILED)
            self.records.record_rule_enforcement("*", ti["id"], None, "failed", f"rule matching failed: {exc}")
            return []
        for rule_meta, result in results:
            # st2's RuleFilter records each error while matching as a failed enforcement.
            for error in result.errors:
                reason = f'Failed to match rule "{rule_meta["ref"]}" against trigger instance "{ti["id"]}": {error}'
                self.records.record_rule_enforcement(rule_meta["ref"], ti["id"], None, "failed", reason)
                self.metrics.rule_enforced(rule_meta["ref"], "failed")
        matched = [(r, res) for r, res in results if res.matched]
        by_ref = {r.ref: r for r in rules}
        for rule_meta, _result in matched:
            rule = by_ref[rule_meta["ref"]]
            try:
                ex_id = self._enforce(rule, ti, payload)
                executions.append(ex_id)
                self.records.record_rule_enforcement(rule.ref, ti["id"], ex_id, "succeeded")
                self.metrics.rule_enforced(rule.ref, "succeeded")
            except Exception as exc:
                failed = True
                LOG.error("rule %s could not be enforced for trigger instance %s: %s", rule.ref, ti["id"], exc)
                self.records.record_rule_enforcement(rule.ref, ti["id"], None, "failed", str(exc))
                self.metrics.rule_enforced(rule.ref, "failed")
        self.records.set_trigger_instance_status(ti["id"], rec.TI_PROCESSING_FAILED if failed else rec.TI_PROCESSED)
        return executions

    def _enforce(self, rule: RuleMeta, ti: dict[str, Any], payload: dict[str, Any]) -> str:
        action = self._action(rule.action_ref)
        pack_rt = self.packs.get(rule.pack)
        context = build_context(
            self.store, trigger_payload=payload, user=DEFAULT_USER,
            action_context={"user": DEFAULT_USER, "pack": rule.pack, "rule": rule.ref, "trigger_instance": ti["id"]},
            config_context=pack_rt.config if pack_rt else {},
        )  # fmt: skip
        schema = self.parameter_schema(action)
        params = render_action_parameters(rule.action_parameters, schema, context)
        return self.execute(
            action.ref, params, rule=rule.ref, trigger_instance_id=ti["id"],
            context={"user": DEFAULT_USER, "rule": {"ref": rule.ref}, "trigger_instance": {"id": ti["id"]}},
        )  # fmt: skip

    # -- executions --------------------------------------------------------------------

    def _action(self, ref: str) -> ActionMeta:
        action = self.actions.get(ref)
        if action is None:
            raise ParameterValidationError(f"action {ref!r} is not registered")
        if not action.enabled:
            raise ParameterValidationError(f"action {ref!r} is disabled")
        return action

    @staticmethod
    def parameter_schema(action: ActionMeta) -> dict[str, Any]:
        """The action's parameters over its runner's, as st2 merges them."""
        return merged_parameter_schema(RUNNER_PARAMETERS.get(action.runner_type, {}), action.parameters)

    def cast_cli_parameters(self, action_ref: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """Cast ``key=value`` strings by the action's parameter types, as st2's CLI does."""
        schema = self.parameter_schema(self._action(action_ref))
        cast_params = {}
        for name, value in parameters.items():
            cast = get_cast((schema.get(name) or {}).get("type"))
            try:
                cast_params[name] = cast(value) if cast and isinstance(value, str) else value
            except (ValueError, TypeError, SyntaxError) as exc:
                raise ParameterValidationError(f"parameter {name!r}: cannot read {value!r} as {schema[name]['type']}: {exc}") from exc
        return cast_params

    def execute(
        self,
        action_ref: str,
        parameters: dict[str, Any],
        *,
        rule: str | None = None,
        trigger_instance_id: str | None = None,
        parent: str | None = None,
        task_name: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> str:
        """Validate parameters, record a ``requested`` execution and run it in the background."""
        ex_id, _future = self._start_execution(action_ref, parameters, rule, trigger_instance_id, parent, task_name, context)
        return ex_id

    def _start_execution(
        self, action_ref: str, parameters: dict[str, Any], rule: str | None, trigger_instance_id: str | None,
        parent: str | None, task_name: str | None, context: dict[str, Any] | None,
    ) -> tuple[str, Future]:  # fmt: skip
        action = self._action(action_ref)
        schema = self.parameter_schema(action)
        params = validate_parameters(schema, parameters)
        ex_id = rec.new_id()
        full_context = {"user": DEFAULT_USER, **(context or {})}
        self.records.create_execution(
            # Recorded as given (defaults left out), secrets masked, as st2 shows them.
            action.ref, action.runner_type, mask_secrets(schema, {k: params[k] for k in parameters if k in params}), context=full_context,
            parent=parent, task_name=task_name, rule=rule, trigger_instance_id=trigger_instance_id, execution_id=ex_id,
        )  # fmt: skip
        with self._done_lock:
            self._done[ex_id] = threading.Event()
        future: Future = Future()
        request = ExecutionRequest(ex_id, action.ref, dict(parameters), params, full_context, parent, rule, trigger_instance_id)

        def start() -> None:
            self._spawn(self._run_execution, f"execution-{ex_id}", request, action, params, future)

        # Action policies (st2's scheduler): run now, wait for a concurrency slot, or cancel.
        admission = self.policies.before_run(
            request, start, on_delayed=lambda: self.records.update_execution(ex_id, status=rec.DELAYED)
        )
        if admission.status == rec.CANCELED:
            self._finish(request, rec.CANCELED, admission.result, future, 0.0)
        elif admission.status == rec.SCHEDULED:
            start()
        return ex_id, future

    def _run_execution(self, request: ExecutionRequest, action: ActionMeta, params: dict[str, Any], future: Future) -> None:
        ex_id = request.id
        started = time.monotonic()
        status, result = rec.FAILED, None
        try:
            if not future.set_running_or_notify_cancel():
                # Its workflow was canceled while it waited for a slot: it never runs.
                status, result = rec.CANCELED, {"error": "canceled before it started"}
                return
            self.records.update_execution(ex_id, status=rec.RUNNING)
            status, result = self._run_with_runner(ex_id, action, params)
        except Exception as exc:
            LOG.exception("execution %s of %s crashed", ex_id, action.ref)
            status, result = rec.FAILED, {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            self._finish(request, status, result, future, time.monotonic() - started)

    def _finish(self, request: ExecutionRequest, status: str, result: Any, future: Future, seconds: float) -> None:
        """Record how an execution ended, apply post-run policies, then wake its waiters."""
        self.records.update_execution(request.id, status=status, result=result if result is not None else {})
        self.metrics.execution_finished(request.action, status, seconds)
        try:
            # Before waking waiters: a retry is on record when wait() returns.
            self.policies.after_run(request, status)
        except Exception:
            LOG.exception("post-run policies of execution %s failed", request.id)
        try:
            future.set_result((status, result))
        except InvalidStateError:  # canceled by its workflow, which no longer waits for it
            pass
        with self._done_lock:
            event = self._done.pop(request.id, None)
        if event:
            event.set()

    def _resubmit(self, request: ExecutionRequest, context: dict[str, Any]) -> str | None:
        """Re-run an execution as a new one (st2's retry policy): same parameters, new context."""
        if self._stopping.is_set():
            return None
        return self.execute(
            request.action, dict(request.parameters), rule=request.rule,
            trigger_instance_id=request.trigger_instance_id, context=context,
        )  # fmt: skip

    def _run_with_runner(self, ex_id: str, action: ActionMeta, params: dict[str, Any]) -> tuple[str, Any]:
        runner = action.runner_type
        if runner == "noop":
            return rec.SUCCEEDED, ({"stdout": params["message"]} if action.ref == "core.echo" else {})
        if runner == "python-script":
            pack_rt = self.packs[action.pack]
            runner_params = {k: params[k] for k in RUNNER_PARAMETERS["python-script"] if k in params}
            action_params = {k: v for k, v in params.items() if k not in RUNNER_PARAMETERS["python-script"]}
            timeout = float(runner_params.get("timeout") or PYTHON_DEFAULT_TIMEOUT)
            reply = self._pool(pack_rt).run(action.entry_point_path, action_params, timeout)
            return reply.status, reply.result
        if runner == "orquesta":
            return self._run_workflow(ex_id, action, params)
        if runner == "inquirer":
            return self.inquiries.ask(ex_id, params)
        return rec.FAILED, {"error": f"runner {runner!r} is not supported by st2lite (supported: {', '.join(SUPPORTED_RUNNERS)})"}

    def _run_workflow(self, ex_id: str, action: ActionMeta, params: dict[str, Any]) -> tuple[str, Any]:
        try:
            host = self.workflow_host(ex_id, action)
        except WorkflowSpecError as exc:
            # As st2's orquesta runner: a workflow that fails inspection fails the execution.
            return rec.FAILED, exc.as_result()
        outcome = self.control.host_run(ex_id, host, lambda: host.run(params))
        return outcome.status, outcome.as_result()

    def workflow_host(self, ex_id: str, action: ActionMeta, state: dict[str, Any] | None = None) -> WorkflowHost:
        """A host for workflow execution ``ex_id``, continuing ``state`` when given."""
        record = self.records.get_execution(ex_id) or {}
        user = (record.get("context") or {}).get("user") or DEFAULT_USER  # who started it (st2 API: the caller)
        st2_context = {
            "action_execution_id": ex_id, "workflow_execution_id": ex_id, "user": user, "api_user": None,
            "pack": action.pack, "action": action.ref, "runner": action.runner_type, "api_url": None, "source_channel": None,
        }  # fmt: skip
        return WorkflowHost(
            Path(action.entry_point_path).read_text(), launch=lambda request: self._launch_task(ex_id, request),
            st2_context=st2_context, on_state=lambda s: self.records.update_execution(ex_id, workflow_state=s), state=state,
        )  # fmt: skip

    def track(self, ex_id: str) -> threading.Event:
        """Register a running execution (``wait()`` and the shutdown drain see it); set the event when done."""
        event = threading.Event()
        with self._done_lock:
            self._done[ex_id] = event
        return event

    def untrack(self, ex_id: str) -> None:
        with self._done_lock:
            event = self._done.pop(ex_id, None)
        if event:
            event.set()

    def dispatch_trigger(self, trigger: str, payload: dict[str, Any]) -> str:
        """Record a trigger instance (as a sensor's dispatch does) and have the rules engine process it."""
        ti_id = self.records.record_trigger_instance(trigger, payload)
        self._trigger_queue.put(ti_id)
        return ti_id

    def is_tracked(self, ex_id: str) -> bool:
        with self._done_lock:
            return ex_id in self._done

    def wait_idle(self, ex_id: str) -> None:
        """Block until no thread of this runtime runs execution ``ex_id``."""
        with self._done_lock:
            event = self._done.get(ex_id)
        if event:
            event.wait()

    def _launch_task(self, parent_id: str, request: TaskActionRequest) -> Future:
        context = {"parent": {"execution_id": parent_id}, "orquesta": {"task_name": request.task_name, "task_id": request.task_id,
                   "route": request.route, "item_id": request.item_id}}  # fmt: skip
        try:
            _ex_id, future = self._start_execution(
                request.action_ref, request.parameters, None, None, parent_id, request.task_name, context
            )
            return future
        except (ParameterValidationError, RenderError) as exc:
            # st2 fails the task (not the engine) when its action or parameters are invalid.
            ex_id = self.records.create_execution(
                request.action_ref, "unknown", request.parameters, context=context, parent=parent_id,
                task_name=request.task_name, status=rec.FAILED,
            )  # fmt: skip
            self.records.update_execution(ex_id, status=rec.FAILED, result={"error": str(exc)})
            failed: Future = Future()
            failed.set_result((rec.FAILED, {"error": str(exc)}))
            return failed

    def wait(self, ex_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until an execution started by this runtime completes; return its record."""
        with self._done_lock:
            event = self._done.get(ex_id)
        if event and not event.wait(timeout):
            raise TimeoutError(f"execution {ex_id} still running after {timeout} s")
        record = self.records.get_execution(ex_id)
        if record is None:
            raise KeyError(ex_id)
        return record
