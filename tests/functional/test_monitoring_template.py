"""The dashboard and alarms merged into the packaged template."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.monitoring_template import monitoring_template

CHALICE_FUNCTIONS = ("APIHandler", "HandleUploadEvents", "SweepUploads")


def test_there_are_at_least_ten_alarms_and_each_pages_the_alarm_topic():
    resources = monitoring_template("prod")["Resources"]
    alarms = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert len(alarms) >= 10
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    metrics = {(a["Namespace"], a["MetricName"]) for a in alarms.values()}
    assert {
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/ApiGateway", "Latency"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Duration"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/DynamoDB", "ThrottledRequests"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/SNS", "NumberOfNotificationsFailed"),
    } <= metrics
    latency_routes = {
        dimension["Value"]
        for alarm in alarms.values()
        if alarm["MetricName"] == "Latency"
        for dimension in alarm["Dimensions"]
        if dimension["Name"] == "Resource"
    }
    assert {"/images", "/images/{image_id}", "/images/{image_id}/status"} <= latency_routes


def test_the_alarms_watch_the_stages_own_resources():
    resources = monitoring_template("staging")["Resources"]
    dimensions = [
        d["Value"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        for d in r["Properties"]["Dimensions"]
        if isinstance(d["Value"], str)
    ]
    assert "ImageMetadata-staging" in dimensions
    assert "image-service-uploads-staging-dlq" in dimensions
    assert not any("prod" in value for value in dimensions)


def test_the_dashboard_covers_the_funnel_processing_dynamodb_queues_and_events():
    body = monitoring_template("prod")["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    titles = [w["properties"]["title"] for w in json.loads(body)["widgets"]]
    assert titles == [
        "Upload funnel",
        "Processing p95 by step (ms)",
        "Processing failures by reason",
        "DynamoDB",
        "Upload queue and dead letters",
        "Events (SNS)",
    ]


def test_the_template_passes_cfn_lint(tmp_path: Path):
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    if not cfn_lint.exists() and shutil.which("cfn-lint") is None:
        pytest.skip("cfn-lint is not installed")
    template = monitoring_template("prod")
    # Stand-ins for the resources `chalice package` adds, so the Refs resolve.
    for name in CHALICE_FUNCTIONS:
        template["Resources"][name] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    path = tmp_path / "monitoring.json"
    path.write_text(json.dumps(template))
    run = subprocess.run([str(cfn_lint), str(path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_webhook_delivery_in_the_webhook_dead_letter_queue_raises_an_alarm():
    for stage in ("dev", "staging", "prod"):
        resources = monitoring_template(stage)["Resources"]
        watching = [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::CloudWatch::Alarm"
            and {"Name": "QueueName", "Value": f"image-service-webhooks-{stage}-dlq"} in r["Properties"]["Dimensions"]
        ]
        assert len(watching) == 1, stage
        (alarm,) = watching
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
        assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
            "Maximum",
            "GreaterThanThreshold",
            0,
        )
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert "docs/notifications.md" in alarm["AlarmDescription"]
