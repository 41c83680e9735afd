"""The deployment pipeline seen from a person's machine: ``validate`` and ``package`` a model,
``push`` it to the staging bucket, follow its ``status``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmedeploy.cli import options
from mmedeploy.cli.context import Context, aws_errors, dumps, say, state_dir_option, target_option
from mmedeploy.cli.errors import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, CommandError, Exit

if TYPE_CHECKING:
    from pydantic import BaseModel

    from chalicelib.domain.records import ModelVersion
    from chalicelib.domain.validation.report import ValidationReport
    from chalicelib.domain.validation.validator import Inspection
    from mmedeploy.target import DeploymentTarget

PUSH_INTRO = """\
The object key is the file name, which must follow <model_name>_<model_version>.tar.gz; the
upload starts the deployment pipeline (validation, staging warm-up, approval). The tarball is
validated first, as the pipeline will (--no-validate skips it); large tarballs go up in parts
(multipart upload, each part retried), so a 5 GB tarball needs no single PUT. Needs
s3:PutObject on the staging bucket (the stack's PublisherPolicy); Ctrl-C aborts the upload.
"""

STATUS_INTRO = """\
Reads the registry through the API (GET /models/NAME, GET /models/NAME/versions/VERSION) with
the invoke token. --watch re-reads every --interval seconds, backing off while the API throttles
or fails; Ctrl-C stops watching (exit 130), not the deployment.
"""

VALIDATE_INTRO = """\
Reads the tarball once, without extracting it, and checks what Triton and the pipeline would
refuse. --load then loads it into a real Triton (the local MME's, from nvidia-pytriton, CPU) in a
temporary directory, so Python models' auto_complete_config and initialize really run, and sends
its tests/*.json cases, compared as the staging warm-up compares them. A tarball that fails the
static checks is never extracted. Progress goes to stderr; Ctrl-C stops Triton.

  mmedeploy validate idcheck_1.tar.gz --load
"""
LOAD_TIMEOUT_S = 300.0  # validate --timeout's default, the only one (load_check takes it from here)

REDEPLOY_INTRO = """\
For a version that ended FAILED or EXPIRED for a reason outside the model (its execution was
stopped or lost, the infrastructure failed, nobody decided in time): the same artifact (the object
version the registry pinned) goes through the pipeline again, validation to approval. A REJECTED
or DECLINED version, or one that failed on its own account (Triton would not load it, its smoke
tests failed), is refused with the reason: upload a new version instead. Needs the admin token.

  mmedeploy redeploy fraud 3 --watch
"""


def register(commands: Any) -> None:
    validate = options.add_command(
        commands, "validate", "validate a model tarball without extracting it", VALIDATE_INTRO
    )
    validate.add_argument(
        "paths",
        type=Path,
        nargs="+",
        metavar="TARBALL",
        help="the tarball; with --changed, the changed files (as pre-commit passes them)",
    )
    validate.add_argument(
        "--changed",
        action="store_true",
        help="validate each model repository folder the named files belong to (a folder named after its model, "
        "holding model_version.txt), packaged in a temporary file as 'mmedeploy package' would",
    )
    validate.add_argument("--json", action="store_true", help="print the report as JSON (with --changed: a list)")
    options.add_triton_version(validate)
    validate.add_argument(
        "--load",
        action="store_true",
        help="after the static checks pass, load the model into a real Triton on this machine (as the local MME "
        "stages it) and run its tests/*.json cases; needs mmedeploy[local]",
    )
    validate.add_argument(
        "--timeout",
        type=options.positive_seconds,
        default=LOAD_TIMEOUT_S,
        metavar="S",
        help=f"with --load: give up loading and running the cases after this many seconds, exit 1 ({LOAD_TIMEOUT_S:g})",
    )
    validate.set_defaults(handler=cmd_validate)

    pkg = options.add_command(commands, "package", "package a Triton model repository as NAME_VERSION.tar.gz")
    pkg.add_argument("source", type=Path, metavar="SRC_DIR")
    pkg.add_argument("--name", required=True)
    pkg.add_argument("--version", required=True)
    pkg.add_argument("-o", "--output-dir", type=Path, default=Path("."), metavar="DIR")
    pkg.add_argument("--json", action="store_true", help="print the validation report as JSON")
    options.add_triton_version(pkg)
    pkg.set_defaults(handler=cmd_package)

    push = options.add_command(
        commands,
        "push",
        "upload a model tarball to the staging bucket, which starts its deployment",
        PUSH_INTRO,
        parents=(options.state_dir(),),
    )
    push.add_argument("tarball", type=Path, metavar="TARBALL", help="NAME_VERSION.tar.gz (see 'mmedeploy package')")
    push.add_argument(
        "--json", action="store_true", help='print {"bucket", "key", "etag", "version_id", "size"}, no progress bar'
    )
    push.add_argument(
        "--no-validate",
        action="store_true",
        help="upload without validating the tarball first (the pipeline still does)",
    )
    push.set_defaults(handler=cmd_push)

    redeploy = options.add_command(
        commands,
        "redeploy",
        "deploy a FAILED or EXPIRED version again, on the same artifact (admin)",
        REDEPLOY_INTRO,
        parents=(options.state_dir(), options.following(1.0, 600.0, watch=True)),
    )
    redeploy.add_argument("name", metavar="NAME")
    redeploy.add_argument("version", metavar="VERSION")
    redeploy.add_argument("--watch", action="store_true", help="follow the version live until it settles")
    redeploy.add_argument("--json", action="store_true", help="print the API's answer (with --watch: the final state)")
    redeploy.set_defaults(handler=cmd_redeploy)

    status = options.add_command(
        commands,
        "status",
        "show a model's versions, or one version's status, evidence and history",
        STATUS_INTRO,
        parents=(options.state_dir(), options.following(1.0, 600.0, watch=True)),
    )
    status.add_argument("name", metavar="NAME")
    status.add_argument("version", metavar="VERSION", nargs="?", help="omit to list the model's versions")
    status.add_argument("--json", action="store_true", help="print JSON (with --watch: only the final state)")
    status.add_argument("--watch", action="store_true", help="follow VERSION live until it settles (needs VERSION)")
    status.set_defaults(handler=cmd_status)


# -- validate / package ----------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace, ctx: Context) -> int:
    if args.changed:
        return _validate_changed(args, ctx)
    if len(args.paths) != 1:
        raise CommandError(f"{ctx.prog}: validate takes one tarball (--changed takes the changed files)")
    path: Path = args.paths[0]
    if path.is_dir():
        raise CommandError(
            f"{ctx.prog}: {path} is a directory; package it ('mmedeploy package'), or 'validate --changed {path}'"
        )
    code, document = _validate_file(args, ctx, path, path.name)
    if args.json:
        print(document.model_dump_json(indent=2))
    return code


def _validate_file(args: argparse.Namespace, ctx: Context, path: Path, label: str) -> tuple[int, BaseModel]:
    """One tarball: the static checks and, with --load (only if they pass), the load check. Renders
    the report unless --json; returns the exit code and the JSON document."""
    from chalicelib.domain.validation.findings import Code
    from chalicelib.domain.validation.triton_release import resolve
    from chalicelib.domain.validation.validator import inspect_tarball, report_of
    from mmedeploy.report_view import render_report

    try:
        with open(path, "rb") as handle:  # one read: the report and, for --load, the cases
            inspection = inspect_tarball(handle, path.name, triton_version=args.triton_version or resolve())
    except OSError as exc:  # opening failed: missing file, permissions
        raise CommandError(f"{ctx.prog}: cannot read {path}: {exc.strerror or exc}") from exc
    report = report_of(inspection)
    if any(f.code is Code.ARCHIVE_READ_ERROR for f in report.findings):
        raise CommandError(f"{ctx.prog}: reading {path} failed: {report.errors[0].message}")
    if not args.json:
        render_report(report, label, ctx.out)
    if not args.load:
        return (EXIT_OK if report.valid else EXIT_INVALID), report
    return _load(args, ctx, path, label, report, inspection)


def _validate_changed(args: argparse.Namespace, ctx: Context) -> int:
    """``validate --changed FILE...``: every model repository folder the files belong to, each packaged
    in a temporary file and validated as its tarball (the pre-commit hook's command)."""
    from chalicelib.domain.naming import InvalidArtifactName
    from mmedeploy.model_sources import packaged, repositories_of
    from mmedeploy.packaging import PackagingError

    top = Path.cwd()
    folders = repositories_of(args.paths, top)
    if not folders:
        ctx.note(
            f"{ctx.prog}: none of the {len(args.paths)} file(s) is in a model repository folder; nothing to validate"
        )
    worst: int = EXIT_OK
    documents = []
    for folder in folders:
        shown = folder.relative_to(top.resolve()) if top.resolve() in folder.parents else folder
        try:
            with packaged(folder) as tarball:
                code, document = _validate_file(args, ctx, tarball, f"{shown}/ (as {tarball.name})")
        except (InvalidArtifactName, PackagingError) as exc:
            # the folder cannot become a tarball at all; say why and go on with the others
            ctx.note(f"{ctx.prog}: {shown}: not validated: {exc}")
            worst = max(worst, EXIT_INVALID)
            documents.append({"source": str(shown), "valid": False, "error": str(exc)})
            continue
        worst = max(worst, code)
        documents.append({"source": str(shown), **document.model_dump(mode="json")})
    if args.json:
        print(json.dumps(documents, indent=2))
    return worst


def _load(
    args: argparse.Namespace, ctx: Context, path: Path, label: str, report: ValidationReport, inspection: Inspection
) -> tuple[int, BaseModel]:
    """``validate --load``: the load check, only for a tarball the static checks passed (a refused
    one is never extracted)."""
    from mmedeploy.local.load_check import LoadCheckUnavailable, LoadedValidationReport, load_check, render_load

    load = None
    if not report.valid:
        ctx.note(f"{ctx.prog}: not loaded into Triton: the static checks failed (the tarball was not extracted)")
    else:
        try:
            load = load_check(path, inspection, args.timeout, progress=lambda line: ctx.note(f"--load: {line}"))
        except LoadCheckUnavailable as exc:
            raise CommandError(f"{ctx.prog}: --load cannot run here: {exc}") from exc
    if load is not None and not args.json:
        render_load(load, label, ctx.out)
    code = EXIT_OK if report.valid and load is not None and load.passed else EXIT_INVALID
    return code, LoadedValidationReport(**dict(report), load=load)


def cmd_package(args: argparse.Namespace, ctx: Context) -> int:
    from chalicelib.domain.naming import InvalidArtifactName
    from chalicelib.domain.validation.triton_release import resolve
    from mmedeploy.packaging import InvalidPackage, PackagingError, package
    from mmedeploy.report_view import render_report

    try:
        result = package(args.source, args.name, args.version, args.output_dir, args.triton_version or resolve())
    except InvalidPackage as exc:
        if args.json:
            print(exc.report.model_dump_json(indent=2))
        else:
            render_report(exc.report, f"{args.name}_{args.version}.tar.gz", ctx.out)
        raise CommandError(f"mmedeploy: not written: {exc}", Exit.INVALID) from exc
    except (PackagingError, InvalidArtifactName, OSError) as exc:
        raise CommandError(f"mmedeploy: {exc}") from exc
    if args.json:
        print(result.report.model_dump_json(indent=2))
    else:
        render_report(result.report, result.path.name, ctx.out)
        ctx.out.print(f"wrote {result.path}")
    return EXIT_OK


# -- push ------------------------------------------------------------------------------------------
def cmd_push(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy.push import PushError, check_tarball, push_tarball, upload_progress

    path: Path = args.tarball
    try:
        artifact = check_tarball(path)
        size = path.stat().st_size
    except PushError as exc:
        raise ctx.fail(str(exc)) from exc
    except OSError as exc:
        raise ctx.fail(f"cannot read {path}: {exc.strerror or exc}") from exc
    target = ctx.target(args.state_dir)
    if not args.no_validate:
        _validate_before_push(args, ctx, path, target)
    destination = f"s3://{target.staging_bucket}/{artifact.filename}"
    try:
        with upload_progress(ctx.out, path.name, size, show=ctx.out.is_terminal and not args.json) as progress:
            result = push_tarball(target, path, progress)
    except aws_errors() as exc:
        raise ctx.fail(f"uploading to {destination} on {target.description} failed: {exc}") from exc
    except OSError as exc:
        raise ctx.fail(f"cannot read {path}: {exc.strerror or exc}") from exc
    except KeyboardInterrupt:
        raise ctx.fail(
            f"interrupted: {path.name} was not pushed (the partial upload was aborted)", Exit.INTERRUPTED
        ) from None
    if args.json:
        print(result.model_dump_json(indent=2))
        return EXIT_OK
    say(f"pushed {path.name} ({result.size:,} B) to {result.uri}")
    say(f"  etag {result.etag}   version id {result.version_id or '- (the bucket keeps no versions)'}")
    say(f"follow it: mmedeploy status {artifact.name} {artifact.version} --watch{target_option(args)}")
    return EXIT_OK


def _validate_before_push(args: argparse.Namespace, ctx: Context, path: Path, target: DeploymentTarget) -> None:
    """Refuse (exit 1, the report shown) a tarball the pipeline would reject; nothing is uploaded.
    The target's Triton version (its stack outputs TritonVersion, TritonImage) is the one assumed."""
    from contextlib import nullcontext

    from chalicelib.domain.validation.findings import Code
    from chalicelib.domain.validation.triton_release import resolve
    from chalicelib.domain.validation.validator import validate_tarball
    from mmedeploy.report_view import render_report

    try:
        triton = resolve(target.outputs.get("TritonVersion", ""), target.outputs.get("TritonImage", ""))
    except ValueError as exc:
        raise ctx.fail(f"not uploaded: {target.description}'s Triton version: {exc}", Exit.INVALID) from exc
    spinner = ctx.err.status(f"validating {path.name}") if ctx.err.is_terminal and not args.json else nullcontext()
    try:
        with spinner, open(path, "rb") as handle:
            report = validate_tarball(handle, path.name, triton_version=triton)
    except OSError as exc:
        raise ctx.fail(f"cannot read {path}: {exc.strerror or exc}") from exc
    if any(f.code is Code.ARCHIVE_READ_ERROR for f in report.findings):
        raise ctx.fail(f"not uploaded: reading {path} failed: {report.errors[0].message}", Exit.INVALID)
    if report.valid:
        return
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        render_report(report, path.name, ctx.out)
    raise ctx.fail(
        f"not uploaded: {path.name} is invalid ({len(report.errors)} error(s)); the pipeline would reject it "
        "(--no-validate uploads it anyway)",
        Exit.INVALID,
    )


# -- redeploy --------------------------------------------------------------------------------------
def cmd_redeploy(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy.admin_api import request_redeploy

    target = ctx.target(args.state_dir)
    answer = request_redeploy(target, args.name, args.version)
    if not answer.accepted:
        code = answer.http_status
        if code in (401, 403):
            raise ctx.fail(f"the API refused the admin token of {target.description} (HTTP {code}): {answer.error}")
        exit = Exit.NOT_FOUND if code == 404 else Exit.INVALID
        if code < 500:
            raise ctx.fail(f"refused (HTTP {code}): {answer.error}", exit)
        raise ctx.fail(f"the API failed (HTTP {code}): {answer.error}; see its logs, then try again", exit)
    if not args.watch:
        if args.json:
            print(dumps(answer.as_json()))
            return EXIT_OK
        say(f"redeploy of {args.name} {args.version} accepted: it is RECEIVED again, deployed by a new execution")
        say(f"follow it: mmedeploy status {args.name} {args.version} --watch{target_option(args)}")
        return EXIT_OK
    if not args.json:
        say(f"redeploy of {args.name} {args.version} accepted; following it")
    return _watch_version(args, target, ctx)


# -- status ----------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    if args.watch and args.version is None:
        raise ctx.fail("--watch follows one version: give NAME VERSION")
    target = ctx.target(args.state_dir)
    if args.version is None:
        return _status_of_model(args, target, ctx)
    if args.watch:
        return _watch_version(args, target, ctx)
    return _status_of_version(args, target, ctx)


def _not_found(ctx: Context, what: str, name: str, state_dir: Path) -> CommandError:
    from chalicelib.domain.naming import ArtifactName

    message = what
    try:
        artifact = ArtifactName.parse(name)
    except ValueError:
        pass
    else:  # `status idcheck_1.tar.gz`: a file name given for the model name
        message += f"; did you mean: mmedeploy status {artifact.name} {artifact.version}{state_dir_option(state_dir)}"
    return ctx.fail(message, EXIT_NOT_FOUND)


def _status_of_model(args: argparse.Namespace, target: DeploymentTarget, ctx: Context) -> int:
    from chalicelib.domain.lifecycle import Status
    from mmedeploy.inference_client import PagingLoop
    from mmedeploy.registry_client import find_model, find_version
    from mmedeploy.status_view import model_json, rollout_view, versions_view

    try:
        listing = find_model(target, args.name)
    except PagingLoop as exc:
        raise ctx.fail(str(exc), EXIT_INVALID) from exc
    if listing is None or not listing.versions:
        raise _not_found(ctx, f"no versions of model {args.name} in the registry", args.name, args.state_dir)
    records, routes = listing.versions, listing.routes
    if args.json:
        print(dumps(model_json(args.name, records, routes)))
        return EXIT_OK
    ctx.out.print(versions_view(args.name, records, routes))
    for line in records:  # a rollout's progress is on its version's record: read it
        if line.status is Status.PROMOTING:
            record = find_version(target, args.name, line.version)
            panel = rollout_view(record) if record is not None else None
            if panel is not None:
                ctx.out.print(panel)
    return EXIT_OK


def _status_of_version(args: argparse.Namespace, target: DeploymentTarget, ctx: Context) -> int:
    from mmedeploy.registry_client import find_version
    from mmedeploy.status_view import version_view

    record = find_version(target, args.name, args.version)
    if record is None:
        raise _not_found(
            ctx, f"no version {args.version} of model {args.name} in the registry", args.name, args.state_dir
        )
    if args.json:
        print(dumps(record.document()))
    else:
        ctx.out.print(version_view(record))
    return EXIT_OK


def _watch_version(args: argparse.Namespace, target: DeploymentTarget, ctx: Context) -> int:
    """Follow one version until it settles; Ctrl-C stops watching (exit 130), not the deployment."""
    name, version = args.name, args.version
    try:
        return _watch(args, target, ctx)
    except KeyboardInterrupt:
        raise ctx.fail(
            f"stopped watching; the deployment goes on: mmedeploy status {name} {version} --watch{target_option(args)}",
            Exit.INTERRUPTED,
        ) from None


def _watch(args: argparse.Namespace, target: DeploymentTarget, ctx: Context) -> int:
    from rich.live import Live
    from rich.text import Text

    from mmedeploy.follow import HistoryFeed, watch_version
    from mmedeploy.registry_client import RegistryUnavailable, version_reader
    from mmedeploy.status_view import history_line, version_view, waiting_view, watch_exit_code

    name, version, out = args.name, args.version, ctx.out
    retry_on = (RegistryUnavailable,)
    fetch = version_reader(target, name, version)

    def footer(elapsed: float) -> Text:
        return Text(
            f"watching every {args.interval:g} s: {elapsed:.0f} s of {args.timeout:g} s "
            "(Ctrl-C stops watching, not the deployment)",
            style="dim",
        )

    if args.json:
        result = watch_version(fetch, lambda record, elapsed: None, args.interval, args.timeout, retry_on=retry_on)
    elif out.is_terminal:
        with Live(console=out, auto_refresh=False, transient=False) as live:

            def show(record: ModelVersion | None, elapsed: float) -> None:
                view = version_view(record, footer(elapsed)) if record else waiting_view(name, version, footer(elapsed))
                live.update(view, refresh=True)

            result = watch_version(fetch, show, args.interval, args.timeout, retry_on=retry_on)
            if result.record is not None:
                live.update(version_view(result.record), refresh=True)
    else:  # a log, not a screen: one line per history entry as it happens, then the summary
        feed = HistoryFeed(out, lambda entry, elapsed: history_line(entry))
        result = watch_version(fetch, feed, args.interval, args.timeout, retry_on=retry_on)
        if result.record is not None:
            out.print(version_view(result.record))

    record = result.record
    if args.json and record is not None:
        print(dumps(record.document()))
    if not result.timed_out and record is not None:
        return watch_exit_code(record.status)
    if record is None:
        raise ctx.fail(
            f"{name} {version} was not registered within {args.timeout:g} s; was "
            f"{name}_{version}.tar.gz uploaded to the staging bucket (mmedeploy push)?",
            EXIT_INVALID,
        )
    raise ctx.fail(
        f"{name} {version} is still {record.status.value} after {args.timeout:g} s; "
        f"keep watching with: mmedeploy status {name} {version} --watch{target_option(args)}",
        EXIT_INVALID,
    )
