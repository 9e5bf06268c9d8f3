"""The rules docs/architecture.md states about the code's layout, checked on the code."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "xpm"


def _package_of(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts[:-1]


def _imported(path: Path) -> list[tuple[int, list[str]]]:
    """(line, dotted name as parts) of every xpm module or name ``path`` imports."""
    package = _package_of(path)
    found: list[tuple[int, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = base + (node.module.split(".") if node.module else [])
            else:
                module = (node.module or "").split(".")
            found.append((node.lineno, module))
            found += [(node.lineno, [*module, alias.name]) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")) for alias in node.names]
    return [(line, name) for line, name in found if name[:1] == ["xpm"]]


def test_no_package_imports_another_packages_underscore_module() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        package = _package_of(path)
        for line, name in _imported(path):
            for i, part in enumerate(name[1:], start=1):
                if part.startswith("_") and not part.startswith("__"):
                    owner = name[:i]
                    if owner != package[: len(owner)]:  # neither its own nor an ancestor's
                        wrong.append(f"{path.relative_to(ROOT)}:{line}: {'.'.join(name)}")
                    break
    assert wrong == [], "import these from the package instead:\n" + "\n".join(wrong)


def test_the_architecture_page_names_every_module() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    unnamed = [
        str(path.relative_to(ROOT))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "__init__.py"
        and f"`{path.relative_to(ROOT)}`" not in page
        and f"`{path.stem}" not in page  # in its package's row: `_base` or `_base.py`
    ]
    assert unnamed == []
