"""Start an embedded MQTT broker (amqtt on 127.0.0.1), the gateway, the
security-desk dashboard and N simulated devices, whose wearers now and then
raise an alarm or work alone (one of them forgets to check out now and then),
and whom the desk's simulator page drives by hand. Ctrl-C stops everything."""

from __future__ import annotations

import dataclasses
import secrets
import sys
import tomllib

from lonewatch.commands import count, mqtt_url, port_number, run_until_stopped

# Lone work in the demo is quick, so that someone trying lonewatch sees the
# whole arrangement within a few minutes: workers who started a session on
# their wearable and check in, one due soon (amber at the desk from a minute
# before), one who forgot and runs overdue (red, with an alarm naming them).
REMINDER_BEFORE_S = 60.0
LONE_WORK = dict(first_within_s=(5, 30), duration_s=(90, 240), check_in_s=(30, 75),
                 checks_out_before_end_s=(5, 50), break_s=(30, 120), overdue_every=3,
                 answers_overdue_after_s=(60, 150), leaves_after_answering_s=(5, 20))


def add_arguments(parser) -> None:
    parser.add_argument("--mqtt-port", type=port_number, default=1883, help="embedded broker port (default 1883)")
    parser.add_argument("--http-port", type=port_number, default=8080, help="dashboard port (default 8080)")
    parser.add_argument("--devices", type=count, default=3, help="simulated devices (default 3)")
    parser.add_argument("--db", default="lonewatch-demo.db", help="SQLite file (default lonewatch-demo.db)")
    parser.add_argument("--broker", type=mqtt_url, metavar="mqtt://HOST:PORT",
                        help="use this external broker instead of the embedded one")
    parser.add_argument("--config", metavar="FILE", help="gateway TOML config to start from (optional)")
    parser.add_argument("--site", default="demo", help="site name of the simulated devices (default demo)")
    parser.add_argument("--seed", type=int, default=None, help="seed the simulated devices' behaviour")


def run(args) -> int:
    from gateway.accounts import hash_password
    from gateway.broker import EmbeddedBroker
    from gateway.config import ConfigError, load_config
    from lonewatch import stack
    from simulator.fleet import Fleet, LoneWork

    password = secrets.token_urlsafe(9)
    if args.broker:
        broker, mqtt_url = None, args.broker
    else:
        broker = EmbeddedBroker(args.mqtt_port)
        mqtt_url = broker.url
    # Stopping the demo pauses its world: were its wearers to switch off, the
    # gateway would still hear it and the next run would open with an
    # offline alarm for each device.
    fleet = Fleet(mqtt_url, args.devices, site=args.site, seed=args.seed, lone_work=LoneWork(**LONE_WORK),
                  offline_at_stop=False) if args.devices else None
    try:
        config = _quick_reminders(load_config(args.config, db=args.db, mqtt_url=mqtt_url, http_port=args.http_port,
                                              operators={"desk": hash_password(password)},
                                              registered_devices=[d.device for d in fleet.devices] if fleet else None),
                                  args.config)
    except ConfigError as exc:
        print(f"lonewatch demo: {exc}", file=sys.stderr)
        return 2

    if fleet:
        from gateway.schema import SchemaError
        try:
            _prepare(config.db, [d.device for d in fleet.devices])
        except SchemaError as exc:
            print(f"lonewatch demo: {exc}", file=sys.stderr)
            return 1

    def banner():
        url = f"http://{config.dashboard.host}:{config.dashboard.port}/"
        print(
            "\nlonewatch demo is running\n"
            f"  dashboard:  {url}\n"
            f"  log in as:  desk / {password}\n"
            f"  broker:     {mqtt_url}{' (embedded amqtt)' if broker else ''}\n"
            f"  database:   {config.db}\n"
            f"  devices:    {args.devices} simulated on site {args.site!r}, each worn by a made-up worker\n"
            + (f"  simulator:  {url}simulator  (make a worker fall, hold panic, cut Wi-Fi ...)\n"
               f"  lone work:  {url}sessions  (workers start sessions; now and then one runs overdue)\n"
               if fleet else "") +
            f"  alarms:     lonewatch alarms --db {config.db}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )

    return run_until_stopped(stack.run(config, embedded_broker=broker, fleet=fleet, banner=banner), "demo")


# Made-up people; the numbers are in a range set aside for drama (Ofcom's 07700 900xxx).
DEMO_NAMES = ("Ann Smith", "Bilal Khan", "Chloe Martin", "Dmitri Ivanov", "Eve Okafor", "Farah Haddad",
              "George Brown", "Hana Sato", "Ivan Petrov", "Jo Evans")


def _quick_reminders(config, path: str | None):
    """The demo's short reminder window, unless the config file names its own."""
    if path is not None:
        with open(path, "rb") as f:  # load_config has read it already: it is there and valid
            if "reminder_before_s" in tomllib.load(f).get("sessions", {}):
                return config
    return dataclasses.replace(config, sessions=dataclasses.replace(config.sessions,
                                                                    reminder_before_s=REMINDER_BEFORE_S))


def _prepare(db: str, devices: list[str]) -> None:
    """A worker for each simulated device that nobody wears yet (a second run
    keeps the first's). Lone work an earlier run left open is ended: its
    wearers are gone, and would otherwise be reported overdue at once."""
    import time

    from gateway import people, sessions
    from gateway.incidents import Effects
    from gateway.store import Store

    store = Store(db)
    try:
        worn = {w["device"] for w in store.list_workers()}
        with store.transaction():
            now = time.time()
            for n, device in enumerate(devices):
                if device not in worn:
                    name = DEMO_NAMES[n % len(DEMO_NAMES)] + (f" {n // len(DEMO_NAMES) + 1}" if n >= len(DEMO_NAMES) else "")
                    people.add_worker(store, name, f"+44 7700 900{n % 1000:03d}", "demo worker", device, now, "demo")
                left_open = store.open_session_for(device)
                if left_open is not None:
                    sessions.end(store, Effects(), left_open, now, "demo", "ended_by_desk")
    finally:
        store.close()
