"""Dependencies point one way (docs/architecture.md):

    lonewatch (the command) -> bench -> dashboard -> gateway -> contract
                                     -> simulator ----------------> contract

Every import in a part's files counts, those inside functions too: a part
that reaches up, even lazily, is tied to what it reaches."""

from __future__ import annotations

import ast

import pytest

from conftest import ROOT

# part -> the parts of ours it may import besides itself
ALLOWED = {
    "contract": set(),
    "gateway": {"contract"},
    "dashboard": {"gateway", "contract"},
    "simulator": {"contract"},
    "bench": {"gateway", "dashboard", "simulator", "contract"},
    "lonewatch": {"gateway", "dashboard", "simulator", "bench", "contract"},
}


def imported_parts(path) -> dict[str, int]:
    """Our top-level packages that a file imports, with the first line that does."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in ALLOWED:
                found.setdefault(top, node.lineno)
    return found


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_a_part_imports_only_what_lies_below_it(part):
    wrong = []
    for path in sorted((ROOT / part).rglob("*.py")):
        for top, line in imported_parts(path).items():
            if top != part and top not in ALLOWED[part]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    assert not wrong, "\n".join(wrong)


def test_the_gateway_imports_neither_the_desk_nor_the_simulator():
    # The one the issue names, spelled out: an installed gateway must start
    # without the web side's or the simulator's modules.
    for path in (ROOT / "gateway").rglob("*.py"):
        assert not {"dashboard", "simulator"} & set(imported_parts(path)), path
