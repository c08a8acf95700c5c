"""Upper bounds on every integer a client sends, details on every validation error, and an
OpenAPI document that states the same bounds."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from chalicelib.api.openapi import openapi_document
from chalicelib.errors import FieldProblem, ValidationFailed
from chalicelib.models.imports import MAX_OBJECT_BYTES, ImportImageRequest
from chalicelib.models.requests import MAX_VERSION, PRINTABLE_NOT_BLANK, ListImagesQuery, UpdateImageRequest
from chalicelib.services.cursors import MAX_CURSOR_LENGTH

LEGACY_ROW: dict[str, Any] = {
    "userId": "alice",
    "originalFilename": "castle.jpg",
    "contentType": "image/jpeg",
    "fileSize": 1,
    "imageKey": "images/alice/castle.jpg",
    "createdAt": "2021-03-04T05:06:07+00:00",
    "updatedAt": "2021-03-04T05:06:07+00:00",
}


def refused_fields(model: type[BaseModel], payload: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(payload)
    return {str(error["loc"][0]) for error in caught.value.errors()}


def test_max_version_is_the_largest_integer_a_javascript_client_holds_exactly() -> None:
    assert MAX_VERSION == 2**53 - 1


@pytest.mark.parametrize("version", [MAX_VERSION + 1, 10**40, 1e40])
def test_a_version_above_the_largest_is_refused(version: int | float) -> None:
    assert refused_fields(UpdateImageRequest, {"title": "x", "version": version}) == {"version"}


def test_the_largest_version_is_accepted() -> None:
    assert UpdateImageRequest.model_validate({"version": MAX_VERSION}).version == MAX_VERSION


@pytest.mark.parametrize("size", [MAX_OBJECT_BYTES + 1, 10**40])
def test_an_imported_file_size_above_s3s_largest_object_is_refused(size: int) -> None:
    assert refused_fields(ImportImageRequest, {**LEGACY_ROW, "fileSize": size}) == {"fileSize"}


def test_an_imported_file_of_s3s_largest_object_size_is_accepted() -> None:
    assert MAX_OBJECT_BYTES == 5 * 1024**4
    assert ImportImageRequest.model_validate({**LEGACY_ROW, "fileSize": MAX_OBJECT_BYTES}).file_size == MAX_OBJECT_BYTES


@pytest.mark.parametrize("limit", ["9" * 50, "0", "101", "1e400"])
def test_a_list_limit_outside_1_to_100_is_refused(limit: str) -> None:
    assert refused_fields(ListImagesQuery, {"limit": limit}) == {"limit"}


def test_a_validation_error_always_names_a_field() -> None:
    named = ValidationFailed("Bad.", [FieldProblem("title", "too long")])
    unnamed = ValidationFailed("The request is not valid.", [])

    assert named.details == (FieldProblem("title", "too long"),)
    assert unnamed.details == (FieldProblem("body", "The request is not valid."),)


def test_the_openapi_document_states_the_same_bounds() -> None:
    document = openapi_document(10 * 1024 * 1024)
    schemas = document["components"]["schemas"]
    update = schemas["UpdateImageRequest"]["properties"]
    create = schemas["CreateImageRequest"]["properties"]
    list_parameters = {p["name"]: p["schema"] for p in document["paths"]["/images"]["get"]["parameters"]}

    version = next(s for s in update["version"]["anyOf"] if s.get("type") == "integer")
    assert (version["minimum"], version["maximum"]) == (1, MAX_VERSION)
    assert schemas["ImportImageRequest"]["properties"]["fileSize"]["maximum"] == MAX_OBJECT_BYTES
    assert list_parameters["cursor"]["maxLength"] == MAX_CURSOR_LENGTH
    album_schemas = [
        list_parameters["albumId"],
        next(s for s in create["albumId"]["anyOf"] if s.get("type") == "string"),
        next(s for s in update["albumId"]["anyOf"] if s.get("type") == "string"),
    ]
    for album in album_schemas:
        assert (album["pattern"], album["minLength"], album["maxLength"]) == (PRINTABLE_NOT_BLANK, 1, 128)
    # Any string may be sent as contentType: those outside the list are unsupported_media_type.
    assert "maxLength" not in create["contentType"] and "minLength" not in create["contentType"]
