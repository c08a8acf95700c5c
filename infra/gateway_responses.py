"""API Gateway's own errors in API.md's error body.

    python scripts/gateway_responses.py --stage prod     # apply to the deployed API (after chalice deploy)

Some answers never reach the app: a path or method the API does not have (API Gateway
says 403 ``{"message": "Missing Authentication Token"}``), throttling (429), a body over
API Gateway's 10 MB, a Lambda that timed out, crashed or was throttled (502/504). API.md
wants every 4xx/5xx as ``{"error": {"code", "message", "requestId"}}``, so each of those
answers gets a gateway response with that body, ``requestId`` being API Gateway's request
id (the one the app logs as ``requestId``).

They carry CORS headers too, so that the gallery's web app on another origin can read
them: ``Access-Control-Allow-Origin: *`` (and ``Retry-After`` exposed) in every stage whose
``CORS_ALLOWED_ORIGINS`` is not empty. A gateway response cannot look the caller's origin
up in a list (its headers are static values or request-parameter mappings), and ``*`` is
safe here: these bodies hold no data but a fixed message and a request id, and the API
takes no cookies (no ``Access-Control-Allow-Credentials`` anywhere). The app's own
answers are the ones that echo an allowed origin only (chalicelib/api/cors.py).

They reach AWS two ways: ``scripts/package_lambda.py`` merges ``template_resources()``
into the packaged CloudFormation template, and ``package_lambda.py --deploy`` (``chalice
deploy``, which has no setting for them) calls ``apply()`` on the deployed API afterwards,
which puts only what differs and then redeploys the stage. The local stack answers an
unknown route with ``render()``, the same body.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.errors import DomainError, NotFound, PayloadTooLarge, TransientFailure

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient

REQUEST_ID = "$context.requestId"
API_STAGE = "api"  # Chalice's default api_gateway_stage, which .chalice/config.json keeps


class GatewayReply(NamedTuple):
    response_type: str
    status: str | None  # None: keep the status API Gateway chose (the DEFAULT_* families)
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


REPLIES = (
    GatewayReply(
        # No such resource or method: API Gateway calls it a missing token, and says 403.
        "MISSING_AUTHENTICATION_TOKEN",
        "404",
        NotFound.code,
        "No such endpoint. GET /openapi.json lists them.",
    ),
    GatewayReply(
        "THROTTLED", "429", "too_many_requests", "Too many requests. Retry after a pause.", (("Retry-After", "1"),)
    ),
    GatewayReply("REQUEST_TOO_LARGE", "413", PayloadTooLarge.code, "The request is too large."),
    GatewayReply("INTEGRATION_TIMEOUT", "504", TransientFailure.code, "The request took too long. Retry."),
    GatewayReply("DEFAULT_4XX", None, "bad_request", "The request was refused."),
    GatewayReply("DEFAULT_5XX", None, DomainError.code, DomainError.default_message),
)
_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
# In stages that allow a cross-origin caller (see the module docstring).
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Retry-After"}


def cross_origin_allowed(environment: Mapping[str, str]) -> bool:
    """Whether the stage lets any browser page on another origin call the API."""
    return bool(environment.get("CORS_ALLOWED_ORIGINS", "").strip(" ,"))


def reply_headers(reply: GatewayReply, cross_origin: bool) -> dict[str, str]:
    return {**_HEADERS, **dict(reply.headers), **(CORS_HEADERS if cross_origin else {})}


def body_template(reply: GatewayReply) -> str:
    """The mapping template: API.md's error body, with API Gateway's request id."""
    # json.dumps escapes the message; the request id placeholder is a plain token.
    return json.dumps(
        {"error": {"code": reply.code, "message": reply.message, "requestId": REQUEST_ID}}, separators=(",", ":")
    )


def _parameters(reply: GatewayReply, cross_origin: bool) -> dict[str, str]:
    # Gateway response header values are quoted static strings.
    headers = reply_headers(reply, cross_origin)
    return {f"gatewayresponse.header.{name}": f"'{value}'" for name, value in headers.items()}


def template_resources(rest_api: str = "RestAPI", *, cross_origin: bool) -> dict[str, Any]:
    """CloudFormation ``AWS::ApiGateway::GatewayResponse`` resources for Chalice's RestAPI."""
    resources: dict[str, Any] = {}
    for reply in REPLIES:
        properties: dict[str, Any] = {
            "RestApiId": {"Ref": rest_api},
            "ResponseType": reply.response_type,
            "ResponseParameters": _parameters(reply, cross_origin),
            "ResponseTemplates": {"application/json": body_template(reply)},
        }
        if reply.status is not None:
            properties["StatusCode"] = reply.status
        name = "GatewayResponse" + "".join(part.title() for part in reply.response_type.split("_"))
        resources[name] = {"Type": "AWS::ApiGateway::GatewayResponse", "Properties": properties}
    return resources


