"""The plain commands, as docs/deploy.md gives them: ``make vendor``, then
``chalice package --stage prod OUT`` (what ``chalice deploy`` uploads is built the same way).

Without ``make vendor`` the command stops and names the step; after it, the zip's handlers
import and the processor runs in a clean Python 3.12 holding only the zip. The plain
commands compile no bytecode for ``app.py`` and the packages Chalice pip-installs (what they
lose against ``make package``, docs/deploy.md), so this check asks for no bytecode.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra import package_lambda
from tests.package.test_lambda_package import CLEAN_PYTHON, PROJECT_ROOT, run_clean

pytestmark = pytest.mark.package

CHALICE = Path(sys.executable).with_name("chalice")

PLAIN_IMPORT = r"""
import importlib, io, json, sys
root, handlers = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, root)
for handler in handlers:
    module, attribute = handler.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), attribute)), handler
from PIL import Image, features
import PIL, processors, pillow_heif, pillow_avif
for module in (PIL, processors, pillow_heif, pillow_avif):
    assert module.__file__.startswith(root), module.__file__
assert features.check("webp") and features.check("jpg")
buffer = io.BytesIO()
Image.linear_gradient("L").resize((640, 480)).convert("RGB").save(buffer, "JPEG", quality=90)
result = processors.process_image(buffer.getvalue())
assert result.rendition.data[8:12] == b"WEBP"
print(json.dumps({"handlers": handlers, "pillow": PIL.__version__, "renditions": len(result.renditions)}))
"""


def chalice_package(project: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHALICE), "--project-dir", str(project), "package", "--stage", "prod", str(out)],
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


@pytest.fixture(scope="module")
def prerequisites() -> None:
    problems = package_lambda.missing_prerequisites()
    if not CLEAN_PYTHON.exists():
        problems.append(f"no clean Python 3.12 at {CLEAN_PYTHON}")
    if problems:
        pytest.skip("Lambda package prerequisites missing: " + "; ".join(problems))


@pytest.mark.usefixtures("prerequisites")
def test_without_make_vendor_chalice_package_stops_and_names_the_step(tmp_path: Path) -> None:
    project = tmp_path / "fresh-clone"  # the Chalice project as a clone has it: no vendor/
    skip = shutil.ignore_patterns("__pycache__", "deployments", "venv")
    for name in (".chalice", "chalicelib", "processors"):
        shutil.copytree(PROJECT_ROOT / name, project / name, ignore=skip)
    for name in ("app.py", "requirements.txt"):
        shutil.copy(PROJECT_ROOT / name, project / name)

    result = chalice_package(project, tmp_path / "out")

    assert result.returncode != 0
    assert package_lambda.VENDOR_GUARD in result.stdout + result.stderr
    assert not (tmp_path / "out" / "deployment.zip").exists()


@pytest.mark.usefixtures("prerequisites")
def test_after_make_vendor_chalice_package_ships_a_processor_that_runs(tmp_path: Path) -> None:
    vendor = subprocess.run(
        ["make", "vendor"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, timeout=900
    )
    assert vendor.returncode == 0, vendor.stdout + vendor.stderr

    result = chalice_package(PROJECT_ROOT, tmp_path / "out")
    assert result.returncode == 0, result.stdout + result.stderr
    task = tmp_path / "task"
    with zipfile.ZipFile(tmp_path / "out" / "deployment.zip") as archive:
        archive.extractall(task)
    template = json.loads((tmp_path / "out" / "sam.json").read_text())
    handlers = sorted(
        r["Properties"]["Handler"] for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"
    )

    report = run_clean(PLAIN_IMPORT, task, json.dumps(handlers))

    assert {"app.app", "app.handle_upload_events", "app.sweep_uploads"} <= set(report["handlers"])
    assert report["renditions"] >= 1
