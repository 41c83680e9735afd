"""The pre-commit hooks and the example CI workflow call commands that exist, with options the
CLI accepts: a renamed option fails here, not in a user's pipeline."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmedeploy.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / ".pre-commit-hooks.yaml"
WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"
SHELL_VALUE = re.compile(r"\$\{?[A-Za-z_][A-Za-z_0-9]*\}?")


def _parses(argv: list[str]) -> None:
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's answer to an unknown command or option
        pytest.fail(f"'mmedeploy {shlex.join(argv)}' does not parse (exit {exc.code})")


def _mmedeploy_commands(workflow: dict[str, Any]) -> list[list[str]]:
    """Each ``mmedeploy ...`` line of the workflow's run steps, split as the shell would, with
    shell values as the workflow's env sets them (others as a plain word)."""
    env = {name: str(value) for name, value in workflow.get("env", {}).items()}

    def value(match: re.Match[str]) -> str:
        return env.get(match.group(0).strip("${}"), "x")

    commands = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            script = str(step.get("run", "")).replace("\\\n", " ")  # continued lines, joined
            for line in script.splitlines():
                if line.strip().startswith("mmedeploy "):
                    commands.append([SHELL_VALUE.sub(value, word) for word in shlex.split(line)])
    return commands


def _subcommand(argv: list[str]) -> str:
    """The subcommand of ``mmedeploy [--target NAME] COMMAND ...``."""
    return argv[3] if argv[1] == "--target" else argv[1]


def test_every_hook_entry_is_a_command_the_cli_accepts_with_file_names() -> None:
    hooks = yaml.safe_load(HOOKS.read_text())
    assert len({h["id"] for h in hooks}) == len(hooks)
    for hook in hooks:
        argv = shlex.split(hook["entry"])
        assert argv[0] == "mmedeploy", hook
        # pre-commit appends the changed files' names
        _parses([*argv[1:], "models/fraud/fraud_pre/1/model.py", "models/fraud/model_version.txt"])


def test_every_mmedeploy_line_of_the_example_workflow_parses() -> None:
    commands = _mmedeploy_commands(yaml.safe_load(WORKFLOW.read_text()))
    # the workflow packages, validates with a load, adds the target and pushes
    assert {_subcommand(argv) for argv in commands} == {"package", "validate", "target", "push"}
    # AND validates against the Triton the stack runs, the push against the stack's outputs
    for argv in commands:
        if _subcommand(argv) in ("package", "validate"):
            assert "--triton-version" in argv, argv
        if _subcommand(argv) == "push":
            assert "--no-validate" not in argv, argv
    for argv in commands:
        _parses(argv[1:])