def render(response_type: str, request_id: str, cross_origin: bool | None = None) -> tuple[int, dict[str, str], bytes]:
    """What API Gateway answers for ``response_type`` (the local stack's stand-in);
    ``cross_origin`` defaults to what the running stage's environment says."""
    reply = next(r for r in REPLIES if r.response_type == response_type)
    body = body_template(reply).replace(REQUEST_ID, request_id)
    if cross_origin is None:
        cross_origin = cross_origin_allowed(os.environ)
    return int(reply.status or "400"), reply_headers(reply, cross_origin), body.encode()


def apply(client: APIGatewayClient, rest_api_id: str, stage_name: str = API_STAGE, *, cross_origin: bool) -> list[str]:
    """Put the replies that differ from the API's, then redeploy the stage if any did.

    Returns the response types changed: none on a second run.
    """
    items = client.get_gateway_responses(restApiId=rest_api_id)["items"]
    current: dict[str, dict[str, Any]] = {str(item["responseType"]): dict(item) for item in items}
    changed = []
    for reply in REPLIES:
        wanted: dict[str, Any] = {
            "responseParameters": _parameters(reply, cross_origin),
            "responseTemplates": {"application/json": body_template(reply)},
        }
        if reply.status is not None:
            wanted["statusCode"] = reply.status
        have = current.get(reply.response_type, {})
        if any(have.get(key) != value for key, value in wanted.items()):
            client.put_gateway_response(restApiId=rest_api_id, responseType=reply.response_type, **wanted)  # type: ignore[arg-type]
            changed.append(reply.response_type)
    if changed:
        # Gateway responses take effect with the next deployment of the stage.
        client.create_deployment(restApiId=rest_api_id, stageName=stage_name, description="gateway responses")
    return changed


def deployed_rest_api_id(deployed_record: dict[str, Any]) -> str:
    """The REST API id in ``.chalice/deployed/<stage>.json``."""
    for resource in deployed_record.get("resources", []):
        if resource.get("resource_type") == "rest_api":
            return str(resource["rest_api_id"])
    raise LookupError("no rest_api in the deployed record: run chalice deploy first")


def main(argv: list[str] | None = None) -> int:
    import boto3

    from infra.stage_config import PROJECT_ROOT, stage_environment

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    record_path = PROJECT_ROOT / ".chalice" / "deployed" / f"{args.stage}.json"
    if not record_path.exists():
        parser.error(f"{record_path} not found: deploy the stage first (docs/deploy.md)")
    rest_api_id = deployed_rest_api_id(json.loads(record_path.read_text()))
    environment = stage_environment(args.stage)
    region = environment.get("AWS_REGION", "us-east-1")
    client = boto3.client("apigateway", region_name=region)
    changed = apply(client, rest_api_id, cross_origin=cross_origin_allowed(environment))
    print(f"gateway responses: {', '.join(changed)} updated" if changed else "gateway responses: up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
