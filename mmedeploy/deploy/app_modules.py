"""The application files a Lambda artifact needs: its handler modules and every module of the
project's own packages they import, followed transitively.

Imports are read from the source (``ast``), wherever they are written: at the top of a module or
inside a function (a lazy import still runs on Lambda). Imports under ``if TYPE_CHECKING:`` are
left out, since they never run. Only modules found under ``root`` are followed; everything else is
a dependency, packaged from a requirements file. A module named in an import but found nowhere is
an error, so a typo cannot produce an artifact that fails at import on Lambda. Dynamic imports
(``importlib.import_module``) are not seen; the project has none, and the handler-import test
(tests/unit/test_lambda_artifacts.py) would catch a module left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path, PurePosixPath


class AppModuleError(Exception):
    """An import cannot be resolved or a source cannot be read; the message says why."""


def _module_file(root: Path, module: str) -> PurePosixPath | None:
    """``a/b.py`` or ``a/b/__init__.py`` for module ``a.b`` under ``root``, relative to it."""
    base = PurePosixPath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if (root / candidate).is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement of ``tree`` that can run (not under ``if TYPE_CHECKING:``)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imported_names(path: PurePosixPath, node: ast.Import | ast.ImportFrom) -> tuple[list[str], list[str]]:
    """The modules an import loads, and those it may load: ``import a.b`` loads a.b; ``from a
    import b`` loads a, and a.b if that is a module. Relative imports are resolved against
    ``path``'s package."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names], []
    base = node.module or ""
    if node.level:
        package = list(path.parent.parts)
        if node.level - 1 > len(package):
            raise AppModuleError(f"{path}:{node.lineno}: relative import beyond the top-level package")
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join([*anchor, *([base] if base else [])])
    names = [alias.name for alias in node.names if alias.name != "*"]
    return [base] if base else [], [f"{base}.{name}" if base else name for name in names]


def app_files(root: Path, entries: Iterable[str], packages: Iterable[str]) -> dict[str, Path]:
    """``{name in the zip: path}`` for the modules ``entries`` (dotted names, e.g. ``app`` or
    ``functions.validate``) and every module of ``packages`` (top-level names, e.g.
    ``chalicelib``) they import, with the ``__init__.py`` of each package on the way."""
    own = frozenset(packages)
    files: dict[str, Path] = {}
    pending = list(entries)
    seen: set[str] = set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        found = _module_file(root, module)
        if found is None:
            raise AppModuleError(f"module {module} is imported but not found under {root}")
        parts = module.split(".")
        for depth in range(1, len(parts)):
            pending.append(".".join(parts[:depth]))  # the enclosing packages' __init__.py
        path = root / found
        files[found.as_posix()] = path
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (OSError, SyntaxError) as exc:
            raise AppModuleError(f"cannot read {path}: {exc}") from exc
        for node in _runtime_imports(tree):
            loaded, maybe = _imported_names(found, node)
            pending += [name for name in loaded if name.split(".", 1)[0] in own]
            # `from a import b`: b is a submodule (followed) or a name that a defines
            pending += [name for name in maybe if name.split(".", 1)[0] in own and _module_file(root, name)]
    return files
