"""``fleetwatch api``: serve the HTTP API on 127.0.0.1; ``fleetwatch api token``: a user and a token."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

DEFAULT_ROLE_HELP = "role of a new user: admin, dispatcher, supervisor, agency_viewer"


def add_api_parser(sub: Any) -> None:
    api = sub.add_parser("api", help="serve the HTTP API (dispatch, supervision, settlement)")
    api.add_argument("--database-url")
    api.add_argument("--port", type=int, help="port on 127.0.0.1 (default: FLEETWATCH_API_PORT or 8080)")
    api.set_defaults(func=_serve)
    actions = api.add_subparsers(dest="api_action")
    token = actions.add_parser("token", help="create a user if new and print a bearer token for it")
    token.add_argument("--database-url")
    token.add_argument("--user", required=True, help="user name")
    token.add_argument("--role", help=DEFAULT_ROLE_HELP)
    token.add_argument("--agency", action="append", default=[], help="agency code (repeat for several)")
    token.add_argument(
        "--ttl-days", type=int, help="token lifetime (default: FLEETWATCH_TOKEN_TTL_DAYS or 365)"
    )
    token.add_argument("--json", action="store_true", help="print the user and token as one JSON object")
    token.set_defaults(func=_token)


def _settings(args: argparse.Namespace) -> Any:
    from api.settings import ApiSettings

    overrides: dict[str, Any] = {}
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    if getattr(args, "port", None):
        overrides["api_port"] = args.port
    return ApiSettings(**overrides)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    settings = _settings(args)
    uvicorn.run(
        create_app(settings), host="127.0.0.1", port=settings.api_port, log_level="warning", access_log=False
    )
    return 0


def _token(args: argparse.Namespace) -> int:
    import psycopg

    from api.errors import ApiError
    from api.schemas import Role
    from api.users import issue_token

    settings = _settings(args)
    try:
        role = Role(args.role) if args.role else None
    except ValueError:
        raise SystemExit(f"fleetwatch api token: unknown role {args.role!r} ({DEFAULT_ROLE_HELP})") from None
    with psycopg.connect(settings.database_url) as conn:
        try:
            user, token = issue_token(
                conn,
                name=args.user,
                role=role,
                agency_codes=args.agency,
                ttl_days=args.ttl_days or settings.token_ttl_days,
            )
        except (ApiError, psycopg.errors.CheckViolation) as exc:
            raise SystemExit(f"fleetwatch api token: {exc}") from None
    if args.json:
        print(json.dumps(user | {"token": token}, ensure_ascii=False))
    else:
        print(f"{user['name']} ({user['role']}, agencies {user['agency_ids']}):", file=sys.stderr)
        print(token)
    return 0
