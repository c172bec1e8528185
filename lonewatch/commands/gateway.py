"""Run the gateway (ingest, incidents, supervision, routing) and the desk
dashboard with the given TOML config; see docs/gateway.md."""

from __future__ import annotations

import logging
import sys

from lonewatch.commands import run_until_stopped

log = logging.getLogger("lonewatch")


def add_arguments(parser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="gateway TOML config")


def run(args) -> int:
    from gateway.config import ConfigError, load_config
    from lonewatch import stack

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"lonewatch gateway: {exc}", file=sys.stderr)
        return 2
    if not config.dashboard.operators:
        log.warning("no [dashboard] operators configured: nobody can log in to the desk page")

    def banner():
        log.info("gateway %s running; desk page on %s://%s:%d/", config.gateway_id, config.dashboard.scheme,
                 config.dashboard.host, config.dashboard.port)

    return run_until_stopped(stack.run(config, banner=banner), "gateway")
