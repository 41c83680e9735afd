"""The model's own rollout policy: ``rollout.json`` at the tarball's root, beside
``model_version.txt``.

Read from the scan's small files in the validator's one pass, like the smoke-test cases: a JSON
object of the policy's fields, each optional (``chalicelib/domain/rollout/policy.py``), that sits
over the deployment's settings and under the rollout's own options. A file that is not such an
object, or holds a value the policy refuses, is a ``ROLLOUT_POLICY_INVALID`` finding saying what
to change; no file is no finding.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from chalicelib.domain.rollout.policy import RolloutOverrides, describe_problems
from chalicelib.domain.validation.findings import Code, Finding

if TYPE_CHECKING:  # the scan's type only, as for the test cases
    from chalicelib.domain.validation.archive import ArchiveScan

POLICY_FILE = "rollout.json"
# a policy is a few lines; it travels in the version's record
MAX_POLICY_BYTES = 16 * 1024


class _DuplicateKey(ValueError):
    pass


def load_rollout_policy(scan: ArchiveScan) -> tuple[RolloutOverrides | None, list[Finding]]:
    """The overrides ``rollout.json`` sets (None without the file, or with a finding about it)."""
    member = scan.files.get(POLICY_FILE)
    if member is None:
        return None, []
    raw = scan.small_files.get(POLICY_FILE)
    if member.size > MAX_POLICY_BYTES or raw is None:
        return None, [
            _finding(
                f"is {member.size} bytes; a rollout policy is a few lines, at most {MAX_POLICY_BYTES // 1024} KiB: "
                "keep only the fields that differ from the defaults"
            )
        ]
    problem = None
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        problem = "is not UTF-8 text"
    except json.JSONDecodeError as exc:
        problem = f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    except _DuplicateKey as exc:
        problem = str(exc)
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits, absurd nesting
        problem = f"is not usable JSON ({type(exc).__name__}: {str(exc)[:120]})"
    if problem is not None:
        return None, [_finding(problem)]
    if not isinstance(document, dict):
        return None, [_finding('must be a JSON object of the policy\'s fields, e.g. {"steps": [5, 25, 50, 100]}')]
    try:
        overrides = RolloutOverrides.model_validate(document)
    except ValidationError as exc:
        return None, [_finding(describe_problems(exc))]
    bake, interval = overrides.bake_seconds, overrides.evaluation_interval_seconds
    if bake is not None and interval is not None and interval > bake:
        return None, [
            _finding(
                f"evaluation_interval_seconds ({interval}) is longer than bake_seconds ({bake}): a step would end "
                "before its first evaluation; shorten the interval or lengthen the bake"
            )
        ]
    return overrides, []


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise _DuplicateKey(f"sets '{key}' twice; keep one")
        document[key] = value
    return document


def _finding(problem: str) -> Finding:
    return Finding.of(Code.ROLLOUT_POLICY_INVALID, POLICY_FILE, f"'{POLICY_FILE}': {problem}")
