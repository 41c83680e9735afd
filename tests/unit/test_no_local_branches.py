"""Handlers have no local branches: the local stack differs from AWS only by endpoints and
credentials. This fails if deployed code reads a local-only variable or mentions the local stack."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOYED = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py")), *sorted((ROOT / "functions").rglob("*.py"))]
LOCAL_ONLY = ("MOTO", "LOCALSTACK", "MMEDEPLOY_LOCAL", "IS_LOCAL", "AWS_SAM_LOCAL", "LOCAL_")
FORBIDDEN_TEXT = ("mmedeploy.local", "moto", "localhost", "127.0.0.1", "stack.json")


def _environment_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        # os.environ["X"], os.environ.get("X"), os.getenv("X")
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and "environ" in ast.unparse(node.value)
        ):
            names.add(str(node.slice.value))
        if (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and ast.unparse(node.func) in ("os.getenv", "os.environ.get", "environ.get", "getenv")
        ):
            names.add(str(node.args[0].value))
    return names


def test_deployed_code_reads_no_local_only_variable_and_names_no_local_part() -> None:
    offenders: list[str] = []
    for path in DEPLOYED:
        source = path.read_text()
        for name in _environment_names(ast.parse(source)):
            if name.upper().startswith(LOCAL_ONLY) or "LOCAL" in name.upper():
                offenders.append(f"{path.relative_to(ROOT)} reads {name}")
        for text in FORBIDDEN_TEXT:
            if text in source:
                offenders.append(f"{path.relative_to(ROOT)} mentions {text!r}")
    assert not offenders, "deployed code must not branch on the local stack:\n" + "\n".join(offenders)


def test_the_guard_catches_a_local_branch() -> None:
    tree = ast.parse('import os\nif os.environ.get("MMEDEPLOY_LOCAL"):\n    pass\nx = os.environ["IS_LOCAL"]\n')
    assert _environment_names(tree) == {"MMEDEPLOY_LOCAL", "IS_LOCAL"}
