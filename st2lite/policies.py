"""st2's action policies, enforced on the executions of one runtime.

st2 registers ``policies/*.yaml`` of each pack and applies them around every execution of
the action they name (``resource_ref``): before it runs (``apply_before``, in the
scheduler) and after it completes (``apply_after``, in the notifier or, for tasks, the
workflow engine). The three policy types st2 ships:

- ``action.concurrency`` (``threshold``, ``action: delay|cancel``): at most ``threshold``
  executions of the action are scheduled or running; one more is ``delayed`` until a slot
  frees (oldest first), or ``canceled`` at once with ``action: cancel``.
- ``action.concurrency.attr``: the same, counted per value of the ``attributes``
  (parameter names), e.g. one restart per host at a time.
- ``action.retry`` (``retry_on: failure|timeout``, ``max_retry_count`` default 2, ``delay``
  seconds): an execution that ends ``failed`` (or ``timeout``) is re-run as a new
  execution with the same parameters and context, plus ``context.policies.retry``
  (``applied_policy``, ``retry_count``, ``retried_liveaction_id``). It does not apply to
  tasks of a workflow (st2 #3140: the workflow's own ``retry`` does that).

A policy file with ``enabled: false`` is not enforced.

The runtime calls :meth:`PolicyEngine.before_run` when it has recorded a new execution and
:meth:`PolicyEngine.after_run` once it has recorded how it ended::

    engine = PolicyEngine.from_packs(packs, resubmit=runtime_resubmit)
    admission = engine.before_run(request, start=spawn_it, on_delayed=mark_delayed)
    if admission.status == "scheduled":
        spawn_it()                 # "delayed": the engine calls spawn_it when a slot frees
    ...                            # "canceled": record admission.result, do not run it
    engine.after_run(request, "failed")   # frees its slots (starts the next delayed one),
                                          # calls runtime_resubmit(request, context) to retry

Differences from st2, all from st2lite being one process:

- Concurrency is counted within this runtime process (st2 counts ``scheduled`` and
  ``running`` executions in its database, under a coordination-service lock). Executions
  another process might run against the same history are not counted.
- A delayed execution waits in memory. If the runtime stops, it stays ``delayed`` in the
  history and the next start marks it ``abandoned``, as every in-flight execution.
  Pending retries with a ``delay`` are likewise lost on stop (st2 notes the same: its
  delayed retry is "not crash and restart safe").
- ``action.concurrency.attr`` reads the attributes from the parameters after defaults are
  applied, so an attribute left to its default counts as that value. st2 filters on the
  parameters as given, so there an execution without the attribute counts against every
  execution of the action.
- ``retried_liveaction_id`` holds the st2lite execution id (st2lite has no live actions).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .loader import Pack, PolicyMeta

LOG = logging.getLogger(__name__)

CONCURRENCY = "action.concurrency"
CONCURRENCY_ATTR = "action.concurrency.attr"
RETRY = "action.retry"
POLICY_TYPES = (CONCURRENCY, CONCURRENCY_ATTR, RETRY)

# Execution statuses, as st2 spells them (kept here so this module needs only the loader).
SCHEDULED = "scheduled"
DELAYED = "delayed"
CANCELED = "canceled"
FAILED = "failed"
TIMEOUT = "timeout"

_RETRY_ON_STATUS = {"failure": FAILED, "timeout": TIMEOUT}


class PolicyError(ValueError):
    """A policy whose type or parameters st2lite cannot enforce."""


@dataclass(frozen=True)
class ExecutionRequest:
    """What the policies need to know about one execution.

    ``parameters`` are the parameters as given (what a retry re-runs with); ``resolved``
    are the validated ones with defaults applied (what concurrency attributes are read
    from); ``context`` is the execution's context as recorded.
    """

    id: str
    action: str
    parameters: Mapping[str, Any]
    resolved: Mapping[str, Any]
    context: Mapping[str, Any]
    parent: str | None = None
    rule: str | None = None
    trigger_instance_id: str | None = None

    @property
    def in_workflow(self) -> bool:
        """True for a task of a workflow (st2: the execution has a ``parent`` context)."""
        return bool(self.parent or self.context.get("parent"))


@dataclass(frozen=True)
class Admission:
    """What :meth:`PolicyEngine.before_run` decided: ``scheduled``, ``delayed`` or ``canceled``."""

    status: str
    policy: str | None = None
    message: str | None = None

    @property
    def result(self) -> dict[str, Any]:
        """The result recorded for a canceled execution: which policy canceled it, and why."""
        return {"error": self.message, "policy": self.policy} if self.policy else {}


@dataclass(frozen=True)
class ConcurrencyPolicy:
    """``action.concurrency`` or, with ``attributes``, ``action.concurrency.attr``."""

    ref: str
    resource_ref: str
    threshold: int
    action: str = "delay"
    attributes: tuple[str, ...] = ()

    @property
    def policy_type(self) -> str:
        return CONCURRENCY_ATTR if self.attributes else CONCURRENCY

    def key(self, request: ExecutionRequest) -> tuple[str, str]:
        """The slot pool this execution counts in: the policy, and the attribute values."""
        values = {name: request.resolved.get(name) for name in self.attributes}
        return self.ref, json.dumps(values, sort_keys=True, default=str)


@dataclass(frozen=True)
class RetryPolicy:
    """``action.retry``."""

    ref: str
    resource_ref: str
    retry_on: str
    max_retry_count: int = 2
    delay: float = 0.0
    policy_type: str = field(default=RETRY, init=False)

    def retry_context(self, request: ExecutionRequest, status: str) -> dict[str, Any] | None:
        """The context of the re-run, or None when this policy does not retry ``status``."""
        if status != _RETRY_ON_STATUS[self.retry_on] or request.in_workflow:
            return None
        previous = request.context.get("policies") or {}
        retry_count = int((previous.get("retry") or {}).get("retry_count", 0))
        if retry_count + 1 > self.max_retry_count:
            LOG.info(
                "%s: execution %s is retry %d of %d, not retrying",
                self.ref,
                request.id,
                retry_count,
                self.max_retry_count,
            )
            return None
        context = copy.deepcopy(dict(request.context))
        # As st2: the policy section is replaced, so each retry names only its own origin.
        context["policies"] = {
            "retry": {
                "applied_policy": self.ref,
                "retry_count": retry_count + 1,
                "retried_liveaction_id": request.id,
            }
        }
        return context


Policy = ConcurrencyPolicy | RetryPolicy


def _integer(meta: PolicyMeta, name: str, default: int | None, minimum: int) -> int:
    value = (meta.parameters or {}).get(name, default)
    if value is None:
        raise PolicyError(f"policy {meta.ref}: parameter {name!r} is required")
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PolicyError(f"policy {meta.ref}: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def build_policy(meta: PolicyMeta) -> Policy:
    """The enforceable form of one policy file; raises :class:`PolicyError` if it has none."""
    params = meta.parameters or {}
    if meta.policy_type in (CONCURRENCY, CONCURRENCY_ATTR):
        action = params.get("action", "delay")
        if action not in ("delay", "cancel"):
            raise PolicyError(f"policy {meta.ref}: action must be 'delay' or 'cancel', got {action!r}")
        # threshold 0 cancels every execution; with 'delay' it would park them all forever.
        threshold = _integer(meta, "threshold", None, 1 if action == "delay" else 0)
        attributes: tuple[str, ...] = ()
        if meta.policy_type == CONCURRENCY_ATTR:
            raw = params.get("attributes")
            if not isinstance(raw, list) or not raw or not all(isinstance(a, str) and a for a in raw):
                raise PolicyError(
                    f"policy {meta.ref}: attributes must be a non-empty list of parameter names, got {raw!r}"
                )
            attributes = tuple(raw)
        return ConcurrencyPolicy(meta.ref, meta.resource_ref, threshold, action, attributes)
    if meta.policy_type == RETRY:
        retry_on = params.get("retry_on")
        if retry_on not in _RETRY_ON_STATUS:
            raise PolicyError(f"policy {meta.ref}: retry_on must be 'failure' or 'timeout', got {retry_on!r}")
        delay = params.get("delay", 0) or 0
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise PolicyError(f"policy {meta.ref}: delay must be a number of seconds >= 0, got {delay!r}")
        return RetryPolicy(
            meta.ref, meta.resource_ref, retry_on, _integer(meta, "max_retry_count", 2, 0), float(delay)
        )
    raise PolicyError(
        f"policy {meta.ref}: unknown policy type {meta.policy_type!r} (st2 has: {', '.join(POLICY_TYPES)})"
    )


@dataclass
class _Waiter:
    request: ExecutionRequest
    keys: list[tuple[ConcurrencyPolicy, tuple[str, str]]]
    start: Callable[[], None]


class PolicyEngine:
    """The enforced policies of the loaded packs, and the concurrency slots they hand out.

    Thread-safe: executions are admitted and released from many threads. One lock guards
    the slot counts and the queue of delayed executions; the callbacks it is given run
    outside it, except ``on_delayed`` (see :meth:`before_run`).

        engine = PolicyEngine.from_packs(packs, resubmit=lambda request, context: ...)
        [p.ref for p in engine.for_action("aegis.diagnose")]   # ['aegis.diagnose_concurrency']
    """

    def __init__(
        self,
        policies: Iterable[PolicyMeta],
        resubmit: Callable[[ExecutionRequest, dict[str, Any]], object] | None = None,
    ) -> None:
        self.enforced: list[Policy] = []
        #: Refs of policy files with ``enabled: false``.
        self.disabled: list[str] = []
        #: ``(ref, reason)`` of policies that could not be enforced (bad type or parameters).
        self.rejected: list[tuple[str, str]] = []
        self._concurrency: dict[str, list[ConcurrencyPolicy]] = {}
        self._retry: dict[str, list[RetryPolicy]] = {}
        for meta in policies:
            if not meta.enabled:
                self.disabled.append(meta.ref)
                continue
            try:
                policy = build_policy(meta)
            except PolicyError as exc:
                LOG.error("policy %s is not enforced: %s", meta.ref, exc)
                self.rejected.append((meta.ref, str(exc)))
                continue
            self.enforced.append(policy)
            if isinstance(policy, ConcurrencyPolicy):
                self._concurrency.setdefault(policy.resource_ref, []).append(policy)
            else:
                self._retry.setdefault(policy.resource_ref, []).append(policy)
        self._resubmit = resubmit
        self._lock = threading.Lock()
        self._in_use: Counter[tuple[str, str]] = Counter()
        self._held: dict[str, list[tuple[str, str]]] = {}
        self._waiting: list[_Waiter] = []
        self._timers: set[threading.Timer] = set()
        self._closed = False

    @classmethod
    def from_packs(
        cls,
        packs: Iterable[Pack],
        resubmit: Callable[[ExecutionRequest, dict[str, Any]], object] | None = None,
    ) -> PolicyEngine:
        return cls((policy for pack in packs for policy in pack.policies), resubmit=resubmit)

    def for_action(self, action_ref: str) -> list[Policy]:
        """The policies enforced on ``action_ref``, in load order."""
        return [*self._concurrency.get(action_ref, ()), *self._retry.get(action_ref, ())]

    def describe(self) -> list[dict[str, Any]]:
        """The enforced policies as plain data (for an API or CLI to show)."""
        rows = []
        for policy in self.enforced:
            row = {"ref": policy.ref, "policy_type": policy.policy_type, "resource_ref": policy.resource_ref}
            if isinstance(policy, ConcurrencyPolicy):
                row |= {"threshold": policy.threshold, "action": policy.action}
                if policy.attributes:
                    row["attributes"] = list(policy.attributes)
            else:
                row |= {
                    "retry_on": policy.retry_on,
                    "max_retry_count": policy.max_retry_count,
                    "delay": policy.delay,
                }
            rows.append(row)
        return rows

    def occupancy(self) -> dict[str, dict[str, int]]:
        """Per concurrency policy: executions holding a slot now, and executions delayed."""
        with self._lock:
            usage = {
                p.ref: {"held": 0, "delayed": 0} for p in self.enforced if isinstance(p, ConcurrencyPolicy)
            }
            for (ref, _values), count in self._in_use.items():
                usage[ref]["held"] += count
            for waiter in self._waiting:
                for policy, _key in waiter.keys:
                    usage[policy.ref]["delayed"] += 1
            return usage

    # -- before an execution runs ------------------------------------------------------

    def before_run(
        self, request: ExecutionRequest, start: Callable[[], None], on_delayed: Callable[[], None]
    ) -> Admission:
        """Admit, delay or cancel a new execution against the action's concurrency policies.

        ``scheduled``: it holds a slot of each policy; the caller starts it now.
        ``delayed``: ``on_delayed()`` was called (under the engine's lock, so that the
        execution cannot be started before it is marked delayed: keep it short, e.g. one
        status update) and ``start()`` will be called, from the thread of the execution
        that frees the last slot it needs. ``canceled``: a full ``cancel`` policy refused it.
        """
        policies = self._concurrency.get(request.action)
        if not policies:
            return Admission(SCHEDULED)
        keys = [(policy, policy.key(request)) for policy in policies]
        with self._lock:
            # As st2 applies policies in turn and stops at the first that delays, the
            # first full policy decides.
            full = next((p for p, key in keys if self._in_use[key] >= p.threshold), None)
            if full is None:
                self._take(request.id, keys)
                return Admission(SCHEDULED)
            message = (
                f"{full.threshold} execution(s) of {request.action} already scheduled or running"
                + (f" with the same {', '.join(full.attributes)}" if full.attributes else "")
                + f" (policy {full.ref}, {full.policy_type})"
            )
            if full.action == "cancel":
                LOG.info("execution %s canceled: %s", request.id, message)
                return Admission(CANCELED, full.ref, f"canceled by policy {full.ref}: {message}")
            if self._closed:
                # Nothing would ever start it: say so rather than leave it waiting.
                return Admission(CANCELED, full.ref, f"canceled: the runtime is stopping and {message}")
            on_delayed()
            self._waiting.append(_Waiter(request, keys, start))
            LOG.info("execution %s delayed: %s", request.id, message)
            return Admission(DELAYED, full.ref, message)

    def _take(self, ex_id: str, keys: list[tuple[ConcurrencyPolicy, tuple[str, str]]]) -> None:
        for _policy, key in keys:
            self._in_use[key] += 1
        self._held[ex_id] = [key for _policy, key in keys]

    # -- after an execution completed -----------------------------------------------------

    def after_run(self, request: ExecutionRequest, status: str) -> list[str]:
        """Free the execution's slots and apply its retry policies; return started delayed ids.

        Delayed executions whose slots are now all free start oldest first (``start()`` is
        called here). A retry is resubmitted here when its policy has no delay, so it is
        recorded before whoever waits on this execution wakes up; else after ``delay``.
        """
        started: list[str] = []
        ready = self._release(request.id)
        while ready:
            waiter = ready.pop(0)
            try:
                waiter.start()
                started.append(waiter.request.id)
            except Exception:
                LOG.exception("delayed execution %s could not be started", waiter.request.id)
                ready.extend(self._release(waiter.request.id))  # its slots go to the next in line
        for policy in self._retry.get(request.action, ()):
            context = policy.retry_context(request, status)
            if context is not None:
                self._schedule_retry(policy, request, context)
        return started

    def _release(self, ex_id: str) -> list[_Waiter]:
        """Free the slots ``ex_id`` holds; return the delayed executions that now have theirs."""
        with self._lock:
            keys = self._held.pop(ex_id, None)
            if not keys:
                return []
            self._in_use.subtract(keys)
            self._in_use = +self._in_use  # drop keys no execution holds any more
            return self._admit_waiting()

    def _admit_waiting(self) -> list[_Waiter]:
        # Oldest first; a waiter whose slots are not all free stays, later ones may pass it
        # only for slots it does not need (one policy per action: strict FIFO per key).
        admitted, still = [], []
        for waiter in self._waiting:
            if not self._closed and all(self._in_use[key] < policy.threshold for policy, key in waiter.keys):
                self._take(waiter.request.id, waiter.keys)
                admitted.append(waiter)
            else:
                still.append(waiter)
        self._waiting = still
        return admitted

    def _schedule_retry(
        self, policy: RetryPolicy, request: ExecutionRequest, context: dict[str, Any]
    ) -> None:
        if self._resubmit is None:
            return
        count = context["policies"]["retry"]["retry_count"]
        LOG.info("%s: retrying execution %s of %s (retry %d of %d) in %gs",
                 policy.ref, request.id, request.action, count, policy.max_retry_count, policy.delay)  # fmt: skip
        if policy.delay <= 0:
            self._resubmit_now(request, context)
            return
        timer = threading.Timer(policy.delay, self._fire, args=(request, context))
        timer.daemon = True
        timer.name = f"retry-{request.id}"
        with self._lock:
            if self._closed:
                return
            self._timers.add(timer)
        timer.start()

    def _fire(self, request: ExecutionRequest, context: dict[str, Any]) -> None:
        try:
            with self._lock:
                if self._closed:
                    return
            self._resubmit_now(request, context)
        finally:
            # Only once the retry is on record: pending_retries() never hides one in flight.
            with self._lock:
                self._timers = {t for t in self._timers if t is not threading.current_thread()}

    def pending_retries(self) -> int:
        """Retries scheduled (waiting for their ``delay``) and not yet on record.

        Once an execution's waiters have woken up its retry decision is made, so with
        ``pending_retries() == 0`` no retry of it can still come (tests wait on this).
        """
        with self._lock:
            return len(self._timers)

    def _resubmit_now(self, request: ExecutionRequest, context: dict[str, Any]) -> None:
        try:
            assert self._resubmit is not None
            self._resubmit(request, context)
        except Exception:
            LOG.exception("retry of execution %s (%s) could not be submitted", request.id, request.action)

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> list[str]:
        """Stop starting delayed executions and pending retries; return the ids left delayed.

        From then on an execution a full ``delay`` policy would hold is canceled instead:
        nothing would start it.
        """
        with self._lock:
            self._closed = True
            timers, self._timers = self._timers, set()
            left = [w.request.id for w in self._waiting]
            self._waiting = []
        for timer in timers:
            timer.cancel()
        return left
