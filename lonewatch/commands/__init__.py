"""One module per `lonewatch` subcommand, each with add_arguments(parser) and
run(args) -> int; lonewatch.cli imports a module only when its command runs."""

from __future__ import annotations

import argparse
import asyncio
import sys


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {port}")
    return port


def count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {n}")
    return n


def mqtt_url(text: str) -> str:
    """An MQTT URL as --broker takes it; refused by argparse with the reason."""
    from contract.protocol import parse_mqtt_url

    try:
        parse_mqtt_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def run_until_stopped(coro, what: str) -> int:
    """Run a long-lived part until SIGINT/SIGTERM; a RuntimeError is a clear, final message."""
    try:
        asyncio.run(coro)
    except RuntimeError as exc:
        print(f"lonewatch {what}: {exc}", file=sys.stderr)
        return 1
    return 0


def open_store(path: str, what: str):
    """The store of an existing database, or None after saying why not."""
    from pathlib import Path

    from gateway.schema import SchemaError
    from gateway.store import Store

    if not Path(path).exists():
        print(f"lonewatch {what}: no database at {path} (the gateway makes it when it first starts)", file=sys.stderr)
        return None
    try:
        return Store(path)
    except SchemaError as exc:
        print(f"lonewatch {what}: {exc}", file=sys.stderr)
        return None
