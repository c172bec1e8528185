"""`lonewatch`: the one command line of the base station."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import secrets
import sys
from pathlib import Path

log = logging.getLogger("lonewatch")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # The embedded broker logs every packet at INFO; the desk does not need that.
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {port}")
    return port


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {n}")
    return n


def cmd_demo(args) -> int:
    from dashboard.auth import hash_password
    from gateway import stack
    from gateway.broker import EmbeddedBroker, parse_mqtt_url
    from gateway.config import ConfigError, load_config
    from simulator.fleet import Fleet

    password = secrets.token_urlsafe(9)
    if args.broker:
        try:
            parse_mqtt_url(args.broker)
        except ValueError as exc:
            print(f"lonewatch demo: {exc}", file=sys.stderr)
            return 2
        broker, mqtt_url = None, args.broker
    else:
        broker = EmbeddedBroker(args.mqtt_port)
        mqtt_url = broker.url
    fleet = Fleet(mqtt_url, args.devices, site=args.site, seed=args.seed) if args.devices else None
    try:
        config = load_config(args.config, db=args.db, mqtt_url=mqtt_url, http_port=args.http_port,
                             operators={"desk": hash_password(password)},
                             registered_devices=[d.device for d in fleet.devices] if fleet else None)
    except ConfigError as exc:
        print(f"lonewatch demo: {exc}", file=sys.stderr)
        return 2

    def banner():
        url = f"http://{config.dashboard.host}:{config.dashboard.port}/"
        print(
            "\nlonewatch demo is running\n"
            f"  dashboard:  {url}\n"
            f"  log in as:  desk / {password}\n"
            f"  broker:     {mqtt_url}{' (embedded amqtt)' if broker else ''}\n"
            f"  database:   {config.db}\n"
            f"  devices:    {args.devices} simulated on site {args.site!r}\n"
            f"  alarms:     lonewatch alarms --db {config.db}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )

    return _run(stack.run(config, embedded_broker=broker, fleet=fleet, banner=banner), "demo")


def cmd_gateway(args) -> int:
    from gateway import stack
    from gateway.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"lonewatch gateway: {exc}", file=sys.stderr)
        return 2
    if not config.dashboard.operators:
        log.warning("no [dashboard] operators configured: nobody can log in to the desk page")

    def banner():
        log.info("gateway %s running; desk page on http://%s:%d/", config.gateway_id,
                 config.dashboard.host, config.dashboard.port)

    return _run(stack.run(config, banner=banner), "gateway")


def _run(coro, what: str) -> int:
    try:
        asyncio.run(coro)
    except RuntimeError as exc:
        print(f"lonewatch {what}: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_alarms(args) -> int:
    from gateway.schema import SchemaError
    from gateway.store import Store

    db = args.db
    if args.config:
        from gateway.config import ConfigError, load_config
        try:
            db = load_config(args.config).db
        except ConfigError as exc:
            print(f"lonewatch alarms: {exc}", file=sys.stderr)
            return 2
    if not Path(db).exists():
        print(f"lonewatch alarms: no database at {db} (give --db PATH or --config FILE)", file=sys.stderr)
        return 2
    try:
        store = Store(db)
    except SchemaError as exc:
        print(f"lonewatch alarms: {exc}", file=sys.stderr)
        return 1
    incidents = store.list_incidents(limit=args.limit, state=args.state)
    store.close()
    if args.json:
        json.dump(incidents, sys.stdout, default=str)
        print()
        return 0
    if not incidents:
        print("no incidents")
        return 0
    print(f"{'id':>5}  {'raised':<20} {'device':<16} {'type':<22} {'state':<13} acknowledged by")
    for i in incidents:
        kind = i["type"] + (f" ({i['cause']})" if i.get("cause") else "")
        print(f"{i['id']:>5}  {str(i['raised_at'])[:19]:<20} {i['device']:<16} {kind:<22} "
              f"{i['state']:<13} {i.get('acknowledged_by') or ''}")
    return 0


def cmd_password(args) -> int:
    from dashboard.auth import hash_password

    password = getpass.getpass(f"password for operator {args.name}: ")
    if len(password) < 8:
        print("lonewatch password: use at least 8 characters", file=sys.stderr)
        return 2
    if getpass.getpass("again: ") != password:
        print("lonewatch password: the two entries differ", file=sys.stderr)
        return 2
    print("Put this line under [dashboard.operators] in the gateway config:")
    print(f'{args.name} = "{hash_password(password)}"')
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lonewatch", description="lonewatch lone-worker alarm system.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run broker, gateway, dashboard and simulated devices in one process",
                          description="Start an embedded MQTT broker (amqtt on 127.0.0.1), the gateway, the "
                                      "security-desk dashboard and N simulated devices. Ctrl-C stops everything.")
    demo.add_argument("--mqtt-port", type=_port, default=1883, help="embedded broker port (default 1883)")
    demo.add_argument("--http-port", type=_port, default=8080, help="dashboard port (default 8080)")
    demo.add_argument("--devices", type=_count, default=3, help="simulated devices (default 3)")
    demo.add_argument("--db", default="lonewatch-demo.db", help="SQLite file (default lonewatch-demo.db)")
    demo.add_argument("--broker", metavar="mqtt://HOST:PORT",
                      help="use this external broker instead of the embedded one")
    demo.add_argument("--config", metavar="FILE", help="gateway TOML config to start from (optional)")
    demo.add_argument("--site", default="demo", help="site name of the simulated devices (default demo)")
    demo.add_argument("--seed", type=int, default=None, help="seed the simulated devices' behaviour")
    demo.set_defaults(func=cmd_demo)

    gw = sub.add_parser("gateway", help="run the gateway and the dashboard against a broker",
                        description="Run the gateway (ingest, incidents, supervision, routing) and the desk "
                                    "dashboard with the given TOML config; see docs/gateway.md.")
    gw.add_argument("--config", required=True, metavar="FILE", help="gateway TOML config")
    gw.set_defaults(func=cmd_gateway)

    alarms = sub.add_parser("alarms", help="list incidents from a gateway database",
                            description="List incidents (id, device, type, state, times), newest first.")
    alarms.add_argument("--db", default="lonewatch-demo.db", help="SQLite file (default lonewatch-demo.db)")
    alarms.add_argument("--config", metavar="FILE", help="take the database path from this gateway config")
    alarms.add_argument("--json", action="store_true", help="print one JSON array on stdout")
    alarms.add_argument("--state", choices=("raised", "acknowledged", "resolved"), help="only this state")
    alarms.add_argument("--limit", type=_count, default=200, help="at most this many (default 200)")
    alarms.set_defaults(func=cmd_alarms)

    bench = sub.add_parser("bench", help="benchmarks that print a table and, last, one JSON line",
                           description="Reproducible benchmarks; see docs/mandown.md and docs/gateway.md.")
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    from simulator import bench_gateway, bench_mandown, bench_purge
    for name, module, text in (
        ("mandown", bench_mandown, "man-down detector on recordings in the SisFall-50Hz format"),
        ("gateway", bench_gateway, "gateway ingest rate and publish-to-desk latency against a bare subscriber"),
        ("purge", bench_purge, "how long the retention purge keeps the ingest away from the database"),
    ):
        b = benches.add_parser(name, help=text, description=(module.__doc__ or text).strip().splitlines()[0])
        module.add_arguments(b)
        b.set_defaults(func=module.run)

    pw = sub.add_parser("password", help="make a password hash for a dashboard operator",
                        description="Ask for a password and print the config line for [dashboard.operators].")
    pw.add_argument("name", help="operator name, as they log in")
    pw.set_defaults(func=cmd_password)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
