"""The docs a newcomer reads first are kept honest: every command the README's
table names exists and answers --help, every subcommand is in that table,
and every key of gateway/example-config.toml is documented in docs/gateway.md."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT
from lonewatch.cli import COMMANDS

LONEWATCH = str(Path(sys.executable).parent / "lonewatch")


def readme_commands() -> list[list[str]]:
    """The words after `lonewatch` in the first cell of each row of the README's command table."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## The `lonewatch` command"):]
    rows = re.findall(r"^\| `lonewatch ([^`]+)` \|", table, flags=re.M)
    return [[word for word in row.split() if re.fullmatch(r"[a-z]+", word)] for row in rows]


def cli_commands() -> list[list[str]]:
    found = []
    for name, entry in COMMANDS.items():
        if isinstance(entry, dict):
            found += [[name, sub] for sub in entry]
        else:
            found.append([name])
    return found


def test_the_readme_table_lists_every_command_and_only_those():
    groups = {name for name, entry in COMMANDS.items() if isinstance(entry, dict)}
    documented = {" ".join(words[:2] if words[0] in groups else words[:1]) for words in readme_commands()}
    assert documented == {" ".join(words) for words in cli_commands()}


@pytest.mark.parametrize("words", cli_commands(), ids=" ".join)
def test_every_command_answers_help(words):
    result = subprocess.run([LONEWATCH, *words, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: lonewatch " + " ".join(words))


def test_every_key_of_the_example_config_is_documented():
    example = tomllib.loads((ROOT / "gateway" / "example-config.toml").read_text())
    doc = (ROOT / "docs" / "gateway.md").read_text()
    table = doc[doc.index("## Configuration"):]
    missing = []
    for section, keys in example.items():
        # A row names the section and its keys: "| `[mqtt] url` |", "| `[mqtt] username`, `password` |".
        rows = [line for line in table.splitlines() if line.startswith(f"| `[{section}]")]
        for key in keys:
            if not any(re.search(rf"`(\[{section}\] )?{re.escape(key)}`", line) for line in rows):
                missing.append(f"[{section}] {key}")
    assert not missing, f"keys of example-config.toml missing from docs/gateway.md: {missing}"
