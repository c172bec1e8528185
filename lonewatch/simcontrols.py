"""The HTTP controls of a simulated world: a person drives its devices by
hand, as their wearers would. Served by `lonewatch sim` on its control
endpoint, and by the demo's desk under /api/simulator."""

from __future__ import annotations

from aiohttp import web


def control_routes(world, prefix: str = "") -> list[web.RouteDef]:
    """Driving devices by hand over HTTP: GET {prefix}/devices lists them with
    their state; POST {prefix}/devices/NAME/ACTION?KEY=VALUE does one of a
    scenario's device actions (simulator.scenario.DEVICE_ACTIONS), 404 for a
    device it does not have, 400 for an action or parameter it does not know.
    `world` has describe(), device_names() and async device_action(): the
    simulator's control endpoint, and the demo's simulator page at the desk."""
    from simulator.scenario import DEVICE_ACTIONS

    async def list_devices(request):
        return web.json_response(world.describe())

    async def act(request):
        name, action = request.match_info["name"], request.match_info["action"]
        if name not in world.device_names():
            return web.json_response({"error": f"no device {name!r}"}, status=404)
        if action not in DEVICE_ACTIONS:
            return web.json_response({"error": f"unknown action {action!r}; known: {', '.join(DEVICE_ACTIONS)}"},
                                     status=400)
        params = dict(request.query)
        for key, value in list(params.items()):
            kind = DEVICE_ACTIONS[action].get(key)
            if kind is None:
                return web.json_response({"error": f"{action}: unknown parameter {key!r}"}, status=400)
            try:
                params[key] = kind(value)
            except ValueError:
                return web.json_response({"error": f"{action}: {key} must be {kind.__name__}"}, status=400)
        await world.device_action(name, action, params)
        return web.json_response({"device": name, "action": action, "params": params})

    return [web.get(prefix + "/devices", list_devices), web.post(prefix + "/devices/{name}/{action}", act)]
