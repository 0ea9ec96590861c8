"""The direction of the domain apps (ARCHITECTURE.md §3), read from the code itself.

catalog <- inventory <- production -> printers; reconstruction -> catalog, billing; billing -> fablab only.
Every `import` and `from ... import` of an app's modules (tests, migrations and imports inside functions
included) is checked; `fablab` is the shared infrastructure every app may use.
"""

import ast
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
DOMAIN_APPS = ("catalog", "inventory", "production", "printers", "reconstruction", "billing")

# app -> the domain apps it must never import
FORBIDDEN = {
    "printers": {"catalog", "inventory", "production", "reconstruction", "billing"},
    "catalog": {"inventory", "production", "printers", "reconstruction", "billing"},
    "inventory": {"production", "printers", "reconstruction", "billing"},
    "reconstruction": {"inventory", "production", "printers"},
    "billing": {"catalog", "inventory", "production", "printers", "reconstruction"},
}


def imported_apps(path: Path) -> set[tuple[str, int]]:
    """(top-level package, line) of every absolute import in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def violations(app: str) -> list[str]:
    files = sorted((BASE_DIR / app).rglob("*.py"))
    assert files, f"no modules found for {app}"
    return [
        f"{path.relative_to(BASE_DIR)}:{line} imports {package}"
        for path in files
        for package, line in sorted(imported_apps(path))
        if package in FORBIDDEN[app]
    ]


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_apps_import_only_in_the_allowed_direction(app):
    assert violations(app) == []


def test_the_check_sees_imports_inside_functions_and_ignores_relative_ones(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("import catalog.models\nfrom . import files\n\ndef f():\n    from production import services\n")
    assert imported_apps(module) == {("catalog", 1), ("production", 5)}


def test_every_domain_app_is_covered():
    assert set(FORBIDDEN) | {"production"} == set(DOMAIN_APPS)
