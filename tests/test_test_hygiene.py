"""The suite checks what it claims: every ``pytest.raises(DomainError)`` pins the error code (a test that only
expects "some domain error" passes when the service refuses for the wrong reason)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_DIRS = [ROOT / "tests", *ROOT.glob("*/tests")]


def _raises_domain_error(item: ast.withitem) -> bool:
    call = item.context_expr
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "raises"
        and bool(call.args)
        and isinstance(call.args[0], ast.Name)
        and call.args[0].id == "DomainError"
    )


def _checks_code(name: str, statements: list[ast.stmt]) -> bool:
    for node in ast.walk(ast.Module(body=statements, type_ignores=[])):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "code"
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "value"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == name
        ):
            return True
    return False


def unchecked_domain_errors(source: str, filename: str = "<test>") -> list[str]:
    """``file:line`` of every ``pytest.raises(DomainError)`` that neither has ``match=`` nor is followed (in the
    same block) by an assertion on ``<name>.value.code``."""
    found = []
    tree = ast.parse(source)
    for parent in ast.walk(tree):
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(parent, field, None)
            if not isinstance(block, list):
                continue
            for i, stmt in enumerate(block):
                if not isinstance(stmt, ast.With):
                    continue
                for item in stmt.items:
                    if not _raises_domain_error(item):
                        continue
                    call = item.context_expr
                    assert isinstance(call, ast.Call)
                    if any(k.arg == "match" for k in call.keywords):
                        continue
                    var = item.optional_vars
                    if isinstance(var, ast.Name) and _checks_code(var.id, block[i + 1 :]):
                        continue
                    found.append(f"{filename}:{stmt.lineno}")
    return found


def test_every_expected_domain_error_pins_its_code() -> None:
    offenders = []
    for directory in TEST_DIRS:
        for path in sorted(directory.rglob("test_*.py")):
            offenders += unchecked_domain_errors(path.read_text(), str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_check_itself_catches_an_unpinned_error() -> None:
    unpinned = "def test_x():\n    with pytest.raises(DomainError):\n        f()\n"
    named_only = "def test_x():\n    with pytest.raises(DomainError) as e:\n        f()\n    assert e.value\n"
    pinned = "def test_x():\n    with pytest.raises(DomainError) as e:\n        f()\n    assert e.value.code == 'x'\n"
    matched = "def test_x():\n    with pytest.raises(DomainError, match='x'):\n        f()\n"
    assert unchecked_domain_errors(unpinned) == ["<test>:2"]
    assert unchecked_domain_errors(named_only) == ["<test>:2"]
    assert unchecked_domain_errors(pinned) == []
    assert unchecked_domain_errors(matched) == []
