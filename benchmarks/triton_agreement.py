"""How far the validator agrees with Triton on Triton's own model-configuration cases.

What is measured: every case of ``tests/data/triton_config_cases/`` (a vendored subset of Triton
r24.09's ``qa/L0_model_config``: configurations Triton refuses, each with its expected error, and
ones it loads) is wrapped by ``testkit.triton_cases`` into a tarball that differs from a valid one
only by the case's defect, and validated with ``validate_tarball``. Each case falls in one class:

* caught: Triton refuses, the validator refuses;
* missed: Triton refuses, the validator accepts (a rule the validator lacks);
* agreed_load: Triton loads, the validator accepts;
* too_strict: Triton loads, the validator refuses (known exceptions are product rules, listed with
  their reasons in ``testkit.triton_cases.KNOWN_TOO_STRICT``).

It prints the counts per class and per case group, every miss with Triton's expected message,
every too-strict case with the validator's errors, and how the caught cases compare with
``tests/data/triton_config_caught.txt`` (the cases ``tests/unit/test_triton_config_cases.py``
requires to stay caught). ``--write-caught`` rewrites that file from this run.

``--local-triton`` also loads each Python-only case (Python models and ensembles of them) into the
local Triton of the ``[local]`` extra (nvidia-pytriton's, Python backend only), one fresh server per
case, and reports whether it agrees with the corpus (loads or refuses, and for a refusal whether its
log carries the expected message): a check of the corpus and of the wrapping against a real Triton.

Goal: no too-strict case beyond the known ones, and no case of the caught file missed; exit 1
otherwise. The number of misses is the work left, not a failure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testkit.tarballs import write_tree
from testkit.triton_cases import (
    CAUGHT_FILE,
    KNOWN_TOO_STRICT,
    NOAUTOFILL_PLATFORM,
    ROOT,
    UPSTREAM_REF,
    Case,
    Outcome,
    Result,
    load_cases,
    read_caught,
    run_all,
    wrap,
    write_caught,
)


def summary(results: list[Result]) -> dict[str, object]:
    counts = Counter(r.outcome.value for r in results)
    by_group: dict[str, Counter[str]] = {}
    for r in results:
        by_group.setdefault(r.case.group, Counter())[r.outcome.value] += 1
    caught_file = read_caught()
    now_caught = {r.case.id for r in results if r.outcome is Outcome.CAUGHT}
    refused_by_triton = sum(1 for r in results if not r.case.triton_loads)
    loaded_by_triton = len(results) - refused_by_triton
    return {
        "upstream": f"triton-inference-server/server {UPSTREAM_REF} qa/L0_model_config",
        "noautofill_platform_runs_as": NOAUTOFILL_PLATFORM,
        "cases": len(results),
        "triton_refuses": refused_by_triton,
        "triton_loads": loaded_by_triton,
        "counts": {o.value: counts.get(o.value, 0) for o in Outcome},
        "by_group": {g: {o.value: c.get(o.value, 0) for o in Outcome} for g, c in sorted(by_group.items())},
        "missed": [
            {"case": r.case.id, "triton_expects": _unescape(r.case.expected[0]) if r.case.expected else ""}
            for r in results
            if r.outcome is Outcome.MISSED
        ],
        "too_strict": [
            {"case": r.case.id, "errors": r.messages, "known": KNOWN_TOO_STRICT.get(r.case.id)}
            for r in results
            if r.outcome is Outcome.TOO_STRICT
        ],
        "caught": {r.case.id: r.errors for r in results if r.outcome is Outcome.CAUGHT},
        "regressions": sorted(set(caught_file) - now_caught),
        "newly_caught": sorted(now_caught - set(caught_file)),
    }


def python_only(case: Case) -> bool:
    """Whether the local Triton (nvidia-pytriton's, with the Python backend only) can load the
    case's tarball: every model is a Python model or an ensemble."""
    files = wrap(case)
    models = {path.split("/", 1)[0] for path in files if path.endswith("/config.pbtxt")}
    return bool(models) and all(
        f"{m}/1/model.py" in files or b'"ensemble"' in (files[f"{m}/config.pbtxt"] or b"") for m in models
    )


def local_triton(cases: list[Case]) -> dict[str, object]:
    """Load each Python-only case into a fresh local Triton (explicit model control, auto-complete
    on, as test.sh and SageMaker run it) and compare its verdict with the corpus's: does it load,
    and does a refusal carry the expected message."""
    from mmedeploy.local.mme.triton import TritonInstall, TritonProcess, TritonRefused

    install = TritonInstall()
    checked: list[dict[str, object]] = []
    version = ""
    with tempfile.TemporaryDirectory(prefix="triton-agreement-") as tmp:
        root = Path(tmp)
        backends = install.prepare_backends(root / "backends")
        for case in cases:
            if not python_only(case):
                continue
            repository = root / re.sub(r"[^A-Za-z0-9_.-]", "_", case.id)
            write_tree(repository, wrap(case))
            log_path = repository.with_suffix(".log")
            process = TritonProcess(install, repository, backends, log_path, on_restart=lambda: None)
            process.start()
            try:
                if not version:
                    _, _, body = process.client.request("GET", "/v2")
                    version = str(json.loads(body).get("version", ""))
                try:
                    process.client.load(case.name)
                    loads, message = True, ""
                except TritonRefused as exc:
                    loads, message = False, exc.message
            finally:
                process.stop()
            text = message + "\n" + log_path.read_text(errors="replace")
            found = any(re.search(pattern, text) for pattern in case.expected) if not loads else None
            checked.append(
                {
                    "case": case.id,
                    "corpus": "loads" if case.triton_loads else "refuses",
                    "local_triton": "loads" if loads else "refuses",
                    "agrees": loads == case.triton_loads,
                    "expected_message_found": found,
                    "message": message,
                }
            )
    return {"triton_version": version, "checked": checked}


def _unescape(pattern: str) -> str:
    """Upstream's expected files are grep patterns: show ``\\[1, 3\\]`` as ``[1, 3]``."""
    return pattern.replace("\\[", "[").replace("\\]", "]")


def print_report(data: dict[str, object]) -> None:
    counts = data["counts"]
    assert isinstance(counts, dict)
    print(f"Triton agreement: {data['cases']} cases of {data['upstream']}")
    print(f"  noautofill_platform cases run as platform {data['noautofill_platform_runs_as']}")
    print(
        f"  Triton refuses {data['triton_refuses']}: caught {counts['caught']}, missed {counts['missed']}\n"
        f"  Triton loads   {data['triton_loads']}: accepted {counts['agreed_load']}, "
        f"too strict {counts['too_strict']}"
    )
    print("\nby group                                    caught  missed  loads  too_strict")
    by_group = data["by_group"]
    assert isinstance(by_group, dict)
    for group, c in by_group.items():
        print(f"  {group:<42}{c['caught']:>6}{c['missed']:>8}{c['agreed_load']:>7}{c['too_strict']:>12}")
    missed = data["missed"]
    assert isinstance(missed, list)
    print(f"\nmissed ({len(missed)}): Triton refuses, the validator accepts")
    for item in missed:
        print(f"  {item['case']}\n      Triton: {item['triton_expects']}")
    too_strict = data["too_strict"]
    assert isinstance(too_strict, list)
    print(f"\ntoo strict ({len(too_strict)}): Triton loads, the validator refuses")
    for item in too_strict:
        print(f"  {item['case']}" + (f"  [known: {item['known']}]" if item["known"] else "  [NOT KNOWN]"))
        for message in item["errors"]:
            print(f"      {message}")
    regressions, newly = data["regressions"], data["newly_caught"]
    assert isinstance(regressions, list) and isinstance(newly, list)
    print(f"\nagainst {CAUGHT_FILE.relative_to(ROOT)}: {len(regressions)} no longer caught, {len(newly)} newly caught")
    for case in regressions:
        print(f"  NO LONGER CAUGHT: {case}")
    for case in newly:
        print(f"  newly caught: {case}")
    if newly:
        print("  (record them: .venv/bin/python benchmarks/triton_agreement.py --write-caught)")
    local = data.get("local_triton")
    if isinstance(local, dict):
        checked = local["checked"]
        assert isinstance(checked, list)
        agree = sum(1 for item in checked if item["agrees"])
        print(
            f"\nlocal Triton {local['triton_version']} (nvidia-pytriton, Python backend): {len(checked)} Python-only "
            f"cases loaded, {agree} agree with the corpus"
        )
        for item in checked:
            if not item["agrees"] or item["expected_message_found"] is False:
                print(f"  {item['case']}: corpus {item['corpus']}, local Triton {item['local_triton']}")
                if item["message"]:
                    print(f"      {item['message']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--write-caught", action="store_true", help=f"rewrite {CAUGHT_FILE.relative_to(ROOT)} from this run"
    )
    parser.add_argument(
        "--local-triton",
        action="store_true",
        help="also load the Python-only cases into the local Triton (nvidia-pytriton) and compare its verdicts",
    )
    args = parser.parse_args(argv)
    results = run_all()
    if args.write_caught:
        count = write_caught(results)
        print(f"{count} caught cases written to {CAUGHT_FILE.relative_to(ROOT)}", file=sys.stderr)
    data = summary(results)
    if args.local_triton:
        data["local_triton"] = local_triton(load_cases())
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print_report(data)
    too_strict = data["too_strict"]
    assert isinstance(too_strict, list)
    unknown_too_strict = [item for item in too_strict if not item["known"]]
    return 1 if unknown_too_strict or data["regressions"] else 0


if __name__ == "__main__":
    sys.exit(main())
