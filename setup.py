"""setuptools' hook for what pyproject.toml cannot say: the project's deployable files (the
template, the Chalice app, the stage Lambdas, the requirement files, the examples) ship in the
wheel as ``mmedeploy/_project``, so an installed mmedeploy packages and runs the local stack and
the demo outside a clone. What ships is listed once, in mmedeploy/project_files.py (SHIPPED,
EXCLUDED), and MANIFEST.in carries the same into the sdist. An editable install ships nothing:
it reads the clone."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _project_files():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("_mmedeploy_project_files", ROOT / "mmedeploy" / "project_files.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


class BuildPyWithProjectFiles(build_py):
    def run(self) -> None:
        if not self.editable_mode:  # nothing left from an earlier build (a module since removed)
            for package in ("mmedeploy", "chalicelib"):
                shutil.rmtree(Path(self.build_lib) / package, ignore_errors=True)
        super().run()
        if self.editable_mode:
            return
        files = _project_files()
        shipped = Path(self.build_lib) / "mmedeploy" / "_project"
        for relative in files.shipped_files(ROOT):
            target = shipped / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, target)


# an in-tree build (pip install ., pipx install .) keeps out of the project's build/ outputs
setup(cmdclass={"build_py": BuildPyWithProjectFiles}, options={"build": {"build_base": "build/wheel"}})
