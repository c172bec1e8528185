"""`lonewatch backup` while the gateway runs and stores alarms, and a restore:
a gateway started on the copy knows what was stored before the backup."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from gateway_harness import Device, GatewayProcess, make_config, running_gateway, wait_for, write_config

from gateway.store import Store

LONEWATCH = str(Path(sys.executable).parent / "lonewatch")


def backup(db: Path, to: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LONEWATCH, "backup", "--db", str(db), "--to", str(to)], capture_output=True, text=True,
                          timeout=60)


async def test_backup_while_alarms_arrive_then_restore_and_run_on_it(tmp_path, mosquitto):
    live = tmp_path / "live"
    live.mkdir()
    config_path = write_config(live, mosquitto, devices={"registered": ["dev-001"]})
    db = live / "lonewatch.db"
    gateway = GatewayProcess(config_path)
    gateway.start()
    device = Device(mosquitto, persistent=True)
    try:
        await gateway.ready()
        before = device.alarm("panic")
        await device.wait_command("delivered")
        for _ in range(20):  # the writer is busy while the copy is made
            device.heartbeat()
        result = backup(db, tmp_path / "copy.db")
        assert result.returncode == 0, result.stderr
        assert "1 incidents" in result.stdout
    finally:
        gateway.stop()

    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(tmp_path / "copy.db", restored / "lonewatch.db")
    async with running_gateway(make_config(restored, mosquitto, devices={"registered": ["dev-001"]})) as on_copy:
        assert [i["alarm_id"] for i in on_copy.store.list_incidents()] == [before["id"]]
        device.publish("alarm", before)  # the device sends it again: known, so only answered
        assert (await device.wait_command("delivered")).body["ref"] == before["id"]
        after = device.alarm("panic")
        await wait_for(lambda: after["id"] in {m["msg_id"] for m in on_copy.store.list_messages(kind="alarm")},
                       what="a new alarm stored on the restored database")
        assert len(on_copy.store.list_incidents()) == 1  # attached to the open one, no duplicate
    device.close()


def test_backup_refuses_to_overwrite_the_database_and_says_why(tmp_path):
    db = tmp_path / "lonewatch.db"
    Store(str(db)).close()
    result = backup(db, db)
    assert result.returncode == 2 and "must not be the database itself" in result.stderr
    result = backup(tmp_path / "missing.db", tmp_path / "copy.db")
    assert result.returncode == 2 and "no database at" in result.stderr
    assert not (tmp_path / "copy.db").exists()


def test_a_failed_backup_leaves_no_partial_file(tmp_path):
    db = tmp_path / "lonewatch.db"
    db.write_bytes(b"this is not a database" * 100)
    result = backup(db, tmp_path / "copy.db")
    assert result.returncode == 1 and "lonewatch backup:" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lonewatch.db"]
