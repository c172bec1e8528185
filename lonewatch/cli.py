"""`lonewatch`: the one command line of the base station.

Each subcommand lives in its own module with `add_arguments(parser)` and
`run(args) -> int`, and is imported only when it runs or shows its own
--help: `lonewatch --help` then works whatever part a subcommand needs, and
an installed gateway does not load the benchmarks or the simulator.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> (module, help), or name -> a table of its own subcommands.
COMMANDS: dict = {
    "demo": ("lonewatch.commands.demo", "run broker, gateway, dashboard and simulated devices in one process"),
    "gateway": ("lonewatch.commands.gateway", "run the gateway and the dashboard against a broker"),
    "alarms": ("lonewatch.commands.alarms", "list incidents from a gateway database"),
    "sim": ("lonewatch.commands.sim", "simulated wearables, fleets and scripted scenarios checked at the gateway"),
    "password": ("lonewatch.commands.password", "make a password hash for a dashboard operator"),
    "backup": ("lonewatch.commands.backup", "copy a gateway database while the gateway runs"),
    "privacy": ("lonewatch.commands.privacy", "export or erase what is held about a worker"),
    "deliveries": ("lonewatch.commands.deliveries", "pending webhook and e-mail notifications and dead letters; retry"),
    "worker": ("lonewatch.commands.worker", "add workers, give them devices, list them"),
    "user": ("lonewatch.commands.user", "add desk users (operator or admin), change passwords, disable users"),
    "power": ("lonewatch.commands.power", "the wearable's power budget: hours per battery from datasheet currents"),
    "certs": ("lonewatch.commands.certs", "a private CA and the broker's TLS certificate for a lab installation"),
    "provision": ("lonewatch.commands.provision", "enroll a wearable over USB serial: firmware, config, credentials, ACL"),
    "bench": {
        "mandown": ("bench.mandown", "man-down detector on recordings in the SisFall-50Hz format"),
        "gateway": ("bench.gateway", "gateway ingest rate and publish-to-desk latency against a bare subscriber"),
        "purge": ("bench.purge", "how long the retention purge keeps the ingest away from the database"),
        "fuzz": ("bench.fuzz", "hostile and broken messages against the running gateway, between valid alarms"),
        "desk": ("bench.desk", "the desk with 100 open and 100,000 past incidents: snapshot, history, CSV, live pages"),
        "soak": ("bench.soak", "a fleet with churn, alarms and desk pages for a long while: leaks and losses"),
        "sim": ("bench.sim", "what simulated wearables cost: fleet devices per core, firmware devices keeping up at 50 Hz"),
    },
}
GROUP_HELP = {"bench": "long measured runs (benchmarks, fuzz) that print a table and, last, one JSON line"}


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # The embedded broker logs every packet at INFO; the desk does not need that.
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _add_commands(parser: argparse.ArgumentParser, table: dict, words: list[str], dest: str) -> None:
    """Subparsers for `table`; only the one named first in `words` gets its module loaded."""
    sub = parser.add_subparsers(dest=dest, required=True, metavar=dest.upper())
    chosen = next((w for w in words if not w.startswith("-")), None)
    for name, entry in table.items():
        if isinstance(entry, dict):
            group = sub.add_parser(name, help=GROUP_HELP[name], description=GROUP_HELP[name])
            if name == chosen:
                _add_commands(group, entry, words[words.index(name) + 1:], name)
            continue
        module_name, help_text = entry
        command = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            command.description = (module.__doc__ or help_text).strip()
            module.add_arguments(command)
            command.set_defaults(func=module.run)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lonewatch", description="lonewatch lone-worker alarm system.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    _add_commands(parser, COMMANDS, argv, "command")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    _setup_logging(args.verbose)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
