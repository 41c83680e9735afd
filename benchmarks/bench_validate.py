"""Benchmark the streaming tarball validator against ``gzip -dc`` and bound its peak memory.

What is measured, and why:

* **Case A** (``--size-mb``, default: a .tar.gz of at least 400 MiB): a valid Triton model
  repository whose one Python model ships half random "weights" (incompressible, like real model
  weights) and half compressible text (a vocabulary file), by uncompressed bytes, packed by
  ``mmedeploy.packaging.write_tarball`` exactly as ``mmedeploy package`` does.
  ``validate_tarball`` reads it in one pass: SHA-256 of the compressed bytes, isal inflate,
  streaming tar parse, SHA-256 per member. The baseline is ``gzip -dc FILE > /dev/null`` on the
  same file, which only inflates (and checks the CRC).
  Target: median validator time <= 0.80 x median baseline time, so a real validation (which
  hashes twice on top of inflating) must still beat the stock tool thanks to the fast inflater.
* **Case B** (``--big-member-gb``, default 2 GiB): the same repository with ONE huge member.
  A validator that buffered a member, or read ahead without bound, would show it here.
  Target: the same peak RSS bound as case A.
* **Idle**: a child that only imports the validator modules, so the reader sees how much of the
  peak RSS is the interpreter and its imports rather than the validation itself.

Every validator run happens in a fresh child process (``--child``) so that the peak RSS is that
run's own: ``VmHWM`` from /proc/self/status, because a spawned child's ``ru_maxrss`` inherits the
parent's high-water mark on Linux (see ``_peak_rss_mib``; ``ru_maxrss`` is still recorded in the
JSON). The child times ``validate_tarball`` alone with ``perf_counter`` and reports its import time
and the process wall time separately. Each timed side runs ``--runs`` times (median taken)
after the file was read once, so both read from the page cache.

Exit status: 0 if every target is met and the validator found the tarballs valid, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
WRITE_CHUNK = 64 * MiB
TEXT_BLOCK = 1 * MiB
TEXT_POOL_BLOCKS = 32
RATIO_TARGET = 0.80
RSS_TARGET_MIB = 256.0
MODEL_NAME = "big"
MODEL_VERSION = "1"
SEED = 20240601

CONFIG_PBTXT = f"""name: "{MODEL_NAME}"
backend: "python"
max_batch_size: 4
input [ {{ name: "IN", data_type: TYPE_FP32, dims: [ 4 ] }} ]
output [ {{ name: "OUT", data_type: TYPE_FP32, dims: [ 4 ] }} ]
"""

MODEL_PY = '''"""Benchmark model: echoes its input; the weights and vocabulary only add bulk."""

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", data)]))
        return responses
'''


# -- child side: one measurement per fresh process -------------------------------------------------
def _ru_maxrss_mib() -> float:
    """``ru_maxrss`` of RUSAGE_SELF (KiB on Linux); see ``_peak_rss_mib`` for why it is not the figure."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KiB / MiB


