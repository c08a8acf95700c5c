"""Fixtures for the processors tests (image builders are in processors_testkit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.stage_config import CORPUS_DIR


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = CORPUS_DIR
    if not path.is_dir() or not any(path.glob("*.jpg")):
        pytest.skip(f"image corpus not found at {path} (set IMAGE_CORPUS_DIR)")
    return path
