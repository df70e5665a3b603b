"""``aegis user``, ``aegis apikey`` and ``aegis inquiry``: st2's auth and inquiries without the st2 CLI.

    aegis user add alice --password 's3cret'       # htpasswd in $AEGIS_HOME (st2's flat_file backend)
    aegis apikey create --user alice               # prints the key once (st2 apikey create -k)
    aegis apikey list
    aegis inquiry list                             # asks the running runtime's API
    aegis inquiry respond ID -r '{"approved": true}' [--user alice]

``inquiry`` talks to the running runtime (``aegis run``) over its st2 API
(``AEGIS_ST2_API_LISTEN``) with a one-minute token it mints for ``--user`` from
``$AEGIS_HOME`` (whoever can read the runtime's home is its administrator).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

from .auth import AuthStore

COMMANDS = ("user", "apikey", "inquiry")


def add_parsers(sub: Any) -> None:
    user = sub.add_parser("user", help="API users (st2's flat-file htpasswd)").add_subparsers(dest="user_cmd", required=True)
    add = user.add_parser("add", help="add or replace a user")
    add.add_argument("name")
    add.add_argument("--password", help="default: read from stdin")
    user.add_parser("list")

    apikey = sub.add_parser("apikey", help="st2 API keys").add_subparsers(dest="apikey_cmd", required=True)
    create = apikey.add_parser("create", help="create an API key; the key is printed once")
    create.add_argument("--user", default="stanley")
    create.add_argument("-m", "--metadata", default="{}", help="JSON object")
    apikey.add_parser("list")

    inquiry = sub.add_parser("inquiry", help="pending inquiries of the running runtime (st2 inquiry)")
    inq = inquiry.add_subparsers(dest="inquiry_cmd", required=True)
    inq.add_parser("list").add_argument("--user", default="stanley")
    get = inq.add_parser("get")
    get.add_argument("id")
    get.add_argument("--user", default="stanley")
    respond = inq.add_parser("respond")
    respond.add_argument("id")
    respond.add_argument("-r", "--response", required=True, help="JSON object validated against the inquiry's schema")
    respond.add_argument("--user", default="stanley", help="who answers (the inquiry's users may be restricted)")


def _api(settings: Any, user: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    token = AuthStore(settings.home).issue_token(user, ttl=60)["token"]
    listen = os.environ.get("AEGIS_ST2_API_LISTEN", "127.0.0.1:9101")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{listen}/v1{path}", data=data, method=method,
                                     headers={"X-Auth-Token": token, "Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except OSError as exc:
        return 0, {"faultstring": f"cannot reach the runtime's API at {listen} ({exc}); is `aegis run` running?"}


def main(args: argparse.Namespace, settings: Any) -> int:
    settings.ensure_dirs()
    if args.command == "user":
        store = AuthStore(settings.home)
        if args.user_cmd == "list":
            print("\n".join(store.users()))
            return 0
        password = args.password if args.password is not None else sys.stdin.readline().rstrip("\n")
        store.add_user(args.name, password)
        print(f"user {args.name} written to {store.htpasswd}")
        return 0
    if args.command == "apikey":
        store = AuthStore(settings.home)
        if args.apikey_cmd == "list":
            print(json.dumps(store.list_api_keys(), indent=2))
            return 0
        print(store.create_api_key(args.user, json.loads(args.metadata))["key"])
        return 0
    if args.inquiry_cmd == "list":
        status, body = _api(settings, args.user, "GET", "/inquiries")
    elif args.inquiry_cmd == "get":
        status, body = _api(settings, args.user, "GET", f"/inquiries/{args.id}")
    else:
        try:
            response = json.loads(args.response)
        except json.JSONDecodeError as exc:
            print(f"ERROR: the response is not JSON: {exc}", file=sys.stderr)
            return 2
        status, body = _api(settings, args.user, "PUT", f"/inquiries/{args.id}", {"id": args.id, "response": response})
    if status != 200:
        print(f"ERROR: {status} {(body or {}).get('faultstring', body)}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2))
    return 0
