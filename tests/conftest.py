"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chalicelib.auth import mint_local_token
from infra.stage_config import CORPUS_DIR, LOCAL_STAGE, stage_environment

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_ENV = stage_environment(LOCAL_STAGE)


def local_token(user_id: str, **kwargs: object) -> str:
    """A token the local stage accepts for ``user_id``."""
    return mint_local_token(
        LOCAL_ENV["LOCAL_JWT_SECRET"],
        user_id,
        issuer=LOCAL_ENV["JWT_ISSUER"],
        audience=LOCAL_ENV["JWT_AUDIENCE"],
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def token_for() -> Callable[[str], str]:
    return local_token


@pytest.fixture
def auth_for() -> Callable[[str], dict[str, str]]:
    def headers(user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {local_token(user_id)}", "Content-Type": "application/json"}

    return headers


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not CORPUS_DIR.is_dir():
        pytest.skip(f"image corpus not found at {CORPUS_DIR} (set IMAGE_CORPUS_DIR)")
    return CORPUS_DIR
