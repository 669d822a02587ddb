"""The benchmarks stand on their own: nothing under ``bench/`` imports from ``tests/`` or
names one of its modules (a settings module, a resolver), so a change made for the tests
never changes what the benchmarks measure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def references_to_tests(path: Path) -> list[str]:
    """The imports of ``tests`` modules in ``path``, and the strings naming one."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names if name.split(".")[0] == "tests"]
    return found


@pytest.mark.parametrize("path", sorted(BENCH.glob("*.py")), ids=lambda path: path.name)
def test_a_benchmark_uses_nothing_of_the_tests(path: Path) -> None:
    assert references_to_tests(path) == []
