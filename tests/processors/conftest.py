"""Fixtures for the processors tests (image builders are in processors_testkit)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def corpus_dir() -> Path:
    """IMAGE_CORPUS_DIR, else ``../shared/corpus`` beside the project root."""
    default = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
    return Path(os.environ.get("IMAGE_CORPUS_DIR", str(default)))


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = corpus_dir()
    if not path.is_dir() or not any(path.glob("*.jpg")):
        pytest.skip(f"image corpus not found at {path} (set IMAGE_CORPUS_DIR)")
    return path
