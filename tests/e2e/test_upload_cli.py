"""scripts/upload.py run as a user would, against the session's local stack."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from image_client.client import ImageServiceClient
from local_stack.process import RunningStack, free_port
from tests.conftest import PROJECT_ROOT, local_token

UPLOAD_CLI = PROJECT_ROOT / "scripts" / "upload.py"
RESULT_FIELDS = [
    "file",
    "id",
    "status",
    "imageUrl",
    "thumbnailUrl",
    "renditions",
    "srcset",
    "thumbhash",
    "dominantColor",
    "duplicateOf",
    "error",
]


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(UPLOAD_CLI), *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def results_of(completed: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    document = json.loads(completed.stdout)  # exactly one JSON document, nothing else
    assert list(document) == ["results"]
    results: list[dict[str, Any]] = document["results"]
    return results


@pytest.fixture
def user() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def two_images(tmp_path: Path) -> list[Path]:
    png, jpeg = tmp_path / "red.png", tmp_path / "blue.jpg"
    Image.new("RGB", (640, 480), (200, 40, 40)).save(png)
    Image.new("RGB", (300, 500), (40, 40, 200)).save(jpeg, quality=90)
    return [png, jpeg]


def test_uploading_two_images_completes_both_and_prints_one_json_document(
    stack: RunningStack, user: str, two_images: list[Path]
) -> None:
    completed = run_cli("--api", stack.api_url, "--user", user, "--json", *map(str, two_images))

    assert completed.returncode == 0, completed.stderr
    results = results_of(completed)
    assert [r["file"] for r in results] == [str(p) for p in two_images]
    images = ImageServiceClient(stack.api_url, local_token(user))
    for result in results:
        assert list(result) == RESULT_FIELDS
        assert result["status"] == "completed"
        assert len(result["id"]) == 26
        assert result["id"] in result["imageUrl"] and result["id"] in result["thumbnailUrl"]
        assert result["error"] is None
        # The completed Image's v1.1 fields, exactly as GET /images/{id} has them.
        image = images.get_image(result["id"])
        for field in ("imageUrl", "thumbnailUrl", "renditions", "srcset", "thumbhash", "dominantColor"):
            assert result[field] == image[field], field
        assert result["duplicateOf"] == image.get("duplicateOf")
        assert result["renditions"][-1]["url"] == result["imageUrl"]
        assert result["srcset"].endswith(f"{result['renditions'][-1]['width']}w")
        assert len(result["dominantColor"]) == 7 and result["thumbhash"]
    red, blue = results
    assert [(r["width"], r["height"]) for r in red["renditions"]] == [(320, 240), (640, 480)]
    assert [(r["width"], r["height"]) for r in blue["renditions"]] == [(192, 320), (300, 500)]
    assert red["duplicateOf"] is None and blue["duplicateOf"] is None
    assert "completed" in completed.stderr  # progress goes to stderr, not into the JSON


def test_running_again_on_the_same_files_gives_the_same_ids_and_creates_nothing_new(
    stack: RunningStack, user: str, two_images: list[Path]
) -> None:
    first = run_cli("--api", stack.api_url, "--user", user, "--json", *map(str, two_images))
    assert first.returncode == 0, first.stderr
    images = ImageServiceClient(stack.api_url, local_token(user))
    assert len(images.list_images()) == 2

    again = run_cli("--api", stack.api_url, "--user", user, "--json", *map(str, two_images))

    assert again.returncode == 0, again.stderr
    assert [r["id"] for r in results_of(again)] == [r["id"] for r in results_of(first)]
    assert [r["status"] for r in results_of(again)] == ["completed", "completed"]
    assert sorted(i["id"] for i in images.list_images()) == sorted(r["id"] for r in results_of(first))
    assert "already uploaded" in again.stderr


def test_a_text_file_named_like_a_jpeg_fails_with_a_message_and_a_nonzero_exit(
    stack: RunningStack, user: str, tmp_path: Path
) -> None:
    fake = tmp_path / "x.jpg"
    fake.write_text("this is not an image\n")

    completed = run_cli("--api", stack.api_url, "--user", user, "--json", str(fake))

    assert completed.returncode == 1
    [result] = results_of(completed)
    assert result["status"] == "failed"
    assert result["error"]["code"] == "unsupported_format"
    assert "not a supported image" in result["error"]["message"]
    assert result["thumbnailUrl"] is None
    assert [result[f] for f in ("renditions", "srcset", "thumbhash", "dominantColor", "duplicateOf")] == [None] * 5


def test_the_table_names_every_file_and_counts_the_completed_ones(
    stack: RunningStack, user: str, two_images: list[Path]
) -> None:
    completed = run_cli("--api", stack.api_url, "--user", user, *map(str, two_images))

    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].split()[:3] == ["file", "status", "id"]
    assert all(any(line.startswith(str(p)) and "completed" in line for line in lines) for p in two_images)
    assert lines[-1] == "2/2 completed"


def assert_one_line_usage_error(completed: subprocess.CompletedProcess[str], message: str) -> None:
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.startswith("upload.py: error: ")
    assert message in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1  # no traceback


def test_a_missing_file_is_reported_in_one_line_with_exit_status_two(stack: RunningStack, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jpg"

    completed = run_cli("--api", stack.api_url, "--user", "nobody", str(missing))

    assert_one_line_usage_error(completed, f"no such file: {missing}")


def test_an_unsupported_extension_is_reported_in_one_line_with_exit_status_two(
    stack: RunningStack, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")

    completed = run_cli("--api", stack.api_url, "--user", "nobody", str(notes))

    assert_one_line_usage_error(completed, f"unsupported file type: {notes}")


def test_an_unreachable_api_is_reported_in_one_line_with_exit_status_two(
    two_images: list[Path], unused_port_url: str
) -> None:
    completed = run_cli("--api", unused_port_url, "--user", "nobody", "--json", str(two_images[0]), timeout=60)

    assert_one_line_usage_error(completed, f"cannot reach the Image Service at {unused_port_url}")


@pytest.fixture
def unused_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"
