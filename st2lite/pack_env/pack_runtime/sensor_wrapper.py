"""Runs one sensor in its own process, in the pack's virtualenv (st2's sensor_wrapper).

The runtime's sensor container starts one of these per sensor and restarts it with
backoff when it dies. The sensor's ``dispatch`` records trigger instances straight into
the history database; the id of each one is written as a line on the original stdout so
the runtime processes it at once (it also sweeps pending ones, so a lost line loses
nothing). SIGTERM calls ``cleanup()`` and exits; so does the end of stdin (the runtime died).

Readiness (st2lite only: st2's sensor container has no readiness signal): once ``setup()``
has returned and every trigger was handed to ``add_trigger()``, just before ``run()``, the
wrapper writes the line ``READY_LINE`` on the same channel. A sensor that opens its
listening socket in ``setup()`` (as a webhook sensor should) is reachable from then on.

Run as ``python -m pack_runtime.sensor_wrapper --pack-dir DIR --pack REF --file FILE
--class-name NAME --trigger-types JSON --config FILE --datastore FILE --records FILE
[--triggers JSON]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from .datastore import KeyValueStore
from .records import Records
from .sensor_service import SensorService

#: The line that tells the runtime "this sensor is set up and running" (ids are hex).
READY_LINE = "#ready"
#: How long ``cleanup()`` may take on SIGTERM before the process exits anyway.
CLEANUP_TIMEOUT = 5.0


def load_sensor_class(path: str, class_name: str) -> type:
    spec = importlib.util.spec_from_file_location("st2lite_sensor_" + class_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import sensor {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import would be: dataclasses and pickling look it up.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ImportError(f"{path} defines no class {class_name}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--pack-dir", "--pack", "--file", "--class-name", "--trigger-types", "--datastore", "--records"):
        parser.add_argument(name, required=True)
    parser.add_argument("--config")
    parser.add_argument("--poll-interval", type=float)
    parser.add_argument("--triggers", default="[]", help="JSON list of triggers to hand to add_trigger()")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("ST2LITE_LOG_LEVEL", "INFO"), stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s [sensor {args.pack}.{args.class_name}] %(name)s: %(message)s")
    log = logging.getLogger("st2lite.sensor_wrapper")

    notify = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    notify_lock = threading.Lock()

    def on_dispatched(trigger_instance_ids: list[str]) -> None:
        with notify_lock:
            try:
                notify.write("".join(ti_id + "\n" for ti_id in trigger_instance_ids))  # one write per commit
            except (BrokenPipeError, ValueError):
                pass  # the runtime is gone; its sweep of pending instances picks this one up

    config: dict[str, Any] = {}
    if args.config and os.path.exists(args.config):
        with open(args.config) as fh:
            config = json.load(fh)
    records, store = Records(args.records), KeyValueStore(args.datastore)
    # A sensor answers its clients after its commits: no checkpoint stall inside them.
    records.checkpoint_in_background()
    store.checkpoint_in_background()
    service = SensorService(
        pack=args.pack,
        class_name=args.class_name,
        trigger_types=json.loads(args.trigger_types),
        records=records,
        store=store,
        on_dispatched=on_dispatched,
    )
    sensor_cls = load_sensor_class(args.file, args.class_name)
    kwargs: dict[str, Any] = {"sensor_service": service, "config": config}
    if args.poll_interval is not None:
        kwargs["poll_interval"] = args.poll_interval
    sensor = sensor_cls(**kwargs)

    stopping = threading.Lock()

    def shutdown(reason: str) -> None:
        """cleanup() and exit 0, once, on a thread of its own.

        Not on the signal handler's thread: that is the thread in ``run()``, and a cleanup
        that waits for ``run()`` to return (``server.shutdown()``) would wait for itself.
        """
        if not stopping.acquire(blocking=False):
            return
        log.info("%s, cleaning up", reason)
        watchdog = threading.Timer(CLEANUP_TIMEOUT, lambda: (log.warning("cleanup() still running after %.0f s; "
                                   "exiting anyway", CLEANUP_TIMEOUT), os._exit(0)))
        watchdog.daemon = True
        watchdog.start()
        try:
            sensor.cleanup()
        except Exception:
            log.exception("cleanup() failed")
        finally:
            os._exit(0)

    def on_signal(signum: int, _frame: Any) -> None:
        reason = f"received {signal.Signals(signum).name}"
        threading.Thread(target=shutdown, args=(reason,), daemon=True, name="shutdown").start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def exit_with_parent() -> None:
        # The runtime holds our stdin open; EOF means it died (even by SIGKILL), and an
        # orphaned sensor would keep its port and block the next runtime's sensor.
        sys.stdin.read()
        log.warning("runtime went away, stopping")
        shutdown("runtime went away")

    threading.Thread(target=exit_with_parent, daemon=True, name="parent-watch").start()
    sensor.setup()
    # As st2's trigger watcher does at start: every existing trigger of this sensor's types.
    for trigger in json.loads(args.triggers):
        sensor.add_trigger(trigger)
    log.info("sensor set up, running")
    on_dispatched([READY_LINE])
    try:
        sensor.run()
    except Exception:
        if not stopping.locked():
            raise
    if stopping.locked():
        threading.Event().wait()  # the shutdown thread is cleaning up and exits the process
    log.info("sensor run() returned")
    sensor.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
