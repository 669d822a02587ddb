"""The compliance map (docs/compliance-map.md) names tests that exist and every pack's sources.

An auditor follows the map from a clause to the test that proves it: a renamed or deleted test
would leave the map pointing at nothing, and a source added to a rule pack without a row would
leave a clause unaccounted for. Both fail here.
"""

from __future__ import annotations

import ast
import re
import tomllib
from importlib.resources import files
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "docs" / "compliance-map.md"
#: ``tests/renewals/test_gate.py::test_name`` or ``...::TestClass::test_name``.
TEST_ID = re.compile(r"`(tests/[\w/]+\.py)::([\w:]+)`")


def _map_text() -> str:
    return MAP.read_text(encoding="utf-8")


def _defined_tests(path: Path) -> set[str]:
    """The ``name`` and ``Class::name`` of every test function the file defines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            )
    return names


def test_the_map_names_tests() -> None:
    assert len(TEST_ID.findall(_map_text())) >= 40


@pytest.mark.parametrize(("path", "name"), sorted(set(TEST_ID.findall(_map_text()))))
def test_every_test_the_map_names_exists(path: str, name: str) -> None:
    file = ROOT / path
    assert file.is_file(), f"docs/compliance-map.md names {path}, which does not exist"
    assert name.startswith("test_") or "::test_" in name, f"{path}::{name} is not a test"
    assert name in _defined_tests(file), (
        f"docs/compliance-map.md names {path}::{name}, which {path} does not define: "
        "update the map when a test is renamed"
    )


def _pack_citations() -> list[tuple[str, str]]:
    packs = files("renewals.policies") / "packs"
    citations = []
    for pack in sorted(packs.iterdir(), key=lambda entry: entry.name):
        if pack.name.endswith(".toml"):
            data = tomllib.loads(pack.read_text(encoding="utf-8"))
            citations += [(data["code"], source["citation"]) for source in data["sources"]]
    return citations


@pytest.mark.parametrize(("pack", "citation"), _pack_citations())
def test_every_source_of_every_pack_is_mapped(pack: str, citation: str) -> None:
    assert citation in _map_text(), (
        f"rule pack {pack!r} cites {citation!r}, which docs/compliance-map.md does not map"
    )