def _peak_rss_mib() -> float:
    """Peak resident set size of this process image: ``VmHWM`` from /proc/self/status.

    Not ``ru_maxrss``: Linux carries the RSS high-water mark of the address space replaced by
    ``execve`` into it, and subprocess spawns with vfork, so a child's ``ru_maxrss`` starts at the
    *parent's* peak (this script's, several hundred MiB after generating the inputs). ``VmHWM``
    belongs to the new address space alone. Falls back to ``ru_maxrss`` where /proc is missing.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * KiB / MiB
    except OSError:
        pass
    return _ru_maxrss_mib()


def run_child(mode: str, path: str | None) -> dict[str, Any]:
    """Import the validator, optionally validate ``path`` once, and report time and peak RSS."""
    started = time.perf_counter()
    from chalicelib.domain.validation.validator import validate_tarball

    import_s = time.perf_counter() - started
    result: dict[str, Any] = {"mode": mode, "import_s": import_s}
    if mode == "validate" and path is not None:
        with open(path, "rb") as stream:
            started = time.perf_counter()
            report = validate_tarball(stream, Path(path).name)
            result["validate_s"] = time.perf_counter() - started
        result |= {
            "valid": report.valid,
            "errors": [f"{f.code}: {f.message}" for f in report.errors],
            "size": report.size,
            "uncompressed_size": report.uncompressed_size,
            "member_count": report.member_count,
        }
    result["peak_rss_mib"] = _peak_rss_mib()
    result["ru_maxrss_mib"] = _ru_maxrss_mib()
    return result


@dataclass(frozen=True)
class ChildRun:
    """One child process: what it reported plus its wall time seen from the parent."""

    process_s: float
    import_s: float
    peak_rss_mib: float
    ru_maxrss_mib: float
    validate_s: float | None = None
    valid: bool | None = None
    errors: list[str] = field(default_factory=list)
    uncompressed_size: int | None = None
    member_count: int | None = None


def spawn_child(mode: str, path: Path | None = None) -> ChildRun:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
    if path is not None:
        command += ["--child-file", str(path)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    process_s = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"child {mode} failed ({done.returncode}):\n{done.stderr}")
    data = json.loads(done.stdout)
    return ChildRun(
        process_s=process_s,
        import_s=data["import_s"],
        peak_rss_mib=data["peak_rss_mib"],
        ru_maxrss_mib=data["ru_maxrss_mib"],
        validate_s=data.get("validate_s"),
        valid=data.get("valid"),
        errors=data.get("errors", []),
        uncompressed_size=data.get("uncompressed_size"),
        member_count=data.get("member_count"),
    )


# -- building the inputs ---------------------------------------------------------------------------
def _write_chunks(path: Path, chunks: Iterator[bytes]) -> None:
    with open(path, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)


def random_chunks(size: int) -> Iterator[bytes]:
    """``size`` bytes of os.urandom, at most WRITE_CHUNK at a time (model weights barely compress)."""
    left = size
    while left > 0:
        step = min(left, WRITE_CHUNK)
        yield os.urandom(step)
        left -= step


def _vocabulary(rng: random.Random, words: int = 5000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choices(letters, k=rng.randint(2, 11))) for _ in range(words)]


def _text_block(rng: random.Random, vocabulary: list[str]) -> bytes:
    """About TEXT_BLOCK bytes of lines of 12 pseudo-random words from ``vocabulary``."""
    words = rng.choices(vocabulary, k=TEXT_BLOCK // 6)
    lines = (" ".join(words[i : i + 12]) for i in range(0, len(words), 12))
    return "\n".join(lines).encode()[:TEXT_BLOCK].ljust(TEXT_BLOCK, b"\n")


def text_chunks(size: int, seed: int = SEED) -> Iterator[bytes]:
    """``size`` bytes of compressible text: random picks from a pool of distinct 1 MiB blocks.

    deflate sees only 32 KiB back, so repeating whole 1 MiB blocks does not inflate the ratio; the
    text compresses about as well as any word list (about 2x at isal level 2), not like zeros.
    """
    rng = random.Random(seed)
    vocabulary = _vocabulary(rng)
    pool = [_text_block(rng, vocabulary) for _ in range(TEXT_POOL_BLOCKS)]
    left = size
    while left > 0:
        step = min(left, WRITE_CHUNK)
        blocks = -(-step // TEXT_BLOCK)
        yield b"".join(rng.choice(pool) for _ in range(blocks))[:step]
        left -= step


def build_repository(root: Path, weights_bytes: int, text_bytes: int) -> Path:
    """A one-model Python-backend repository ``root/big`` with bulky weights and vocabulary files."""
    version_dir = root / MODEL_NAME / "1"
    version_dir.mkdir(parents=True)
    (root / MODEL_NAME / "config.pbtxt").write_text(CONFIG_PBTXT)
    (version_dir / "model.py").write_text(MODEL_PY)
    _write_chunks(version_dir / "weights.bin", random_chunks(weights_bytes))
    if text_bytes:
        _write_chunks(version_dir / "vocab.txt", text_chunks(text_bytes))
    return root


def package(source: Path, target_dir: Path) -> Path:
    """Pack ``source`` as ``mmedeploy package`` does (without its validation step, timed later)."""
    from chalicelib.domain.naming import ArtifactName
    from mmedeploy.packaging import write_tarball

    artifact = ArtifactName.build(MODEL_NAME, MODEL_VERSION)
    target = target_dir / artifact.filename
    write_tarball(source, artifact, target)
    return target


def warm_page_cache(path: Path) -> None:
    with open(path, "rb") as handle:
        while handle.read(WRITE_CHUNK):
            pass


def time_gzip(path: Path) -> float:
    """Wall time of ``gzip -dc FILE > /dev/null``."""
    started = time.perf_counter()
    subprocess.run(["gzip", "-dc", str(path)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


# -- one case --------------------------------------------------------------------------------------
@dataclass
class CaseResult:
    name: str
    description: str
    file: str
    file_bytes: int
    uncompressed_bytes: int
    build_s: float
    valid: bool
    errors: list[str]
    validator_s: list[float]
    baseline_s: list[float]
    peak_rss_mib: float
    import_s: float
    process_s: float
    ratio_is_target: bool

    @property
    def validator_median_s(self) -> float:
        return statistics.median(self.validator_s)

    @property
    def baseline_median_s(self) -> float | None:
        return statistics.median(self.baseline_s) if self.baseline_s else None

    @property
    def ratio(self) -> float | None:
        baseline = self.baseline_median_s
        return self.validator_median_s / baseline if baseline else None

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {
            "validator_median_s": self.validator_median_s,
            "baseline_median_s": self.baseline_median_s,
            "ratio": self.ratio,
        }


@dataclass(frozen=True)
class CaseSpec:
    name: str
    description: str
    weights_bytes: int  # random
    text_bytes: int  # compressible
    runs: int
    min_file_bytes: int = 0  # the .tar.gz must be at least this large
    ratio_is_target: bool = False


def text_compression_ratio(sample_bytes: int = 8 * MiB) -> float:
    """How well ``text_chunks`` output compresses at the packager's isal level (about 2x)."""
    from isal import isal_zlib

    from mmedeploy.packaging import COMPRESS_LEVEL

    sample = b"".join(text_chunks(sample_bytes))
    return len(sample) / len(isal_zlib.compress(sample, COMPRESS_LEVEL))


