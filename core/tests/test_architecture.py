"""The apps depend on each other in one direction only (STYLE.md):

    core  <-  accounts  <-  billing  <-  payments
                  ^
            notifications   (core and accounts only)

Every import counts, those inside functions too: a local import is no way
around the rule. Tests, migrations and benchmarks are left out, as in
shared/tools/app_cycles.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

ALLOWED = {
    "core": set(),
    "accounts": {"core"},
    "notifications": {"core", "accounts"},
    "billing": {"core", "accounts", "notifications"},
    "payments": {"core", "accounts", "notifications", "billing"},
    # The back office's pages see every area (Customer 360); nothing imports it.
    "backoffice": {"core", "accounts", "notifications", "billing", "payments"},
    # A bank's side for the demo and the tests: it knows Selfcare by HTTP only.
    "sandbox_bank": set(),
}


def _apps(root: Path = ROOT) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/apps.py"))


def _imports(app: str, root: Path = ROOT) -> dict[str, str]:
    """Other apps that `app` imports, each with the first place it does."""
    apps = set(_apps(root)) | {"selfcare"}
    found: dict[str, str] = {}
    for path in (root / app).rglob("*.py"):
        if {"tests", "migrations"} & set(path.relative_to(root).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in apps and top != app:
                    found.setdefault(top, f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_every_app_has_a_place_in_the_dependency_order() -> None:
    assert set(_apps()) <= set(ALLOWED), "a new app needs its place in ALLOWED and in STYLE.md"


def test_apps_import_only_the_apps_below_them() -> None:
    wrong = [
        f"{app} -> {other} ({where})"
        for app in _apps()
        for other, where in _imports(app).items()
        if other not in ALLOWED.get(app, set())
    ]
    assert not wrong, "imports against the dependency order:\n" + "\n".join(wrong)


def test_the_guard_sees_an_import_hidden_inside_a_function(tmp_path: Path) -> None:
    for app in ("accounts", "billing"):
        (tmp_path / app).mkdir()
        (tmp_path / app / "apps.py").write_text("")
    (tmp_path / "accounts" / "services.py").write_text(
        "def f():\n    from billing.models import Bill\n    return Bill\n"
    )
    assert _imports("accounts", tmp_path) == {"billing": "accounts/services.py:2"}
