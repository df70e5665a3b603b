"""Drive a real Errbot (6.2.1, Test backend) with the real err-stackstorm plugin; runs in their virtualenv.

    .venvs/errbot/bin/python tests/errbot_driver.py '<STACKSTORM config as JSON>'

Reads one JSON command per line on stdin and answers one JSON line on stdout:

    {"op": "say", "user": "alice", "text": "!st2 aegis status"}   -> {"ok": true}
    {"op": "pop", "timeout": 30}                                   -> {"message": "..."} | {"timeout": true}

Errbot's Test backend stands in for Slack: a message comes from ``user`` directly to the
bot (so err-stackstorm's ``source_channel`` is the user), and everything the bot sends
(the plugin's replies and the results err-stackstorm reads from st2's stream) is popped in
order. This file is not imported by the tests: it only runs in the Errbot virtualenv.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from queue import Empty

import errbot
from errbot.backends.test import TestBot


def main() -> int:
    stackstorm = json.loads(sys.argv[1])
    plugin_dir = os.path.join(os.path.dirname(os.path.dirname(errbot.__file__)), "err-stackstorm")
    config = {"BOT_PREFIX": "!", "BOT_ADMINS": ("admin",), "STACKSTORM": stackstorm}
    bot = TestBot(extra_plugin_dir=plugin_dir, loglevel=logging.INFO, extra_config=config)
    bot.start(timeout=30)
    print(json.dumps({"ready": True}), flush=True)
    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command["op"] == "say":
                bot.bot.sender = bot.bot.build_identifier(command["user"])
                bot.push_message(command["text"])
                print(json.dumps({"ok": True}), flush=True)
            elif command["op"] == "pop":
                try:
                    print(json.dumps({"message": bot.pop_message(timeout=command.get("timeout", 30))}), flush=True)
                except Empty:
                    print(json.dumps({"timeout": True}), flush=True)
            elif command["op"] == "quit":
                break
    finally:
        bot.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