def mixed_spec(size_mib: float, runs: int) -> CaseSpec:
    """Case A: equal uncompressed halves, sized so the compressed tarball is >= ``size_mib``.

    Random bytes do not compress, text does, so each half is ``size / (1 + 1/text_ratio)`` plus a
    2 % margin; ``run_case`` checks the result.
    """
    size = int(size_mib * MiB)
    half = int(size / (1 + 1 / text_compression_ratio()) * 1.02)
    return CaseSpec(
        name="A",
        description=f">= {size_mib:g} MiB gz, {half / MiB:.0f} MiB random + {half / MiB:.0f} MiB text",
        weights_bytes=half,
        text_bytes=half,
        runs=runs,
        min_file_bytes=size,
        ratio_is_target=True,
    )


def big_member_spec(size_gib: float, runs: int) -> CaseSpec:
    """Case B: one random member of ``size_gib``."""
    return CaseSpec("B", f"one {size_gib:g} GiB member", int(size_gib * GiB), 0, runs)


def run_case(spec: CaseSpec, workdir: Path, keep: bool) -> CaseResult:
    name = spec.name
    case_dir = workdir / name
    print(f"[{name}] building {spec.description} ...", flush=True)
    started = time.perf_counter()
    source = build_repository(case_dir / "repository", spec.weights_bytes, spec.text_bytes)
    tarball = package(source, case_dir)
    build_s = time.perf_counter() - started
    if not keep:
        shutil.rmtree(source)  # only the tarball is measured; free the disk early
    file_bytes = tarball.stat().st_size
    print(f"[{name}] built {tarball} ({file_bytes / MiB:.1f} MiB) in {build_s:.1f} s", flush=True)
    if file_bytes < spec.min_file_bytes:
        raise RuntimeError(f"{tarball} is {file_bytes} bytes, under the {spec.min_file_bytes} asked for")
    warm_page_cache(tarball)

    children: list[ChildRun] = []
    baseline: list[float] = []
    for i in range(spec.runs):
        children.append(spawn_child("validate", tarball))
        baseline.append(time_gzip(tarball))
        print(
            f"[{name}] run {i + 1}/{spec.runs}: validator {children[-1].validate_s:.3f} s "
            f"(peak RSS {children[-1].peak_rss_mib:.1f} MiB), gzip -dc {baseline[-1]:.3f} s",
            flush=True,
        )
    first = children[0]
    return CaseResult(
        name=name,
        description=spec.description,
        file=str(tarball),
        file_bytes=file_bytes,
        uncompressed_bytes=first.uncompressed_size or 0,
        build_s=build_s,
        valid=all(c.valid for c in children),
        errors=sorted({e for c in children for e in c.errors}),
        validator_s=[c.validate_s or 0.0 for c in children],
        baseline_s=baseline,
        peak_rss_mib=max(c.peak_rss_mib for c in children),
        import_s=statistics.median(c.import_s for c in children),
        process_s=statistics.median(c.process_s for c in children),
        ratio_is_target=spec.ratio_is_target,
    )


# -- report ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    label: str
    measured: float
    bound: float
    unit: str

    @property
    def met(self) -> bool:
        return self.measured <= self.bound


def targets_for(cases: list[CaseResult]) -> list[Target]:
    targets: list[Target] = []
    for case in cases:
        if case.ratio_is_target and case.ratio is not None:
            targets.append(Target(f"{case.name}: validator / gzip -dc", case.ratio, RATIO_TARGET, "x"))
        targets.append(Target(f"{case.name}: validator peak RSS", case.peak_rss_mib, RSS_TARGET_MIB, "MiB"))
    return targets


def _mib(n: float) -> str:
    return f"{n / MiB:,.1f} MiB"


