"""The one validator, used alike by the Validate stage Lambda (S3 body) and ``mmedeploy validate``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

from chalicelib.domain.naming import ArtifactName, InvalidArtifactName
from chalicelib.domain.rollout.policy import RolloutOverrides
from chalicelib.domain.rollout.tarball_policy import load_rollout_policy
from chalicelib.domain.signature import ModelSummary, TensorSpec
from chalicelib.domain.validation.archive import ArchiveScan, scan_archive
from chalicelib.domain.validation.ensemble_rules import check_ensembles
from chalicelib.domain.validation.field_support import check_fields
from chalicelib.domain.validation.findings import Code, Finding, has_errors
from chalicelib.domain.validation.limits import ArchiveLimits
from chalicelib.domain.validation.model_rules import check_model
from chalicelib.domain.validation.onnx_rules import check_onnx
from chalicelib.domain.validation.report import ValidationReport
from chalicelib.domain.validation.repository import ParsedModel, Repository, discover
from chalicelib.domain.validation.schemas import model_config_pb2 as pb
from chalicelib.domain.validation.triton_release import DEFAULT_TRITON, TritonVersion
from chalicelib.domain.warmup.test_cases import TestCase, load_test_cases

VERSION_FILE = "model_version.txt"


@dataclass
class Inspection:
    """Everything one pass learned: the scan, the parsed models (backends auto-completed as Triton
    would), the smoke-test cases that fit the served model, and the findings. The local MME stages
    models from it; the report is made from it; the warm stage sends its test cases."""

    artifact: ArtifactName | None
    scan: ArchiveScan
    repository: Repository
    findings: list[Finding]
    test_cases: list[TestCase] = field(default_factory=list)
    rollout_overrides: RolloutOverrides | None = None  # the model's rollout.json, when valid

    @property
    def safe_to_extract(self) -> bool:
        """Read to the end and no archive-level error (links, traversal, bombs, bad headers)."""
        return self.scan.complete and not has_errors(self.scan.findings)


def inspect_tarball(
    stream: BinaryIO, key: str, limits: ArchiveLimits | None = None, *, triton_version: TritonVersion = DEFAULT_TRITON
) -> Inspection:
    """Read ``stream`` exactly once; never raises for any content of it. ``triton_version``: the Triton
    the endpoint runs (a config field newer than it is an error)."""
    filename = key.rsplit("/", 1)[-1]
    findings: list[Finding] = []
    artifact: ArtifactName | None = None
    try:
        artifact = ArtifactName.parse(filename)
    except InvalidArtifactName as exc:
        findings.append(Finding.of(Code.NAME_INVALID, filename, str(exc)))

    scan = scan_archive(stream, limits or ArchiveLimits(), filename)
    findings += scan.findings
    repository = Repository()
    test_cases: list[TestCase] = []
    rollout_overrides: RolloutOverrides | None = None
    if scan.complete:
        findings += _version_file(scan, artifact)
        rollout_overrides, policy_findings = load_rollout_policy(scan)
        findings += policy_findings
        repository, repo_findings = _check_repository(scan, artifact.filename if artifact else filename, triton_version)
        findings += repo_findings
        if repository.served is not None:  # cases are checked against the model they will be sent to
            test_cases, case_findings = load_test_cases(scan, _summary(repository.served))
            findings += case_findings
    return Inspection(
        artifact=artifact,
        scan=scan,
        repository=repository,
        findings=findings,
        test_cases=test_cases,
        rollout_overrides=rollout_overrides,
    )


def validate_tarball(
    stream: BinaryIO, key: str, limits: ArchiveLimits | None = None, *, triton_version: TritonVersion = DEFAULT_TRITON
) -> ValidationReport:
    """Validate the tarball read from ``stream``; ``key`` is its file name or S3 key.

    Reads the stream exactly once and never raises for any content of it.
    """
    return report_of(inspect_tarball(stream, key, limits, triton_version=triton_version))


def report_of(inspection: Inspection) -> ValidationReport:
    """The report of one inspection (for callers that also need the inspection itself)."""
    artifact, scan, findings = inspection.artifact, inspection.scan, inspection.findings
    return ValidationReport(
        valid=not has_errors(findings),
        model=artifact.name if artifact else None,
        version=artifact.version if artifact else None,
        sha256=scan.sha256,
        size=scan.compressed_bytes,
        uncompressed_size=scan.uncompressed_bytes,
        member_count=len(scan.members),
        findings=findings,
        models=[_summary(m) for m in inspection.repository.models.values()],
        test_cases=len(inspection.test_cases),
        rollout_policy=inspection.rollout_overrides,
    )


def _version_file(scan: ArchiveScan, artifact: ArtifactName | None) -> list[Finding]:
    raw = scan.small_files.get(VERSION_FILE)
    if raw is None:
        return [
            Finding.of(
                Code.VERSION_FILE_MISSING,
                VERSION_FILE,
                "model_version.txt is missing at the archive root; 'mmedeploy package' writes it",
            )
        ]
    recorded = raw.decode("utf-8", "replace").strip()
    if artifact and recorded != artifact.version:
        return [
            Finding.of(
                Code.VERSION_FILE_MISMATCH,
                VERSION_FILE,
                f"model_version.txt says '{recorded[:40]}' but the file name says version '{artifact.version}'",
            )
        ]
    return []


def _check_repository(
    scan: ArchiveScan, target_model: str, triton_version: TritonVersion
) -> tuple[Repository, list[Finding]]:
    findings: list[Finding] = []
    repo = discover(scan, target_model, findings)
    dirs = scan.directories()
    for model in repo.models.values():
        findings += check_model(model, scan, dirs)
        findings += check_onnx(model, scan)
        findings += check_fields(model, triton_version)
    findings += check_ensembles(repo, scan)
    return repo, findings


def _tensors(tensors: list[pb.ModelInput] | list[pb.ModelOutput]) -> list[TensorSpec]:
    return [TensorSpec(name=t.name, data_type=pb.DataType.Name(t.data_type), dims=list(t.dims)) for t in tensors]


def _summary(model: ParsedModel) -> ModelSummary:
    return ModelSummary(
        name=model.name,
        platform=model.platform or None,
        backend=model.backend or None,
        max_batch_size=model.config.max_batch_size,
        inputs=_tensors(list(model.config.input)),
        outputs=_tensors(list(model.config.output)),
        versions=model.versions,
        served=model.served,
    )
