"""The deployment package imports cleanly with nothing but the zip on the path.

Builds the package with ``scripts/package_lambda.py`` (the Pillow-SIMD wheel is cached in
``build/lambda/wheels``; the first run compiles it), unpacks ``deployment.zip`` and, in a
fresh Python 3.12 started with ``-I -S`` (no site-packages, no user site, no PYTHON*
variables), imports every handler named in the template and runs
``processors.process_image`` on a JPEG generated there with the bundled Pillow. The
interpreter runs with ``-B``, as Lambda's read-only ``/var/task`` forces: every module it
loads from the package must come with bytecode whose source hash matches, or the cold start
would compile it.

Select with ``pytest -m package``; leave out with ``-m 'not package'``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra import package_lambda
from infra.stage_config import stage_environment

pytestmark = pytest.mark.package

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STAGE = "prod"
# The interpreter the venv was made from: the same CPython 3.12 Lambda's python3.12 runs,
# without the venv's site-packages.
CLEAN_PYTHON = Path(sys.base_prefix) / "bin" / "python3.12"

CLEAN_IMPORT = r"""
import importlib, importlib.util, io, json, sys
root, handlers = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, root)
for handler in handlers:
    module, attribute = handler.rsplit(".", 1)
    target = getattr(importlib.import_module(module), attribute)
    assert callable(target), handler
from app import app
for name, target in app.handler_map.items():
    assert callable(target), name
from PIL import Image, ImageCms, features
import PIL, processors
assert PIL.__file__.startswith(root), PIL.__file__
assert processors.__file__.startswith(root), processors.__file__
for feature in ("jpg", "webp", "littlecms2", "zlib"):
    assert features.check(feature), feature
image = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
buffer = io.BytesIO()
image.save(buffer, "JPEG", quality=90, icc_profile=icc)
result = processors.process_image(buffer.getvalue())
assert result.source_format == "JPEG", result.source_format
assert (result.source_width, result.source_height) == (640, 480)
assert result.rendition.data[:4] == b"RIFF" and result.rendition.data[8:12] == b"WEBP"
assert (result.thumbnail.width, result.thumbnail.height) == (400, 400)
import sysconfig
stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
outside = sorted(
    m.__name__ for m in list(sys.modules.values())
    if (f := getattr(m, "__file__", None)) and not f.startswith(root) and (not f.startswith(stdlib) or "-packages" in f)
)
assert not outside, outside
# Bytecode: every module loaded from the package has a hash-checked .pyc matching its source.
files = (getattr(m, "__file__", None) for m in list(sys.modules.values()))
loaded = sorted({f for f in files if f and f.startswith(root) and f.endswith(".py")})
without_bytecode = []
for source in loaded:
    cached = importlib.util.cache_from_source(source)
    try:
        header = open(cached, "rb").read(16)
    except FileNotFoundError:
        without_bytecode.append(source)
        continue
    flags = int.from_bytes(header[4:8], "little")
    with open(source, "rb") as handle:
        if flags != 0b11 or header[8:16] != importlib.util.source_hash(handle.read()):
            without_bytecode.append(source)
assert len(loaded) > 300, len(loaded)
assert not without_bytecode, without_bytecode
# The image libraries in this process are the bundled ones, not the build machine's.
mapped = {line.split()[-1] for line in open("/proc/self/maps") if ".so" in line}
image_libraries = sorted(p for p in mapped if any(n in p for n in ("libjpeg", "libwebp", "liblcms2")))
assert len(image_libraries) == 5, image_libraries  # libjpeg, liblcms2, libwebp, libwebpmux, libwebpdemux
assert all(p.startswith(root + "/pillow_simd.libs/") for p in image_libraries), image_libraries
print(json.dumps({
    "handlers": sorted(handler for handler in handlers),
    "handler_map": sorted(app.handler_map),
    "pillow": PIL.__version__,
    "modules_loaded_from_bytecode": len(loaded),
    "libraries": {name: features.version(name) for name in ("jpg", "libjpeg_turbo", "webp", "littlecms2", "zlib")},
}))
"""


COLD_START = r"""
import gc, json, logging, sys
sys.path.insert(0, sys.argv[1])
logging.getLogger().addHandler(logging.StreamHandler())  # as Lambda's runtime does before the import
import app
from chalicelib import coldstart, dependencies
from chalicelib.errors import Unauthenticated
models = list(coldstart.wire_and_domain_models())
report = {
    "gc_enabled": gc.isenabled(),
    "frozen_objects": gc.get_freeze_count(),
    "log_formatters": [type(handler.formatter).__name__ for handler in logging.getLogger().handlers],
    "log_level": logging.getLevelName(logging.getLogger("image_service").getEffectiveLevel()),
    "token_libraries_at_init": sorted(m for m in ("jwt", "cryptography") if m in sys.modules),
    "models": sorted(m.__name__ for m in models),
    "built_at_init": sorted(m.__name__ for m in models if m.__pydantic_complete__),
}
try:
    dependencies.token_verifier().verify("not-a-jwt")