def _ratio(case: CaseResult) -> str:
    if case.ratio is None:
        return "-"
    return f"{case.ratio:.3f}x" + ("" if case.ratio_is_target else " (info, no target)")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def print_report(cases: list[CaseResult], idle: ChildRun, targets: list[Target], command: str) -> None:
    rows: list[tuple[str, ...]] = [("", *(f"case {c.name}: {c.description}" for c in cases))]
    rows += [
        ("tarball (compressed)", *(_mib(c.file_bytes) for c in cases)),
        ("uncompressed (tar stream)", *(_mib(c.uncompressed_bytes) for c in cases)),
        ("validator result", *("valid" if c.valid else "INVALID" for c in cases)),
        ("gzip -dc, median", *(_seconds(c.baseline_median_s) for c in cases)),
        ("validate_tarball, median", *(_seconds(c.validator_median_s) for c in cases)),
        ("validator throughput", *(f"{c.uncompressed_bytes / MiB / c.validator_median_s:,.0f} MiB/s" for c in cases)),
        (
            f"ratio validator/gzip (<= {RATIO_TARGET:.2f})",
            *(_ratio(c) for c in cases),
        ),
        (f"peak RSS (<= {RSS_TARGET_MIB:.0f} MiB)", *(f"{c.peak_rss_mib:.1f} MiB" for c in cases)),
        ("child imports, median", *(_seconds(c.import_s) for c in cases)),
        ("child process wall, median", *(_seconds(c.process_s) for c in cases)),
        ("runs (validator / gzip)", *(f"{len(c.validator_s)} / {len(c.baseline_s)}" for c in cases)),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print(
        f"\nidle child (interpreter + validator imports only): peak RSS {idle.peak_rss_mib:.1f} MiB, "
        f"imports {idle.import_s:.3f} s, process {idle.process_s:.3f} s"
    )
    for case in cases:
        for error in case.errors:
            print(f"case {case.name} validation error: {error}")
    print("\ntargets:")
    for target in targets:
        verdict = "ok" if target.met else "MISSED"
        digits = 3 if target.unit == "x" else 1
        measured = f"{target.measured:.{digits}f} {target.unit}"
        print(f"  {target.label:<28} {measured:>12}  (target <= {target.bound:g} {target.unit})  {verdict}")
    print(f"\nreproduce: {command}")


def environment() -> dict[str, str]:
    from isal import __version__ as isal_version

    gzip_version = subprocess.run(["gzip", "--version"], capture_output=True, text=True, check=False).stdout
    return {
        "python": platform.python_version(),
        "isal": isal_version,
        "gzip": gzip_version.splitlines()[0] if gzip_version else "?",
        "cpus": str(os.cpu_count()),
        "machine": platform.machine(),
    }


# -- entry point -----------------------------------------------------------------------------------
def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mb", type=float, default=400, help="case A: least .tar.gz size, MiB (default 400)")
    parser.add_argument("--big-member-gb", type=float, default=2.0, help="case B: its one member, GiB (default 2)")
    parser.add_argument("--skip-big", action="store_true", help="skip case B (the single huge member)")
    parser.add_argument("--runs", type=_positive, default=3, help="timed runs per side in case A (median taken)")
    parser.add_argument("--big-runs", type=_positive, default=1, help="runs in case B (its target is RSS only)")
    parser.add_argument("--workdir", type=Path, help="where to build inputs (default: a temporary dir in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (and the repository folders)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--child", choices=["idle", "validate"], help=argparse.SUPPRESS)
    parser.add_argument("--child-file", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_benchmark(args: argparse.Namespace, workdir: Path) -> bool:
    specs = [mixed_spec(args.size_mb, args.runs)]
    if not args.skip_big:
        specs.append(big_member_spec(args.big_member_gb, args.big_runs))
    cases = [run_case(spec, workdir, args.keep) for spec in specs]
    idle = spawn_child("idle")
    targets = targets_for(cases)
    passed = all(t.met for t in targets) and all(c.valid for c in cases)
    command = shlex.join([".venv/bin/python", "benchmarks/bench_validate.py", *sys.argv[1:]])
    print_report(cases, idle, targets, command)
    print(f"environment: {environment()}")
    print("RESULT:", "all targets met" if passed else "TARGET MISSED (or tarball invalid)")
    if args.json:
        payload = {
            "passed": passed,
            "command": command,
            "environment": environment(),
            "cases": [c.as_json() for c in cases],
            "idle": asdict(idle),
            "targets": [asdict(t) | {"met": t.met} for t in targets],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return passed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child, args.child_file)))
        return 0
    parent = args.workdir or Path("/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench_validate_", dir=parent))  # never delete a caller's dir
    try:
        return 0 if run_benchmark(args, workdir) else 1
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
