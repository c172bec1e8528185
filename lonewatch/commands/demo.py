"""Start an embedded MQTT broker (amqtt on 127.0.0.1), the gateway, the
security-desk dashboard and N simulated devices. Ctrl-C stops everything."""

from __future__ import annotations

import secrets
import sys

from lonewatch.commands import count, port_number, run_until_stopped


def add_arguments(parser) -> None:
    parser.add_argument("--mqtt-port", type=port_number, default=1883, help="embedded broker port (default 1883)")
    parser.add_argument("--http-port", type=port_number, default=8080, help="dashboard port (default 8080)")
    parser.add_argument("--devices", type=count, default=3, help="simulated devices (default 3)")
    parser.add_argument("--db", default="lonewatch-demo.db", help="SQLite file (default lonewatch-demo.db)")
    parser.add_argument("--broker", metavar="mqtt://HOST:PORT",
                        help="use this external broker instead of the embedded one")
    parser.add_argument("--config", metavar="FILE", help="gateway TOML config to start from (optional)")
    parser.add_argument("--site", default="demo", help="site name of the simulated devices (default demo)")
    parser.add_argument("--seed", type=int, default=None, help="seed the simulated devices' behaviour")


def run(args) -> int:
    from contract.protocol import parse_mqtt_url
    from gateway.accounts import hash_password
    from gateway.broker import EmbeddedBroker
    from gateway.config import ConfigError, load_config
    from lonewatch import stack
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

    return run_until_stopped(stack.run(config, embedded_broker=broker, fleet=fleet, banner=banner), "demo")
