"""The people the devices protect: a registry of workers (name, phone, a note
for responders) and which device each wears, kept over time so an old
incident names who wore the device then. The command line and the desk both
go through these functions, so both check the same things and audit alike."""

from __future__ import annotations

import re

from contract.protocol import NAME_RE

MAX_NAME = 100
MAX_NOTE = 500
# What a person dials: digits with the usual separators, a leading + for international.
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ().-]{2,30}\Z")


def check_worker(name, phone, note="") -> tuple[str, str, str]:
    """name, phone, note cleaned up; ValueError saying what is wrong."""
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise ValueError(f"name must be 1 to {MAX_NAME} characters, got {name!r}")
    if not isinstance(phone, str) or not PHONE_RE.match(phone.strip()):
        raise ValueError(f"phone must be a number to dial (digits, spaces, + ( ) - .), got {phone!r}")
    if note is None:
        note = ""
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise ValueError(f"note must be text of at most {MAX_NOTE} characters")
    return name.strip(), phone.strip(), note.strip()


def check_device(device) -> str:
    if not isinstance(device, str) or not NAME_RE.match(device):
        raise ValueError(f"device id must match {NAME_RE.pattern}, got {device!r}")
    return device


def add_worker(store, name, phone, note, device, now: float, by: str) -> dict:
    """In the caller's transaction; with device, the worker wears it from now."""
    name, phone, note = check_worker(name, phone, note)
    worker_id = store.add_worker(name, phone, note, now)
    store.audit(now, by, "worker_added", f"worker {worker_id} {name}")
    if device is not None:
        assign(store, worker_id, device, now, by)
    return store.get_worker(worker_id)


def update_worker(store, worker_id: int, now: float, by: str, **fields) -> dict:
    worker = _existing(store, worker_id)
    name, phone, note = check_worker(fields.get("name", worker["name"]), fields.get("phone", worker["phone"]),
                                     fields.get("note", worker["note"]))
    store.update_worker(worker_id, name=name, phone=phone, note=note)
    store.audit(now, by, "worker_changed", f"worker {worker_id} {name}")
    return store.get_worker(worker_id)


def assign(store, worker_id: int | None, device, now: float, by: str) -> None:
    """Device worn by worker_id from now (None: by nobody); earlier assignments of both end."""
    check_device(device)
    if worker_id is None:
        store.assign(device, None, now, by)
        store.audit(now, by, "device_unassigned", device)
        return
    worker = _existing(store, worker_id)
    # Giving a device to a worker enrolls it, whether or not it has connected yet.
    store.register_device(device)
    store.assign(device, worker_id, now, by)
    store.audit(now, by, "device_assigned", f"{device} to worker {worker_id} {worker['name']}")


def find_worker(store, ref) -> dict:
    """A worker by id, or by a name only one worker has."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        return _existing(store, int(ref))
    found = store.workers_named(str(ref).strip())
    if not found:
        raise ValueError(f"no worker named {ref!r}")
    if len(found) > 1:
        raise ValueError(f"{len(found)} workers are named {ref!r}; give the id instead "
                         f"({', '.join(str(w['id']) for w in found)})")
    return found[0]


def _existing(store, worker_id: int) -> dict:
    worker = store.get_worker(int(worker_id))
    if worker is None:
        raise ValueError(f"no worker with id {worker_id}")
    return worker
