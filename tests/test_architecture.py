"""The rules docs/architecture.md states about the code's layout, checked on the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "xpm"


def _package_of(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts[:-1]


def _imported(path: Path, tree: ast.AST | None = None) -> list[tuple[int, list[str]]]:
    """(line, dotted name as parts) of every xpm module or name ``path`` (parsed: ``tree``)
    imports."""
    package = _package_of(path)
    found: list[tuple[int, list[str]]] = []
    for node in ast.walk(tree or ast.parse(path.read_text(encoding="utf-8"))):
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


def test_no_module_imports_another_modules_private_names() -> None:
    """A name starting with ``_`` is its module's own: what another module needs is
    given a public name (within a private module) instead."""
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or "xpm" in (node.module or "")):
                wrong += [
                    f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_")
                    and not alias.name.startswith("__")
                    and node.module is not None
                ]
    assert wrong == [], "give these a public name:\n" + "\n".join(wrong)


def _package_rows(page: str) -> dict[str, str]:
    """The text of the architecture page's table rows, by the package they start with
    (``xpm/index/``; a package may have a row in each table)."""
    rows: dict[str, str] = {}
    for line in page.splitlines():
        if line.startswith("| `xpm/") and line.split("`")[1].endswith("/"):
            package = line.split("`")[1]
            rows[package] = rows.get(package, "") + line
    return rows


def test_the_architecture_page_names_every_module() -> None:
    """Each top-level module has its own row; each module of a subpackage is named in that
    package's row (``_base`` or ``_base.py``), not merely somewhere on the page."""
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = _package_rows(page)
    unnamed = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if path.name == "__init__.py":
            continue
        if path.parent == PACKAGE:
            named = f"| `{relative}` |" in page
        else:
            row = rows.get(f"{path.parent.relative_to(ROOT)}/", "")
            named = f"`{path.stem}`" in row or f"`{path.stem} " in row or f"`{path.name}" in row
        if not named:
            unnamed.append(str(relative))
    assert unnamed == []


#: The size at which a module is split by concept (docs/architecture.md).
MAX_MODULE_LINES = 600


def test_no_module_is_over_the_size_limit() -> None:
    too_long = {
        str(path.relative_to(ROOT)): n
        for path in sorted(PACKAGE.rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}, f"split these by concept (at most {MAX_MODULE_LINES} lines)"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the xpm modules it imports, at module level or inside functions (lazy
    imports run too, just later); imports for type checkers only are left out.  A name
    taken from a package's lazy ``__getattr__`` counts as the package."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []  # the walk over imports below then skips it
        graph[name] = set()
        for _, parts in _imported(path, tree):
            while parts and ".".join(parts) not in modules:
                parts = parts[:-1]
            target = ".".join(parts)
            if target and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in order:
            continue
        work = [(root, iter(sorted(graph[root])))]
        order[root] = low[root] = len(order)
        stack.append(root)
        while work:
            node, edges = work[-1]
            child = next((e for e in edges if e not in order or e in stack), None)
            if child is not None and child not in order:
                order[child] = low[child] = len(order)
                stack.append(child)
                work.append((child, iter(sorted(graph[child]))))
                continue
            if child is not None:
                low[node] = min(low[node], order[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == order[node]:
                component = []
                while True:
                    member = stack.pop()
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_only_import_cycle_is_the_documented_config_identifier_pair() -> None:
    """docs/architecture.md: a configuration's identifier needs the configuration's fields,
    and assigning a task output into a configuration needs its identifier."""
    assert _cycles(_import_graph()) == [["xpm._config", "xpm._identifier"]]


def test_the_cycle_check_sees_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


#: A statement of SQL in a string (upper case, as xpm writes SQL; prose says "select").
_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b")


def _sql_strings(source: str) -> list[tuple[int, str]]:
    """(line, text) of the string constants of ``source`` that hold SQL statements (an
    f-string's literal parts included; implicit concatenation is one constant), in order."""
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _SQL.search(node.value)
    )


def test_the_web_view_writes_no_sql() -> None:
    """All SQL lives in xpm/index/ (docs/architecture.md): the web view calls its named
    functions and places its canned queries.  Connection control stays there
    (``PRAGMA query_only``, a snapshot's ``BEGIN``/``COMMIT``): it is not a statement
    on the index's tables."""
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text[:60]!r}"
        for path in sorted((PACKAGE / "datasette").rglob("*.py"))
        for line, text in _sql_strings(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "move this SQL to a module of xpm/index/:\n" + "\n".join(found)


def test_the_sql_check_sees_sql() -> None:
    source = (
        'a = f"SELECT id FROM {table} WHERE x = 1"\n'
        'b = "the select box; update the page"\n'
        'c = "PRAGMA query_only = 1"\n'
        'd = ("DELETE FROM jobs "\n     "WHERE id = ?")\n'
        'e = "BEGIN"\n'
    )
    assert [line for line, _text in _sql_strings(source)] == [1, 4]
