"""Imports point one way (docs/architecture): a rule cannot leak into a package that must not
know it, e.g. training can never reach the decision engine, nothing but the CLI wires monitoring."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
OURS = {"features", "models", "training", "serving", "monitoring", "synthbank", "propensity"}
ALLOWED = {
    "features": set(),
    "models": {"features"},
    "training": {"features", "models"},
    "serving": {"features", "models"},
    "monitoring": {"features", "models", "serving"},
    "synthbank": {"features"},
    "propensity": OURS,
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package: str) -> None:
    bad = {
        str(f.relative_to(ROOT)): sorted(_imports(f) - ALLOWED[package] - {package})
        for f in (ROOT / package).rglob("*.py")
    }
    assert {f: m for f, m in bad.items() if m} == {}
