"""`python -m tests.fakes okta|keycloak|auth0 [--port P] [--users N] [--groups G] [--seed S]
[--option NAME=VALUE ...]`: one fake identity provider serving a generated tenant, as a process of
its own (a benchmark's fake then does not compete with the exporter for one interpreter, as a real
provider would not), on 127.0.0.1 and `--port` (default 0: a free port the system picks).

Once it listens it prints one JSON line: `provider`, `base_url`, `settings` (the environment that
points `orgmig export` at it) and, for Okta, `sizes` (what its listings hold). Then it reads
commands from stdin, one a line, and answers each with one JSON line:
- `stats`: `{"requests": n, "statuses": {"200": n, "429": n, ...}}`;
- `stop` (or the end of its input): stops the server and exits.

`--option` passes a keyword argument to the fake's class (value as JSON when it parses, else as
text), e.g. `--option rate_limit_per_minute=10 --option window_seconds=1`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from .auth0 import FakeAuth0
from .keycloak import FakeKeycloak
from .okta import FakeOkta
from .tenant import make_tenant

FAKES = {"okta": FakeOkta, "keycloak": FakeKeycloak, "auth0": FakeAuth0}


EPILOG = """\
once it listens it prints one JSON line: provider, base_url, settings (the environment that points
orgmig at it) and, for Okta, sizes. Then it reads commands
on stdin, one a line: `stats` (requests so far, by status) and `stop` (or the end of the input).

options (--option NAME=VALUE) most used:
  okta      window_seconds=1 rate_limit_per_minute=600 rate_limits='{"users": 100}'
            empty_last_page=true
  keycloak  service_account_roles='["view-users","query-groups","view-realm","manage-realm","manage-users"]'
            (manage-users: what orgmig writeback needs) user_profile_attributes='["appUserId"]'
  auth0     scopes='["read:users","read:roles","read:role_members","read:organizations",
            "read:organization_members","read:organization_member_roles","update:users"]'
            (update:users: what orgmig writeback needs)

Okta's user schema takes a custom attribute as a real org does, POST /api/v1/meta/schemas/user/default
(the write-back's appUserId, for instance; docs/providers.md, "Trying it against the fakes").
"""


def _option(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw


def _say(obj: Any) -> None:
    print(json.dumps(obj), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="One fake identity provider (Okta, Keycloak or Auth0) serving a generated tenant over"
                    " real HTTP, for `orgmig export` and `orgmig writeback` without a tenant of your own.",
        epilog=EPILOG)
    parser.add_argument("provider", choices=FAKES, help="which provider to fake")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0,
                        help="port to listen on (default 0: a free port the system picks; the ready line says which)")
    parser.add_argument("--users", type=int, default=3000, help="users of the generated tenant (default 3000)")
    parser.add_argument("--groups", type=int, default=40, help="groups of the generated tenant (default 40)")
    parser.add_argument("--seed", type=int, default=7,
                        help="the tenant's seed: the same arguments give the same tenant (default 7)")
    parser.add_argument("--option", type=_option, action="append", default=[], metavar="NAME=VALUE",
                        help="a keyword argument of the fake's class (tests/fakes/README.md lists them); VALUE is"
                             " JSON when it parses, else text; repeatable")
    args = parser.parse_args(argv)

    tenant = make_tenant(args.users, args.groups, seed=args.seed)
    with FAKES[args.provider](tenant, host=args.host, port=args.port, **dict(args.option)) as fake:
        ready: dict[str, Any] = {"provider": args.provider, "base_url": fake.base_url, "settings": fake.settings()}
        if isinstance(fake, FakeOkta):
            ready["sizes"] = fake.listing_sizes()
        _say(ready)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                statuses = Counter(str(r.status) for r in fake.requests)
                _say({"requests": len(fake.requests), "statuses": dict(statuses)})
            elif command == "stop":
                break
            elif command:
                _say({"error": f"unknown command {command!r}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
