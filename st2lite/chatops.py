"""ChatOps through st2's API: alias executions from a chat bridge, results announced on the stream.

What a chat bridge (err-stackstorm, hubot-stackstorm) does against st2, and what st2 does
in return, for the runtime's loaded aliases:

    chatops = ChatOps(runtime, bus)                     # bus: st2lite.api.stream.EventBus
    results = chatops.match_and_execute("aegis status", user="alice", source_channel="#ops",
                                        notification_route="errbot", requester="errbot")
    # -> [{"execution_id", "alias", "ack"}]; when the execution completes, the stream carries
    #    event "st2.announcement__errbot" with data
    #    {"payload": {"message", "user", "channel", "whisper", "context", "extra"}, "trace_context": None}

On st2 the second half is three parts: the alias execution is created with
``notify.on-complete`` (route = the bridge's ``notification_route``, data = user,
source_channel, source_context); the notifier fires ``core.st2.generic.notifytrigger``;
the chatops pack's rule for that route (``chatops.notify`` for hubot, ``chatops.notify-errbot``
for errbot) runs ``chatops.post_result``, which renders the alias's ``result`` (or the
default template) and posts it with ``chatops.post_message`` (the announcement runner)
to the stream. st2lite does the same in one step per execution (:meth:`ChatOps.post_result`),
without recording the chatops pack's executions (subset).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .aliases import AliasExecutor

__all__ = ["ChatOps", "announcement_event"]

LOG = logging.getLogger(__name__)


def announcement_event(route: str) -> str:
    """The stream event name of an announcement on ``route`` (st2's announcement exchange)."""
    return f"st2.announcement__{route}"


class ChatOps:
    def __init__(self, runtime: Any, bus: Any, result_timeout: float | None = None) -> None:
        self.runtime = runtime
        self.bus = bus
        self.executor = AliasExecutor(runtime)
        #: How long an announcement waits for its execution (None: as long as it runs).
        self.result_timeout = result_timeout

    def match_and_execute(
        self,
        command: str,
        user: str | None,
        source_channel: str | None,
        notification_route: str | None = None,
        notification_channel: str | None = None,
        source_context: Any = None,
        requester: str = "stanley",
    ) -> list[dict[str, Any]]:
        """Run ``command`` as st2's ``POST /aliasexecution/match_and_execute`` does; raises
        :class:`st2lite.aliases.AliasExecutionError` when it matches no alias (or several).

        The result is announced on ``notification_route`` (else ``notification_channel``,
        as st2's ``_get_notify_field`` picks it) once each execution completes.
        """
        reply = self.executor.execute(command, user=user or requester, channel=source_channel, wait=False,
                                      requester=requester)  # fmt: skip
        alias = self.executor.alias(reply["alias"])
        route = notification_route or notification_channel
        for one in reply["executions"]:
            if route and alias is not None:
                threading.Thread(
                    target=self.post_result, name=f"chatops-{one['execution_id']}", daemon=True,
                    args=(alias, one["execution_id"], route, user, source_channel, source_context),
                ).start()  # fmt: skip
        return [{**one, "alias": reply["alias"]} for one in reply["executions"]]

    def post_result(self, alias: Any, ex_id: str, route: str, user: str | None, channel: str | None,
                    context: Any = None) -> dict[str, Any] | None:
        """Wait for execution ``ex_id`` and announce its result (``chatops.post_result``);
        returns the announcement, or None when the alias disables its result."""
        try:
            self.runtime.wait(ex_id, timeout=self.result_timeout)
        except TimeoutError:
            LOG.warning("chatops: execution %s still running after %s s; no result posted", ex_id, self.result_timeout)
            return None
        message = self.executor.render_result(alias, ex_id)
        if message is None:
            return None
        extra = dict(alias.meta.get("result", {}).get("extra") or {})
        payload = {"user": user, "whisper": False, "message": message, "channel": channel, "context": context, "extra": extra}
        body = {"payload": payload, "trace_context": None}
        self.bus.publish(announcement_event(route), body)
        LOG.info("chatops: result of %s (%s) announced on route %s to %s", ex_id, alias.ref, route, channel)
        return body


def chat_main(argv: list[str], runtime_factory: Any) -> int:
    """``aegis chat "<command>"``: what the channel would show for a chat command, for people
    without a chat. The bridge's prefix (``!st2``) may be included; the acknowledgement and
    the result are printed as the bot would post them (Slack mrkdwn). Exit status: 0 when
    the command's execution succeeded, 1 when it did not, 2 when no alias matched."""
    import argparse
    import getpass

    from .aliases import AliasExecutionError

    parser = argparse.ArgumentParser(prog="aegis chat", description="what the chat channel would show for a command")
    parser.add_argument("command", nargs="+", help='e.g. "aegis incident inc-0123456789abcdef"')
    parser.add_argument("-u", "--user", default=getpass.getuser(), help="the chat user (default: you)")
    parser.add_argument("--channel", default="cli", help="the channel (source_channel)")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    command = " ".join(args.command).strip()
    for prefix in ("!st2 ", "!"):
        if command.startswith(prefix):
            command = command[len(prefix):].strip()
    runtime = runtime_factory()
    try:
        executor = AliasExecutor(runtime)
        try:
            reply = executor.execute(command, user=args.user, channel=args.channel, timeout=args.timeout)
        except AliasExecutionError as exc:
            # What err-stackstorm answers, plus the closest commands.
            print(f"st2 command '{command}' not found.  View available commands with !st2help.")
            suggestions = executor.suggest(command)
            if suggestions:
                print("Closest: " + "; ".join(suggestions))
            LOG.debug("no alias for %r: %s", command, exc)
            return 2
        except TimeoutError as exc:
            print(f"ERROR: {exc}")
            return 1
    finally:
        runtime.stop()
    for one in reply["executions"]:
        for message in (one["ack"], one["result"]):
            if message is not None:
                print(message)
    return 0 if all(one["status"] == "succeeded" for one in reply["executions"]) else 1
