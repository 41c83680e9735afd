"""Findings: what the validator reports, each with a stable code a data scientist can look up.

The codes are a contract (CLI JSON, registry records, the docs' finding-codes page): add new
ones, never rename or reuse one. The catalogue below is the single source of each code's
severity and of its one-line explanation: docs/finding-codes.md's table is generated from it at
build time (docs/hooks.py).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Code(StrEnum):
    # naming
    NAME_INVALID = "NAME_INVALID"
    ARTIFACT_IMMUTABLE = "ARTIFACT_IMMUTABLE"
    VERSION_FILE_MISSING = "VERSION_FILE_MISSING"
    VERSION_FILE_MISMATCH = "VERSION_FILE_MISMATCH"
    # smoke-test cases (tests/*.json), a convention of ours like model_version.txt
    TEST_CASE_INVALID = "TEST_CASE_INVALID"
    TEST_CASES_TOO_LARGE = "TEST_CASES_TOO_LARGE"
    # the model's rollout policy (rollout.json), read now, used by the rollout (issue 20)
    ROLLOUT_POLICY_INVALID = "ROLLOUT_POLICY_INVALID"
    # compressed stream
    ARCHIVE_EMPTY = "ARCHIVE_EMPTY"
    ARCHIVE_NOT_GZIP = "ARCHIVE_NOT_GZIP"
    ARCHIVE_TRUNCATED = "ARCHIVE_TRUNCATED"
    ARCHIVE_CORRUPT = "ARCHIVE_CORRUPT"
    ARCHIVE_MULTIPLE_GZIP_MEMBERS = "ARCHIVE_MULTIPLE_GZIP_MEMBERS"
    ARCHIVE_TRAILING_BYTES = "ARCHIVE_TRAILING_BYTES"
    ARCHIVE_READ_ERROR = "ARCHIVE_READ_ERROR"
    # tar structure
    TAR_HEADER_INVALID = "TAR_HEADER_INVALID"
    TAR_DATA_AFTER_END = "TAR_DATA_AFTER_END"
    TAR_NO_END_MARKER = "TAR_NO_END_MARKER"
    # members
    MEMBER_SYMLINK = "MEMBER_SYMLINK"
    MEMBER_HARDLINK = "MEMBER_HARDLINK"
    MEMBER_DEVICE = "MEMBER_DEVICE"
    MEMBER_FIFO = "MEMBER_FIFO"
    MEMBER_TYPE_UNSUPPORTED = "MEMBER_TYPE_UNSUPPORTED"
    MEMBER_PATH_ABSOLUTE = "MEMBER_PATH_ABSOLUTE"
    MEMBER_PATH_TRAVERSAL = "MEMBER_PATH_TRAVERSAL"
    MEMBER_PATH_INVALID = "MEMBER_PATH_INVALID"
    MEMBER_DUPLICATE = "MEMBER_DUPLICATE"
    MEMBER_OS_METADATA = "MEMBER_OS_METADATA"
    # resource bounds
    LIMIT_MEMBER_COUNT = "LIMIT_MEMBER_COUNT"
    LIMIT_MEMBER_SIZE = "LIMIT_MEMBER_SIZE"
    LIMIT_TOTAL_SIZE = "LIMIT_TOTAL_SIZE"
    LIMIT_COMPRESSION_RATIO = "LIMIT_COMPRESSION_RATIO"
    # Triton repository layout
    REPO_NO_MODEL = "REPO_NO_MODEL"
    REPO_AMBIGUOUS = "REPO_AMBIGUOUS"
    REPO_ENSEMBLE_UNDETECTED = "REPO_ENSEMBLE_UNDETECTED"
    CONFIG_MISSING = "CONFIG_MISSING"
    CONFIG_SYNTAX = "CONFIG_SYNTAX"
    CONFIG_TOO_LARGE = "CONFIG_TOO_LARGE"
    CONFIG_NAME_MISMATCH = "CONFIG_NAME_MISMATCH"
    PLATFORM_MISSING = "PLATFORM_MISSING"
    PLATFORM_UNKNOWN = "PLATFORM_UNKNOWN"
    BACKEND_UNKNOWN = "BACKEND_UNKNOWN"
    PLATFORM_BACKEND_CONFLICT = "PLATFORM_BACKEND_CONFLICT"
    VERSION_DIR_MISSING = "VERSION_DIR_MISSING"
    VERSION_DIR_IGNORED = "VERSION_DIR_IGNORED"
    VERSION_POLICY_UNSATISFIED = "VERSION_POLICY_UNSATISFIED"
    MULTIPLE_VERSIONS = "MULTIPLE_VERSIONS"
    MODEL_FILE_MISSING = "MODEL_FILE_MISSING"
    # inputs, outputs, batching
    BATCH_SIZE_INVALID = "BATCH_SIZE_INVALID"
    PREFERRED_BATCH_SIZE_INVALID = "PREFERRED_BATCH_SIZE_INVALID"
    IO_DUPLICATE_NAME = "IO_DUPLICATE_NAME"
    DATA_TYPE_INVALID = "DATA_TYPE_INVALID"
    OUTPUTS_MISSING = "OUTPUTS_MISSING"
    DIMS_EMPTY = "DIMS_EMPTY"
    DIMS_INVALID = "DIMS_INVALID"
    RESHAPE_MISMATCH = "RESHAPE_MISMATCH"
    INSTANCE_KIND_CPU = "INSTANCE_KIND_CPU"
    # ensembles
    ENSEMBLE_NO_STEPS = "ENSEMBLE_NO_STEPS"
    ENSEMBLE_INSTANCE_GROUP = "ENSEMBLE_INSTANCE_GROUP"
    ENSEMBLE_MEMBER_MISSING = "ENSEMBLE_MEMBER_MISSING"
    ENSEMBLE_MEMBER_VERSION_MISSING = "ENSEMBLE_MEMBER_VERSION_MISSING"
    ENSEMBLE_MAP_UNKNOWN_TENSOR = "ENSEMBLE_MAP_UNKNOWN_TENSOR"
    ENSEMBLE_MEMBER_INPUT_UNMAPPED = "ENSEMBLE_MEMBER_INPUT_UNMAPPED"
    ENSEMBLE_INPUT_UNUSED = "ENSEMBLE_INPUT_UNUSED"
    ENSEMBLE_OUTPUT_NOT_PRODUCED = "ENSEMBLE_OUTPUT_NOT_PRODUCED"
    ENSEMBLE_TENSOR_MULTIPLE_WRITERS = "ENSEMBLE_TENSOR_MULTIPLE_WRITERS"
    ENSEMBLE_TENSOR_UNDEFINED = "ENSEMBLE_TENSOR_UNDEFINED"
    ENSEMBLE_TENSOR_UNUSED = "ENSEMBLE_TENSOR_UNUSED"
    ENSEMBLE_TYPE_MISMATCH = "ENSEMBLE_TYPE_MISMATCH"
    ENSEMBLE_SHAPE_MISMATCH = "ENSEMBLE_SHAPE_MISMATCH"
    ENSEMBLE_BATCH_MISMATCH = "ENSEMBLE_BATCH_MISMATCH"
    ENSEMBLE_CYCLE = "ENSEMBLE_CYCLE"
    # python backend
    PYTHON_MODEL_SYNTAX = "PYTHON_MODEL_SYNTAX"
    PYTHON_MODEL_CLASS_MISSING = "PYTHON_MODEL_CLASS_MISSING"
    PYTHON_ENV_MISSING = "PYTHON_ENV_MISSING"
    PYTHON_ENV_OUTSIDE_MODEL = "PYTHON_ENV_OUTSIDE_MODEL"
    PYTHON_ENV_LARGE = "PYTHON_ENV_LARGE"
    # onnx
    ONNX_UNREADABLE = "ONNX_UNREADABLE"
    ONNX_INPUT_MISSING = "ONNX_INPUT_MISSING"
    ONNX_INPUT_UNCONFIGURED = "ONNX_INPUT_UNCONFIGURED"
    ONNX_OUTPUT_MISSING = "ONNX_OUTPUT_MISSING"
    ONNX_TYPE_MISMATCH = "ONNX_TYPE_MISMATCH"
    ONNX_SHAPE_MISMATCH = "ONNX_SHAPE_MISMATCH"
    ONNX_EXTERNAL_DATA_MISSING = "ONNX_EXTERNAL_DATA_MISSING"
    # ensembles and the python backend's auto_complete_config (issue 19: ensemble_rules.py, python_rules.py)
    ENSEMBLE_OPTIMIZATION = "ENSEMBLE_OPTIMIZATION"
    ENSEMBLE_MODEL_WARMUP = "ENSEMBLE_MODEL_WARMUP"
    ENSEMBLE_SCHEDULING_NOT_ENSEMBLE = "ENSEMBLE_SCHEDULING_NOT_ENSEMBLE"
    ENSEMBLE_STEP_MODEL_NAME_MISSING = "ENSEMBLE_STEP_MODEL_NAME_MISSING"
    ENSEMBLE_STEP_INPUT_MAP_MISSING = "ENSEMBLE_STEP_INPUT_MAP_MISSING"
    ENSEMBLE_STEP_OUTPUT_MAP_MISSING = "ENSEMBLE_STEP_OUTPUT_MAP_MISSING"
    ENSEMBLE_DECOUPLED_MIXED = "ENSEMBLE_DECOUPLED_MIXED"
    PYTHON_AUTO_COMPLETE_CONFLICT = "PYTHON_AUTO_COMPLETE_CONFLICT"
    PYTHON_AUTO_COMPLETE_NO_RETURN = "PYTHON_AUTO_COMPLETE_NO_RETURN"
    PYTHON_AUTO_COMPLETED = "PYTHON_AUTO_COMPLETED"
    PYTHON_AUTO_COMPLETE_UNREADABLE = "PYTHON_AUTO_COMPLETE_UNREADABLE"
    # scheduling: batch_input/batch_output, queue policy, sequence batching (batching_rules.py)
    BATCH_IO_SOURCE_COUNT = "BATCH_IO_SOURCE_COUNT"
    BATCH_IO_UNKNOWN_TENSOR = "BATCH_IO_UNKNOWN_TENSOR"
    BATCH_INPUT_DATA_TYPE = "BATCH_INPUT_DATA_TYPE"
    BATCH_OUTPUT_TARGET_DUPLICATE = "BATCH_OUTPUT_TARGET_DUPLICATE"
    QUEUE_PRIORITY_INVALID = "QUEUE_PRIORITY_INVALID"
    QUEUE_PRIORITY_IGNORED = "QUEUE_PRIORITY_IGNORED"
    QUEUE_ORDERING_CONFLICT = "QUEUE_ORDERING_CONFLICT"
    SEQUENCE_CONTROL_NAME_MISSING = "SEQUENCE_CONTROL_NAME_MISSING"
    SEQUENCE_CONTROL_DUPLICATE = "SEQUENCE_CONTROL_DUPLICATE"
    SEQUENCE_CONTROL_VALUE_INVALID = "SEQUENCE_CONTROL_VALUE_INVALID"
    SEQUENCE_CONTROL_DATA_TYPE = "SEQUENCE_CONTROL_DATA_TYPE"
    SEQUENCE_STRATEGY_INVALID = "SEQUENCE_STRATEGY_INVALID"
    SEQUENCE_STATE_INVALID = "SEQUENCE_STATE_INVALID"
    SEQUENCE_STATE_FILE_MISSING = "SEQUENCE_STATE_FILE_MISSING"
    RESPONSE_CACHE_UNSUPPORTED = "RESPONSE_CACHE_UNSUPPORTED"
    # placement: instance groups and the backend library (placement_rules.py)
    INSTANCE_GPUS_NOT_ALLOWED = "INSTANCE_GPUS_NOT_ALLOWED"
    INSTANCE_GPU_ID_INVALID = "INSTANCE_GPU_ID_INVALID"
    INSTANCE_GPU_ID_UNCERTAIN = "INSTANCE_GPU_ID_UNCERTAIN"
    INSTANCE_COUNT_DEFAULTED = "INSTANCE_COUNT_DEFAULTED"
    INSTANCE_PROFILE_INVALID = "INSTANCE_PROFILE_INVALID"
    RUNTIME_ESCAPES_BACKEND = "RUNTIME_ESCAPES_BACKEND"
    RUNTIME_NOT_FOUND = "RUNTIME_NOT_FOUND"
    RUNTIME_UNVERIFIED = "RUNTIME_UNVERIFIED"
    # the deployed Triton's schema (field_support.py)
    CONFIG_FIELD_UNSUPPORTED = "CONFIG_FIELD_UNSUPPORTED"


E, W = Severity.ERROR, Severity.WARNING

# code -> (severity, what it means; docs/hooks.py generates docs/finding-codes.md's table from this)
CATALOGUE: dict[Code, tuple[Severity, str]] = {
    Code.NAME_INVALID: (E, "file not named <model_name>_<model_version>.tar.gz"),
    Code.ARTIFACT_IMMUTABLE: (E, "this name and version is registered with other bytes; upload a new version"),
    Code.VERSION_FILE_MISSING: (E, "no model_version.txt at the archive root"),
    Code.VERSION_FILE_MISMATCH: (E, "model_version.txt differs from the version in the file name"),
    Code.TEST_CASE_INVALID: (E, "a tests/*.json case is malformed or does not fit the served model's config"),
    Code.TEST_CASES_TOO_LARGE: (E, "more than 16 test cases or 64 KiB of them in tests/"),
    Code.ROLLOUT_POLICY_INVALID: (E, "rollout.json is malformed, over 16 KiB, or sets a value the policy refuses"),
    Code.ARCHIVE_EMPTY: (E, "the file is empty"),
    Code.ARCHIVE_NOT_GZIP: (E, "the file is not gzip-compressed"),
    Code.ARCHIVE_TRUNCATED: (E, "the archive ends early (an interrupted upload or copy)"),
    Code.ARCHIVE_CORRUPT: (E, "the compressed data is damaged (bad deflate data or checksum)"),
    Code.ARCHIVE_MULTIPLE_GZIP_MEMBERS: (E, "a second gzip stream follows the first; tools disagree on it"),
    Code.ARCHIVE_TRAILING_BYTES: (E, "bytes follow the end of the gzip stream"),
    Code.ARCHIVE_READ_ERROR: (E, "the archive could not be read"),
    Code.TAR_HEADER_INVALID: (E, "a tar header is malformed or of an unsupported format"),
    Code.TAR_DATA_AFTER_END: (E, "data after the tar end-of-archive marker (hidden members)"),
    Code.TAR_NO_END_MARKER: (W, "the tar stream has no end-of-archive marker"),
    Code.MEMBER_SYMLINK: (E, "symbolic links are not allowed"),
    Code.MEMBER_HARDLINK: (E, "hard links are not allowed"),
    Code.MEMBER_DEVICE: (E, "device files are not allowed"),
    Code.MEMBER_FIFO: (E, "FIFOs are not allowed"),
    Code.MEMBER_TYPE_UNSUPPORTED: (E, "only regular files and directories are allowed"),
    Code.MEMBER_PATH_ABSOLUTE: (E, "a member path is absolute"),
    Code.MEMBER_PATH_TRAVERSAL: (E, "a member path contains '..'"),
    Code.MEMBER_PATH_INVALID: (E, "a member path is empty, not UTF-8, or contains a backslash or NUL"),
    Code.MEMBER_DUPLICATE: (E, "two members have the same path (or a file is also a directory)"),
    Code.MEMBER_OS_METADATA: (W, "operating-system clutter (.DS_Store, ._*, __MACOSX) in the archive"),
    Code.LIMIT_MEMBER_COUNT: (E, "too many members"),
    Code.LIMIT_MEMBER_SIZE: (E, "a member is larger than allowed"),
    Code.LIMIT_TOTAL_SIZE: (E, "the uncompressed archive is larger than allowed"),
    Code.LIMIT_COMPRESSION_RATIO: (E, "compression ratio beyond the bound (a likely gzip bomb)"),
    Code.REPO_NO_MODEL: (E, "no config.pbtxt found: not a Triton model repository"),
    Code.REPO_AMBIGUOUS: (E, "several model directories and no single ensemble to serve"),
    Code.REPO_ENSEMBLE_UNDETECTED: (E, "SageMaker cannot find the ensemble (write 'platform: \"ensemble\"')"),
    Code.CONFIG_MISSING: (E, "a model directory has no config.pbtxt"),
    Code.CONFIG_SYNTAX: (E, "config.pbtxt does not parse against Triton's ModelConfig schema"),
    Code.CONFIG_TOO_LARGE: (E, "config.pbtxt is implausibly large"),
    Code.CONFIG_NAME_MISMATCH: (E, "config name differs from its directory name"),
    Code.PLATFORM_MISSING: (E, "no platform/backend and no default model file to infer it from"),
    Code.PLATFORM_UNKNOWN: (E, "unknown platform"),
    Code.BACKEND_UNKNOWN: (W, "backend not in the standard Triton container"),
    Code.PLATFORM_BACKEND_CONFLICT: (E, "platform and backend disagree"),
    Code.VERSION_DIR_MISSING: (E, "no numeric version directory (ensembles need one too)"),
    Code.VERSION_DIR_IGNORED: (W, "a non-numeric directory Triton will ignore"),
    Code.VERSION_POLICY_UNSATISFIED: (E, "version_policy names versions that are not present"),
    Code.MULTIPLE_VERSIONS: (W, "version directories beyond the one that will be served"),
    Code.MODEL_FILE_MISSING: (E, "a version directory lacks the model file"),
    Code.BATCH_SIZE_INVALID: (E, "max_batch_size is invalid"),
    Code.PREFERRED_BATCH_SIZE_INVALID: (E, "preferred_batch_size is invalid for max_batch_size"),
    Code.IO_DUPLICATE_NAME: (W, "an input or output name is used twice (Triton keeps the first)"),
    Code.DATA_TYPE_INVALID: (E, "missing or invalid data_type"),
    Code.OUTPUTS_MISSING: (E, "a PyTorch model's config lists no output (its backend cannot auto-complete them)"),
    Code.DIMS_EMPTY: (E, "an input or output has no dims"),
    Code.DIMS_INVALID: (E, "a dim or reshape value is 0 or below -1"),
    Code.RESHAPE_MISMATCH: (E, "reshape and dims have different element counts"),
    Code.INSTANCE_KIND_CPU: (W, "KIND_CPU instances of a GPU-capable model on a GPU endpoint"),
    Code.ENSEMBLE_NO_STEPS: (E, "ensemble without ensemble_scheduling steps"),
    Code.ENSEMBLE_INSTANCE_GROUP: (E, "ensembles must not have instance_group"),
    Code.ENSEMBLE_MEMBER_MISSING: (E, "a step names a model not in the tarball"),
    Code.ENSEMBLE_MEMBER_VERSION_MISSING: (E, "a step pins a model version that is not present"),
    Code.ENSEMBLE_MAP_UNKNOWN_TENSOR: (E, "input_map/output_map key is not a tensor of the member model"),
    Code.ENSEMBLE_MEMBER_INPUT_UNMAPPED: (E, "a required member input is not mapped"),
    Code.ENSEMBLE_INPUT_UNUSED: (E, "an ensemble input is used by no step"),
    Code.ENSEMBLE_OUTPUT_NOT_PRODUCED: (E, "an ensemble output is written by no step"),
    Code.ENSEMBLE_TENSOR_MULTIPLE_WRITERS: (E, "a tensor is written by more than one step"),
    Code.ENSEMBLE_TENSOR_UNDEFINED: (E, "a step reads a tensor that nothing produces"),
    Code.ENSEMBLE_TENSOR_UNUSED: (E, "a step writes a tensor that nothing reads"),
    Code.ENSEMBLE_TYPE_MISMATCH: (E, "connected tensors have different data types"),
    Code.ENSEMBLE_SHAPE_MISMATCH: (E, "connected tensors have incompatible shapes"),
    Code.ENSEMBLE_BATCH_MISMATCH: (E, "a member's max_batch_size is below the ensemble's"),
    Code.ENSEMBLE_CYCLE: (E, "the ensemble's steps form a cycle"),
    Code.PYTHON_MODEL_SYNTAX: (E, "model.py does not parse"),
    Code.PYTHON_MODEL_CLASS_MISSING: (E, "model.py defines no TritonPythonModel class"),
    Code.PYTHON_ENV_MISSING: (E, "EXECUTION_ENV_PATH names a file not in the tarball"),
    Code.PYTHON_ENV_OUTSIDE_MODEL: (E, "EXECUTION_ENV_PATH is not inside the model directory"),
    Code.PYTHON_ENV_LARGE: (W, "the Python environment is over 1 GB (slow MME loads)"),
    Code.ONNX_UNREADABLE: (E, "the ONNX file is not a readable ONNX model"),
    Code.ONNX_INPUT_MISSING: (E, "a configured input is not an ONNX graph input"),
    Code.ONNX_INPUT_UNCONFIGURED: (E, "an ONNX graph input is missing from the config"),
    Code.ONNX_OUTPUT_MISSING: (E, "a configured output is not an ONNX graph output"),
    Code.ONNX_TYPE_MISMATCH: (E, "config data_type differs from the ONNX element type"),
    Code.ONNX_SHAPE_MISMATCH: (E, "config dims (with batch) differ from the ONNX shape"),
    Code.ONNX_EXTERNAL_DATA_MISSING: (E, "an ONNX external-data file is not in the tarball"),
    Code.ENSEMBLE_OPTIMIZATION: (E, "ensembles must not set optimization"),
    Code.ENSEMBLE_MODEL_WARMUP: (E, "ensembles must not set model_warmup"),
    Code.ENSEMBLE_SCHEDULING_NOT_ENSEMBLE: (E, "ensemble_scheduling on a model whose platform is not ensemble"),
    Code.ENSEMBLE_STEP_MODEL_NAME_MISSING: (E, "an ensemble step has no model_name"),
    Code.ENSEMBLE_STEP_INPUT_MAP_MISSING: (E, "an ensemble step has no input_map"),
    Code.ENSEMBLE_STEP_OUTPUT_MAP_MISSING: (E, "an ensemble step has no output_map"),
    Code.ENSEMBLE_DECOUPLED_MIXED: (E, "a step or the ensemble's outputs get tensors from different decoupled models"),
    Code.PYTHON_AUTO_COMPLETE_CONFLICT: (E, "model.py's auto_complete_config conflicts with config.pbtxt"),
    Code.PYTHON_AUTO_COMPLETE_NO_RETURN: (E, "model.py's auto_complete_config returns no ModelConfig"),
    Code.PYTHON_AUTO_COMPLETED: (W, "Triton completes config.pbtxt from model.py's auto_complete_config"),
    Code.PYTHON_AUTO_COMPLETE_UNREADABLE: (W, "model.py's auto_complete_config computes what it adds; not checked"),
    Code.BATCH_IO_SOURCE_COUNT: (E, "a batch_input or batch_output needs exactly one source_input"),
    Code.BATCH_IO_UNKNOWN_TENSOR: (E, "a batch_input/batch_output source_input or target_name is not a model tensor"),
    Code.BATCH_INPUT_DATA_TYPE: (E, "a batch_input's data_type is not TYPE_INT32 or TYPE_FP32"),
    Code.BATCH_OUTPUT_TARGET_DUPLICATE: (E, "a batch_output names one target_name twice"),
    Code.QUEUE_PRIORITY_INVALID: (E, "default_priority_level or priority_queue_policy key out of [1, priority_levels]"),
    Code.QUEUE_PRIORITY_IGNORED: (W, "priority settings without priority_levels (Triton ignores them)"),
    Code.QUEUE_ORDERING_CONFLICT: (E, "preserve_ordering with several priority levels or a DELAY timeout action"),
    Code.SEQUENCE_CONTROL_NAME_MISSING: (E, "a sequence_batching control_input has no name"),
    Code.SEQUENCE_CONTROL_DUPLICATE: (E, "a sequence control kind or control tensor is configured twice"),
    Code.SEQUENCE_CONTROL_VALUE_INVALID: (E, "a sequence control lacks its one [false, true] pair, or CORRID has one"),
    Code.SEQUENCE_CONTROL_DATA_TYPE: (E, "the CORRID control's data_type is not an integer or string type"),
    Code.SEQUENCE_STRATEGY_INVALID: (E, "direct minimum_slot_utilization outside [0, 1]"),
    Code.SEQUENCE_STATE_INVALID: (E, "a sequence state's initial_state does not fit the state"),
    Code.SEQUENCE_STATE_FILE_MISSING: (E, "an initial_state data_file is missing or too small"),
    Code.RESPONSE_CACHE_UNSUPPORTED: (E, "response_cache on a sequence-batched or decoupled model"),
    Code.INSTANCE_GPUS_NOT_ALLOWED: (E, "a KIND_CPU or KIND_MODEL instance group lists gpus"),
    Code.INSTANCE_GPU_ID_INVALID: (E, "an instance group lists a GPU id no SageMaker GPU instance has"),
    Code.INSTANCE_GPU_ID_UNCERTAIN: (W, "an instance group lists a GPU id only multi-GPU instance types have"),
    Code.INSTANCE_COUNT_DEFAULTED: (W, "a negative instance count (Triton uses its default)"),
    Code.INSTANCE_PROFILE_INVALID: (E, "an instance group's profile on a non-TensorRT model, or not an index"),
    Code.RUNTIME_ESCAPES_BACKEND: (E, "runtime points outside the backend or model directory ('..')"),
    Code.RUNTIME_NOT_FOUND: (E, "runtime names a library that backend's search path cannot have"),
    Code.RUNTIME_UNVERIFIED: (W, "runtime names a library neither shipped nor the backend's own"),
    Code.CONFIG_FIELD_UNSUPPORTED: (E, "a config field or value is newer than the endpoint's Triton version"),
}


class Finding(BaseModel):
    """One problem found in a tarball: stable code, severity, where, and what to change."""

    model_config = ConfigDict(frozen=True)

    code: Code
    severity: Severity
    path: str
    message: str

    @classmethod
    def of(cls, code: Code, path: str, message: str) -> Finding:
        return cls(code=code, severity=CATALOGUE[code][0], path=path, message=message)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)