except Unauthenticated:
    report["refused"] = True
report["token_libraries_after_a_token"] = sorted(m for m in ("jwt", "cryptography") if m in sys.modules)
print(json.dumps(report))
"""


TRACED_STEP = r"""
import json, socket, sys
daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
daemon.bind(("127.0.0.1", int(sys.argv[2])))
daemon.settimeout(10)
sys.path.insert(0, sys.argv[1])
import app
from aws_xray_sdk.core import patcher
from chalicelib import tracing
with tracing.subsegment("decode"):
    pass
header, body = daemon.recv(65536).decode().split("\n", 1)
print(json.dumps({"patched": sorted(patcher._PATCHED_MODULES), "header": json.loads(header), "sent": json.loads(body)}))
"""


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    problems = package_lambda.missing_prerequisites()
    if not CLEAN_PYTHON.exists():
        problems.append(f"no clean Python 3.12 at {CLEAN_PYTHON}")
    if problems:
        pytest.skip("Lambda package prerequisites missing: " + "; ".join(problems))
    out = tmp_path_factory.mktemp("lambda") / "out"
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "package_lambda.py"), "--stage", STAGE, "--out", str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def unpacked(package_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("task")
    with zipfile.ZipFile(package_dir / "deployment.zip") as archive:
        archive.extractall(root)
    return root


def template_handlers(package_dir: Path) -> list[str]:
    template = json.loads((package_dir / "sam.json").read_text())
    return sorted(
        resource["Properties"]["Handler"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    )


def test_the_template_names_the_api_the_processor_and_the_sweeper_all_in_app(package_dir: Path) -> None:
    # All in app.py, so that every function's init runs it (logging, tracing, the GC pause).
    assert template_handlers(package_dir) == ["app.app", "app.handle_upload_events", "app.sweep_uploads"]


def test_the_template_carries_the_dashboard_and_the_alarms(package_dir: Path) -> None:
    resources = json.loads((package_dir / "sam.json").read_text())["Resources"]
    alarms = [name for name, resource in resources.items() if resource["Type"] == "AWS::CloudWatch::Alarm"]
    assert len(alarms) >= 10
    assert resources["Dashboard"]["Type"] == "AWS::CloudWatch::Dashboard"
    assert resources["AlarmTopic"]["Type"] == "AWS::SNS::Topic"


def test_the_template_gives_api_gateways_own_errors_the_api_error_body(package_dir: Path) -> None:
    resources = json.loads((package_dir / "sam.json").read_text())["Resources"]
    replies = {
        resource["Properties"]["ResponseType"]: resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::ApiGateway::GatewayResponse"
    }
    assert {"MISSING_AUTHENTICATION_TOKEN", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(replies)
    assert all(reply["RestApiId"] == {"Ref": "RestAPI"} for reply in replies.values())
    assert resources["RestAPI"]["Type"] == "AWS::Serverless::Api"
    unknown_route = json.loads(replies["MISSING_AUTHENTICATION_TOKEN"]["ResponseTemplates"]["application/json"])
    assert unknown_route["error"]["code"] == "not_found"
    assert replies["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"


def test_the_template_carries_the_cors_configuration(package_dir: Path) -> None:
    resources = json.loads((package_dir / "sam.json").read_text())["Resources"]
    paths = resources["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    assert {"/images", "/images/{image_id}", "/images/{image_id}/status", "/webhooks"} <= set(paths)
    assert "/demo" not in paths  # the demo page and the client module are the local stage's only
    for path, methods in paths.items():
        # Every path's preflight goes to the Lambda, which sees the Origin (chalicelib/api/cors.py),
        # not to a MOCK integration with one static origin.
        integration = methods["options"]["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy", path
    replies = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::GatewayResponse"]
    assert len(replies) >= 6
    for reply in replies:
        parameters = reply["ResponseParameters"]
        assert parameters["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'", reply["ResponseType"]
        assert not any("Credentials" in name for name in parameters)


def test_the_zip_holds_the_app_processors_and_pillow_with_its_libraries(package_dir: Path) -> None:
    with zipfile.ZipFile(package_dir / "deployment.zip") as archive:
        names = set(archive.namelist())
    assert {"app.py", "chalicelib/__init__.py", "processors/__init__.py", "processors/pipeline.py"} <= names
    assert "PIL/__init__.py" in names
    assert any(name.startswith("PIL/_imaging.cpython-312-x86_64-linux-gnu") for name in names)
    # auditwheel names them lib<name>-<hash>.so.<version>; zlib and libm are left to the runtime.
    bundled = {name.split("/", 1)[1].split("-", 1)[0] for name in names if name.startswith("pillow_simd.libs/lib")}
    assert {"libjpeg", "libwebp", "libwebpmux", "libwebpdemux", "liblcms2"} <= bundled
    assert not any(name.startswith(("tests/", "scripts/")) for name in names)


def test_every_module_in_the_zip_carries_bytecode(package_dir: Path) -> None:
    with zipfile.ZipFile(package_dir / "deployment.zip") as archive:
        names = set(archive.namelist())
    sources = sorted(name for name in names if name.endswith(".py"))
    assert len(sources) > 300
    missing = [name for name in sources if package_lambda.bytecode_name(name) not in names]
    assert not missing, missing


def test_the_zip_chalice_deploy_uploads_carries_the_same_bytecode(package_dir: Path) -> None:
    # The packager `chalice deploy` uses (chalice.deploy.deployer.create_default_deployer)
    # reuses the zip cached under the hash of the requirements and the app's files, the one
    # package_lambda added bytecode to, Chalice's own runtime files included.
    from chalice.deploy.packager import DependencyBuilder, LambdaDeploymentPackager
    from chalice.utils import UI, OSUtils

    osutils = OSUtils()
    packager = LambdaDeploymentPackager(
        osutils=osutils, dependency_builder=DependencyBuilder(osutils), ui=UI(), architecture="x86_64"
    )
    project = str(package_lambda.BUILD_ROOT / "project")
    cached = packager.deployment_package_filename(project, "python3.12")
    assert Path(cached).exists(), "chalice deploy would build a new zip, without bytecode"
    assert packager.create_deployment_package(project, "python3.12") == cached
    with zipfile.ZipFile(cached) as archive:
        names = set(archive.namelist())
    sources = sorted(name for name in names if name.endswith(".py"))
    assert {"app.py", "chalice/app.py", "chalicelib/coldstart.py"} <= set(sources)
    assert [name for name in sources if package_lambda.bytecode_name(name) not in names] == []


def test_every_native_library_needs_at_most_glibc_2_34(unpacked: Path) -> None:
    highest = package_lambda.check_glibc(unpacked, limit=(2, 34))
    assert highest <= (2, 34)


def run_clean(script: str, unpacked: Path, *args: str, **environment: str) -> dict[str, Any]:
    """Run ``script`` in the clean interpreter with only the unpacked zip and the stage's
    environment (plus ``environment``); returns the JSON report it prints last."""
    result = subprocess.run(
        # -B: Lambda's /var/task is read-only, so nothing compiled at run time is kept.
        [str(CLEAN_PYTHON), "-I", "-S", "-B", "-c", script, str(unpacked), *args],
        cwd=unpacked,
        env={
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            **stage_environment(STAGE),
            **environment,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_the_handlers_import_and_pillow_works_in_a_clean_interpreter(package_dir: Path, unpacked: Path) -> None:
    report = run_clean(CLEAN_IMPORT, unpacked, json.dumps(template_handlers(package_dir)))
    assert {"handle_upload_events", "sweep_uploads"} <= set(report["handler_map"])
    pinned = package_lambda.pinned_requirement(PROJECT_ROOT / "requirements-image.txt", "pillow-simd")
    assert report["pillow"] == pinned.split("==", 1)[1]


@pytest.mark.parametrize("initialization_type", ["on-demand", "provisioned-concurrency", "snap-start"])
def test_an_on_demand_cold_start_leaves_to_first_use_what_a_function_may_not_need(
    unpacked: Path, initialization_type: str
) -> None:
    report = run_clean(COLD_START, unpacked, AWS_LAMBDA_INITIALIZATION_TYPE=initialization_type)
    # The collector was paused for the import, and is back on with init's objects frozen.
    assert report["gc_enabled"]
    assert report["frozen_objects"] > 50_000
    # Lambda's own log handler now writes our JSON lines, at INFO.
    assert (report["log_formatters"], report["log_level"]) == (["JsonFormatter"], "INFO")
    assert {"ImageRecord", "CreateImageRequest", "ImageOut", "ImageEvent"} <= set(report["models"])
    if initialization_type == "on-demand":
        assert report["token_libraries_at_init"] == []
        assert report["built_at_init"] == []
    else:  # init runs before any request waits on it: everything is loaded then
        assert report["token_libraries_at_init"] == ["cryptography", "jwt"]
        assert report["built_at_init"] == report["models"]
    # The first token loads PyJWT and cryptography from the zip, and a bad one is refused.
    assert report["refused"]
    assert report["token_libraries_after_a_token"] == ["cryptography", "jwt"]


def test_under_active_tracing_botocore_is_patched_and_a_step_reaches_the_daemon(unpacked: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # What Lambda sets for a function with active tracing, during an invocation.
    traced = {
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_LAMBDA_FUNCTION_NAME": "image-service-prod-handle_upload_events",
        "LAMBDA_TASK_ROOT": str(unpacked),
    }
    report = run_clean(TRACED_STEP, unpacked, str(port), **traced)
    assert report["patched"] == ["botocore"]
    assert report["header"] == {"format": "json", "version": 1}
    sent = report["sent"]
    assert (sent["type"], sent["name"], sent["in_progress"]) == ("subsegment", "decode", False)
    assert (sent["trace_id"], sent["parent_id"]) == ("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8")
