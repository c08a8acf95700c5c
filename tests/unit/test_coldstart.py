"""What an init does now and what it leaves to first use (chalicelib.coldstart)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from chalicelib import coldstart
from chalicelib.models.domain import ImageRecord
from chalicelib.models.requests import CreateImageRequest


def every_subclass(cls: type[BaseModel]) -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()
    for sub in cls.__subclasses__():
        found |= {sub} | every_subclass(sub)
    return found


@pytest.mark.parametrize(
    ("initialization_type", "ahead"),
    [(None, False), ("on-demand", False), ("provisioned-concurrency", True), ("snap-start", True), ("", False)],
)
def test_only_provisioned_concurrency_and_snapstart_init_ahead_of_traffic(
    initialization_type: str | None, ahead: bool
) -> None:
    environ = {} if initialization_type is None else {"AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type}
    assert coldstart.init_ahead_of_traffic(environ) is ahead


def test_the_models_are_every_model_class_of_chalicelib_models() -> None:
    found = set(coldstart.wire_and_domain_models())
    defined = {cls for cls in every_subclass(BaseModel) if cls.__module__.startswith("chalicelib.models.")}
    assert found == defined
    assert {ImageRecord, CreateImageRequest} <= found


def test_the_models_defer_their_build_and_prewarm_builds_them_all() -> None:
    models = list(coldstart.wire_and_domain_models())
    assert all(model.model_config.get("defer_build") for model in models)
    coldstart.prewarm()
    assert [model.__name__ for model in models if not model.__pydantic_complete__] == []
