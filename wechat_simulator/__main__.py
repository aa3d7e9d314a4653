"""``python -m wechat_simulator``: serve the simulator with uvicorn (one worker: state is in
memory).

Per-request access logging is off unless ``--access-log``: the benchmark pushes hundreds of
thousands of sends through it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from .app import create_app
from .config import SimulatorConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wechat_simulator",
        description="Local simulator of the WeChat Official Account API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--config", type=Path, help="JSON file with a full SimulatorConfig")
    parser.add_argument("--appid")
    parser.add_argument("--secret")
    parser.add_argument("--original-id", help="the account's gh_... id (ToUserName of pushes)")
    parser.add_argument("--callback-url", help="where event pushes are POSTed")
    parser.add_argument("--callback-token", help="the server-config Token that signs pushes")
    parser.add_argument("--daily-quota", type=int, help="sends per day per API (0 = unlimited)")
    parser.add_argument("--minute-quota", type=int, help="sends per minute per API (0 = off)")
    parser.add_argument(
        "--auto-create-users",
        action="store_true",
        default=None,
        help="treat unknown openids as followers instead of answering 40003",
    )
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    return parser


def load_config(args: argparse.Namespace) -> SimulatorConfig:
    base: dict[str, Any] = {}
    if args.config is not None:
        base = SimulatorConfig.model_validate_json(args.config.read_text()).model_dump()
    overrides = {
        "appid": args.appid,
        "secret": args.secret,
        "original_id": args.original_id,
        "callback_url": args.callback_url,
        "callback_token": args.callback_token,
        "daily_quota": args.daily_quota,
        "minute_quota": args.minute_quota,
        "auto_create_users": args.auto_create_users,
    }
    base.update({key: value for key, value in overrides.items() if value is not None})
    return SimulatorConfig.model_validate(base)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    app = create_app(load_config(args))
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.access_log,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
