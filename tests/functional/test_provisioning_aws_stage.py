"""Provisioning an AWS stage (against moto): what the local stage skips, and the config it writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from moto import mock_aws

from infra.provision import Clients, StageResources, provision, write_stage_config
from infra.stage_config import CONFIG_PATH, stage_environment


def test_an_aws_stage_gets_accelerated_uploads_a_cursor_secret_and_its_names_in_the_config(tmp_path: Path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    config = tmp_path / "config.json"
    shutil.copy(CONFIG_PATH, config)
    with mock_aws():
        resources = StageResources.from_environment("dev", stage_environment("dev"))
        clients = Clients.create("us-east-1")
        first = provision(resources, clients)
        again = provision(resources, clients)

        parameter = clients.ssm.get_parameter(Name="/image-service/dev/cursor-secret", WithDecryption=True)
        accelerate = clients.s3.get_bucket_accelerate_configuration(Bucket=resources.upload_bucket)

    assert parameter["Parameter"]["Type"] == "SecureString"
    assert len(parameter["Parameter"]["Value"]) >= 32
    assert accelerate.get("Status") == "Enabled"
    assert "parameter /image-service/dev/cursor-secret created" in first.changes
    assert not any("parameter" in change for change in again.changes)

    written = write_stage_config("dev", first.outputs, config)
    assert "EVENTS_TOPIC_ARN" in written  # moto's account replaces the placeholder
    environment = json.loads(config.read_text())["stages"]["dev"]["environment_variables"]
    assert environment["EVENTS_TOPIC_ARN"] == first.outputs["EVENTS_TOPIC_ARN"]
    assert environment["CURSOR_SECRET_PARAMETER"] == "/image-service/dev/cursor-secret"
    assert write_stage_config("dev", first.outputs, config) == []
    assert json.loads(CONFIG_PATH.read_text())["stages"]["dev"] != json.loads(config.read_text())["stages"]["dev"]


def test_the_cdn_reads_the_private_image_bucket_through_origin_access_control(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        resources = StageResources.from_environment("prod", stage_environment("prod"))
        clients = Clients.create("us-east-1")
        first = provision(resources, clients, with_cdn=True)
        again = provision(resources, clients, with_cdn=True)
        policy = json.loads(clients.s3.get_bucket_policy(Bucket=resources.image_bucket)["Policy"])
        block = clients.s3.get_public_access_block(Bucket=resources.image_bucket)["PublicAccessBlockConfiguration"]
        distributions = clients.cloudfront.list_distributions()["DistributionList"]["Items"]

    assert [d["Comment"] for d in distributions] == ["image-service-prod"]
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert statement["Action"] == "s3:GetObject"
    assert statement["Condition"]["StringEquals"]["AWS:SourceArn"] == distributions[0]["ARN"]
    assert all(block.values())  # still private: only the distribution reads it
    assert first.outputs["IMAGE_BASE_URL"] == f"https://{distributions[0]['DomainName']}"
    assert first.outputs["CDN_DISTRIBUTION_ID"] == distributions[0]["Id"]
    assert not any("CloudFront" in change or "readable" in change for change in again.changes)
