"""The project's own modules are imported at the top of a module, where a reader (and
import-linter, which checks the layers in CI's lint step) sees them. An import inside a function
hides a dependency, usually one against the layers; the only ones allowed say why on their line:
start-up order (an AppConfig.ready() that needs the models loaded)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "audit", "models_app", "approvals", "exchange", "registry_site")


def _own(node: ast.Import | ast.ImportFrom) -> bool:
    names = (
        [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
    )
    if isinstance(node, ast.ImportFrom) and node.level:
        return True  # a relative import is always the project's own
    return any(name.split(".")[0] in PACKAGES for name in names)


def function_level_imports() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            source = path.read_text()
            lines = source.splitlines()
            for func in ast.walk(ast.parse(source)):
                if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno}"
                    for node in ast.walk(func)
                    if isinstance(node, ast.Import | ast.ImportFrom)
                    and _own(node)
                    and "start-up" not in lines[node.lineno - 1]
                ]
    return found


def test_no_function_level_import_of_the_projects_own_modules():
    assert function_level_imports() == []


def test_the_check_finds_a_function_level_import(tmp_path, monkeypatch):
    package = tmp_path / "core"
    package.mkdir()
    (package / "late.py").write_text("def f():\n    from core import sql\n    return sql\n")
    monkeypatch.setattr("tests.core.test_imports.ROOT", tmp_path)
    monkeypatch.setattr("tests.core.test_imports.PACKAGES", ("core",))
    assert function_level_imports() == ["core/late.py:2"]
