"""lonewatch as an operator installs it: the wheel built from this checkout,
installed (not editable) into a fresh virtual environment, run from outside
the checkout. Every command answers --help, the firmware files come with it,
and `lonewatch gateway` starts against a real broker."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import ROOT, free_port, stop_process
from lonewatch.cli import COMMANDS


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh virtual environment with the wheel installed."""
    tmp = tmp_path_factory.mktemp("install")
    # Built from a copy: setuptools leaves a build/ folder behind, whose stale
    # files would find their way into the next wheel built from the checkout.
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp / "dist"), str(source)],
                   check=True, timeout=300, cwd=tmp)
    wheel = next((tmp / "dist").glob("lonewatch-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True, timeout=120)
    bin_dir = tmp / "venv" / "bin"
    subprocess.run([str(bin_dir / "pip"), "install", "--quiet", str(wheel)], check=True, timeout=600, cwd=tmp)
    return bin_dir


def _commands() -> list[list[str]]:
    words = []
    for name, entry in COMMANDS.items():
        words += [[name, sub] for sub in entry] if isinstance(entry, dict) else [[name]]
    return words


def test_the_installed_package_is_not_this_checkout(installed, tmp_path):
    where = subprocess.run([str(installed / "python"), "-c", "import gateway, simulator.paths as p; "
                            "print(gateway.__file__); print(p.FIRMWARE)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout.split()
    assert all("site-packages" in path for path in where), where
    firmware = Path(where[1])
    assert (firmware / "main.py").exists() and (firmware / "mandown.py").exists()


def test_every_command_answers_help(installed, tmp_path):
    for words in [[], *_commands()]:
        result = subprocess.run([str(installed / "lonewatch"), *words, "--help"], capture_output=True, text=True,
                                timeout=60, cwd=tmp_path)
        assert result.returncode == 0, (words, result.stderr)
        assert result.stdout.startswith("usage: lonewatch"), words


def test_the_installed_gateway_starts_and_subscribes(installed, tmp_path, mosquitto):
    config = tmp_path / "gateway.toml"
    config.write_text(f'[gateway]\ndb = "{tmp_path / "lonewatch.db"}"\n[mqtt]\nurl = "{mosquitto.url}"\n'
                      f'[dashboard]\nport = {free_port()}\n')
    proc = subprocess.Popen([str(installed / "lonewatch"), "gateway", "--config", str(config)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    started = threading.Event()

    def read():
        for line in proc.stderr:
            lines.append(line)
            if " started (db " in line:
                started.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert started.wait(30), "".join(lines)
    finally:
        stop_process(proc)
    assert proc.returncode == 0, "".join(lines)
    assert not any("Traceback" in line for line in lines), "".join(lines)
