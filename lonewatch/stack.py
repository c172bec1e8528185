"""Runs the parts of a base station together in one event loop: optionally an
embedded broker, the gateway, the desk's web server, optionally a simulated
fleet (the demo), which then also has a page at the desk. Starts them in
dependency order and stops them in reverse, each within a bounded time, on
SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from contextlib import AsyncExitStack

from aiohttp import web

from lonewatch.systemd import Notifier

log = logging.getLogger(__name__)

# Four parts stop in turn and the whole stop must fit in 5 s.
PART_STOP_TIMEOUT_S = 1.2


async def stop_within(name: str, stop) -> None:
    started = time.monotonic()
    try:
        await asyncio.wait_for(stop(), PART_STOP_TIMEOUT_S)
    except TimeoutError:
        log.error("stopping %s: not stopped within %.1f s; going on without it", name, PART_STOP_TIMEOUT_S)
    except Exception as exc:  # a part that will not stop must not keep the rest running
        log.error("stopping %s: %s", name, str(exc) or type(exc).__name__)
    else:
        log.debug("stopped %s in %.2f s", name, time.monotonic() - started)


def desk_app(gateway, config, fleet=None) -> web.Application:
    """The desk's application; with a simulated fleet, also the simulator page."""
    from dashboard.app import make_app

    app = make_app(gateway, config.dashboard.operators)
    if fleet is not None:
        _add_simulator_page(app, fleet)
    return app


def _add_simulator_page(app: web.Application, fleet) -> None:
    """/simulator lists the fleet's devices and acts on them as their wearers
    would, with the simulator's own controls (lonewatch.simcontrols.control_routes)
    under /api/simulator. Routes of the desk's app, so its login and Origin
    check guard them like every other page."""
    from dashboard.app import NAV
    from dashboard.handlers import STATIC
    from lonewatch.simcontrols import control_routes

    async def page(request):
        return web.FileResponse(STATIC / "simulator.html")

    app.add_routes([web.get("/simulator", page), *control_routes(fleet, "/api/simulator")])
    app[NAV].append({"href": "/simulator", "label": "Simulator"})


async def run(config, *, embedded_broker=None, fleet=None, banner=None, ready: asyncio.Event | None = None) -> None:
    from gateway.service import Gateway

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async with AsyncExitStack() as parts:
        if embedded_broker is not None:
            await embedded_broker.start()
            parts.push_async_callback(stop_within, "broker", embedded_broker.stop)

        gateway = Gateway(config)
        await gateway.start()
        parts.push_async_callback(stop_within, "gateway", gateway.stop)

        runner = web.AppRunner(desk_app(gateway, config, fleet), shutdown_timeout=1.0, handle_signals=False)
        await runner.setup()
        parts.push_async_callback(stop_within, "dashboard", runner.cleanup)
        site = web.TCPSite(runner, config.dashboard.host, config.dashboard.port,
                           ssl_context=config.dashboard.ssl_context())
        try:
            await site.start()
        except OSError as exc:
            raise RuntimeError(
                f"cannot serve the dashboard on {config.dashboard.host}:{config.dashboard.port} ({exc.strerror}); "
                "choose another port with --http-port"
            ) from exc

        if fleet is not None:
            await fleet.start()
            parts.push_async_callback(stop_within, "simulated devices", fleet.stop)

        if banner:
            banner()
        if ready is not None:
            ready.set()
        notifier = Notifier.from_environment()
        notifier.send("READY=1")
        watchdog = asyncio.ensure_future(notifier.keep_alive(lambda: gateway.health()["timers_running"]))
        await stop.wait()
        watchdog.cancel()
        notifier.send("STOPPING=1")
        log.info("stopping")
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
