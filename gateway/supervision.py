"""Supervision: is each registered device reachable and charged?

Device states:  unknown -> online <-> offline (Last Will, at once)
                           online  -> lost    (no message for missed_heartbeats
                                               heartbeat intervals)
                 unknown -> lost              (registered, never heard from
                                               within that window)
                 offline/lost -> online       (any message from the device)

The states are rows in the database, so they survive a gateway restart: a
device that was offline or lost stays so, and is not reported twice.

Going offline or lost and a battery falling below the threshold are
technical incidents: lower priority than a person's alarm, but on the desk,
because a wearer whose device cannot call for help is not protected.
"""

from __future__ import annotations

from gateway.config import SupervisionSection
from gateway.incidents import Effects, raise_alarm
from gateway.store import Store

# Said the same for a Last Will and a device switched off: the status cannot
# tell them apart, and either way the wearer is unprotected.
OFFLINE_SUMMARY = "{device} went offline: the wearer cannot raise an alarm until it is back"
LOST_SUMMARY = "no contact with {device} for {seconds:g} s ({missed} missed heartbeats)"
NEVER_SEEN_SUMMARY = ("{device} is enrolled but has never been heard from: it protects nobody until it "
                      "connects (switched on? Wi-Fi and broker credentials right?)")
BATTERY_SUMMARY = "battery low on {device}: {pct}% (threshold {threshold}%)"


def device_heard(store: Store, effects: Effects, device: str, now: float, before: dict) -> None:
    """Any valid message proves the device is connected."""
    if before["state"] != "online":
        store.set_device_state(device, "online")
        store.audit(now, "gateway", "device_online", f"{device} is online (was {before['state']})")
        effects.devices.append(device)


def status_received(store: Store, effects: Effects, site: str, device: str, state: str,
                    now: float, before: dict) -> None:
    if state == "online":
        device_heard(store, effects, device, now, before)
        return
    if before["state"] == "offline":
        return  # the retained Last Will again, e.g. after a gateway restart
    store.set_device_state(device, "offline")
    store.audit(now, "gateway", "device_offline", f"{device} reported offline (Last Will or switched off)")
    effects.devices.append(device)
    raise_alarm(store, effects, site=site, device=device, alarm_type="technical", cause="offline",
                now=now, summary=OFFLINE_SUMMARY.format(device=device))


def battery_reported(store: Store, effects: Effects, config: SupervisionSection, site: str,
                     device: str, pct: int, now: float, before: dict) -> None:
    """Raise once when the level crosses below the threshold, not on every heartbeat."""
    was = before.get("battery_pct")
    if pct < config.low_battery_pct and (was is None or was >= config.low_battery_pct):
        raise_alarm(store, effects, site=site, device=device, alarm_type="technical", cause="low_battery",
                    now=now, battery_pct=pct,
                    summary=BATTERY_SUMMARY.format(device=device, pct=pct, threshold=config.low_battery_pct))
        effects.devices.append(device)


def check_lost(store: Store, effects: Effects, config: SupervisionSection, now: float,
               connected_since: float) -> None:
    """Mark devices silent for too long as lost.

    Only once the gateway itself has listened for a whole window: after a
    gateway outage every device would otherwise look silent at once.
    """
    window = config.heartbeat_interval_s * config.missed_heartbeats
    if now - connected_since < window:
        return
    for row in store.devices_never_heard():
        store.set_device_state(row["device"], "lost")
        store.audit(now, "gateway", "device_never_seen", f"{row['device']} never heard from since enrolled")
        effects.devices.append(row["device"])
        raise_alarm(store, effects, site=row["site"] or "?", device=row["device"], alarm_type="technical",
                    cause="never_seen", now=now, summary=NEVER_SEEN_SUMMARY.format(device=row["device"]))
    for row in store.devices_silent_since(now - window):
        if not row["registered"]:
            continue
        store.set_device_state(row["device"], "lost")
        store.audit(now, "gateway", "device_lost", f"{row['device']} silent since {row['last_seen']:.0f}")
        effects.devices.append(row["device"])
        raise_alarm(store, effects, site=row["site"], device=row["device"], alarm_type="technical",
                    cause="lost_contact", now=now,
                    summary=LOST_SUMMARY.format(device=row["device"], seconds=window,
                                                missed=config.missed_heartbeats))
