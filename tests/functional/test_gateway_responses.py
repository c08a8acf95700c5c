"""API Gateway's own errors (unknown route, throttling, crashes) carry API.md's body."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from infra import gateway_responses


def _rendered(template: str) -> dict[str, Any]:
    # What API Gateway makes of the template: $context.requestId replaced by the request id.
    body: dict[str, Any] = json.loads(template.replace(gateway_responses.REQUEST_ID, "req-1"))
    return body


@pytest.mark.parametrize("reply", gateway_responses.REPLIES, ids=lambda r: r.response_type)
def test_every_reply_is_the_api_error_body_with_the_request_id(reply: gateway_responses.GatewayReply) -> None:
    body = _rendered(gateway_responses.body_template(reply))

    assert body == {"error": {"code": reply.code, "message": reply.message, "requestId": "req-1"}}
    assert reply.status is None or 400 <= int(reply.status) <= 599


def test_an_unknown_route_is_a_404_not_api_gateways_403() -> None:
    status, headers, body = gateway_responses.render("MISSING_AUTHENTICATION_TOKEN", "req-2")

    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"] == {
        "code": "not_found",
        "message": "No such endpoint. GET /openapi.json lists them.",
        "requestId": "req-2",
    }


def test_applying_to_a_deployed_api_puts_each_reply_once_and_redeploys_only_then(aws_stack: Any) -> None:
    client = boto3.client("apigateway", region_name="us-east-1")
    api_id = client.create_rest_api(name="image-service")["id"]
    root = client.get_resources(restApiId=api_id)["items"][0]["id"]
    client.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    client.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    client.create_deployment(restApiId=api_id, stageName="api")  # as chalice deploy leaves it
    before = len(client.get_deployments(restApiId=api_id)["items"])

    first = gateway_responses.apply(client, api_id, cross_origin=True)
    second = gateway_responses.apply(client, api_id, cross_origin=True)

    assert first == [reply.response_type for reply in gateway_responses.REPLIES]
    assert second == []
    assert len(client.get_deployments(restApiId=api_id)["items"]) == before + 1
    stored = {item["responseType"]: item for item in client.get_gateway_responses(restApiId=api_id)["items"]}
    throttled = stored["THROTTLED"]
    assert throttled["statusCode"] == "429"
    assert throttled["responseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"
    assert _rendered(throttled["responseTemplates"]["application/json"])["error"]["code"] == "too_many_requests"
    for item in stored.values():  # readable from the gallery's origin
        assert item["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"
    # A stage that stops allowing cross-origin callers drops the headers on the next run.
    assert gateway_responses.apply(client, api_id, cross_origin=False) == first
    stored = {item["responseType"]: item for item in client.get_gateway_responses(restApiId=api_id)["items"]}
    assert not any("Access-Control" in name for item in stored.values() for name in item["responseParameters"])


def test_the_rest_api_id_comes_from_chalices_deployed_record() -> None:
    record = {
        "resources": [
            {"name": "api_handler_role", "resource_type": "iam_role"},
            {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": "abc123", "rest_api_url": "https://x"},
        ]
    }
    assert gateway_responses.deployed_rest_api_id(record) == "abc123"
    with pytest.raises(LookupError):
        gateway_responses.deployed_rest_api_id({"resources": []})


@pytest.mark.parametrize("stage", ["local", "dev", "staging", "prod"])
def test_every_stage_allows_a_cross_origin_caller_so_its_gateway_errors_carry_cors_headers(stage: str) -> None:
    from infra.stage_config import stage_environment

    assert gateway_responses.cross_origin_allowed(stage_environment(stage))
    resources = gateway_responses.template_resources(cross_origin=True)
    for resource in resources.values():
        parameters = resource["Properties"]["ResponseParameters"]
        assert parameters["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"  # no credentials: safe
        assert parameters["gatewayresponse.header.Access-Control-Expose-Headers"] == "'Retry-After'"
        assert not any("Credentials" in name for name in parameters)


def test_a_stage_without_allowed_origins_gets_gateway_errors_without_cors_headers() -> None:
    assert not gateway_responses.cross_origin_allowed({"CORS_ALLOWED_ORIGINS": ""})
    assert not gateway_responses.cross_origin_allowed({})
    resources = gateway_responses.template_resources(cross_origin=False)
    for resource in resources.values():
        assert not any("Access-Control" in name for name in resource["Properties"]["ResponseParameters"])


def test_the_local_stacks_unknown_route_answer_follows_the_stage_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "http://localhost:*")
    _, headers, _ = gateway_responses.render("MISSING_AUTHENTICATION_TOKEN", "req-3")
    assert headers["Access-Control-Allow-Origin"] == "*"

    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "")
    _, headers, _ = gateway_responses.render("MISSING_AUTHENTICATION_TOKEN", "req-4")
    assert "Access-Control-Allow-Origin" not in headers
