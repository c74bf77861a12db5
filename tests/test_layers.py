"""The layers point down (docs/ARCHITECTURE.md): genau_core imports nothing from bench or userstudy, and
bench nothing from userstudy.

Two checks, because imports inside functions only run when called:
- every `import` / `from ... import` statement and every `importlib.import_module("...")` literal anywhere
  in a layer's source (functions included) is read from its syntax tree;
- every module of the layer is imported in a fresh interpreter where the layers above are unimportable.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ABOVE = {"genau_core": ("bench", "userstudy"), "bench": ("userstudy",)}


def imported_names(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, at any depth, plus import_module string literals."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            out.append((node.lineno, node.args[0].value))
    return out


def upward_imports(layer: str) -> list[str]:
    above = ABOVE[layer]
    return [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        for line, name in imported_names(path)
        if name.split(".")[0] in above
    ]


def test_imported_names_sees_nested_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\ndef g():\n    from bench.audio import x\n    importlib.import_module('userstudy.cli')\n")
    assert imported_names(f) == [(1, "os"), (3, "bench.audio"), (4, "userstudy.cli")]


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_no_import_points_up(layer):
    assert upward_imports(layer) == []


_IMPORT_ALL = """
import importlib, pkgutil, sys
blocked = set(sys.argv[2].split(","))
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"layer violation: {name} imported")
        return None
sys.meta_path.insert(0, Block())
pkg = importlib.import_module(sys.argv[1])
names = [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".") if not m.name.endswith(".__main__")]
bad = []
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as e:
        if "layer violation" in str(e):
            bad.append(f"{name}: {e}")
print(len(names), "modules")
print("\\n".join(bad))
sys.exit(1 if bad else 0)
"""


def test_genau_core_imports_with_bench_and_userstudy_unimportable():
    r = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, "genau_core", "bench,userstudy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert int(r.stdout.split()[0]) > 50  # every module was walked
