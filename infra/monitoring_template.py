"""Dashboard and alarms as code: a CloudFormation template merged into the packaged app.

    python scripts/monitoring_template.py --stage prod --out build/monitoring-prod.json
    chalice package --stage prod --merge-template build/monitoring-prod.json out/

Alarms go to an SNS alarm topic (subscribe on-call to it). The references to Chalice's
own resources use the logical ids `chalice package` gives them (APIHandler,
HandleUploadEvents, SweepUploads, RestAPI); the table, queues and topic are the stage's
provisioned resources, named in .chalice/config.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from infra.provision import webhook_dlq_name
from infra.stage_config import LOCAL_STAGE, stage_environment

API_NAME = "image-service"
API_STAGE = "api"
# (HTTP method, API Gateway resource, p95 latency threshold in ms) — the seed targets.
ROUTE_LATENCY_TARGETS = [
    ("POST", "/images", 300),
    ("GET", "/images/{image_id}", 50),
    ("GET", "/images/{image_id}/status", 50),
    ("GET", "/images", 100),
    ("PATCH", "/images/{image_id}", 80),
    ("DELETE", "/images/{image_id}", 100),
]


def _alarm(
    description: str,
    namespace: str,
    metric: str,
    dimensions: dict[str, Any],
    threshold: float,
    *,
    statistic: str = "Sum",
    period: int = 300,
    periods: int = 1,
    comparison: str = "GreaterThanThreshold",
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "AlarmDescription": description,
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": [{"Name": name, "Value": value} for name, value in dimensions.items()],
        "Period": period,
        "EvaluationPeriods": periods,
        "Threshold": threshold,
        "ComparisonOperator": comparison,
        "TreatMissingData": "notBreaching",
        "AlarmActions": [{"Ref": "AlarmTopic"}],
        "OKActions": [{"Ref": "AlarmTopic"}],
    }
    if statistic.startswith("p"):
        properties["ExtendedStatistic"] = statistic
    else:
        properties["Statistic"] = statistic
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def alarms(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    table = env["TABLE_NAME"]
    queue = env["UPLOAD_QUEUE_NAME"]
    topic = env["EVENTS_TOPIC_ARN"].rsplit(":", 1)[-1]
    api = {"ApiName": API_NAME, "Stage": API_STAGE}
    resources = {
        "ApiServerErrorsAlarm": _alarm("API answered 5xx", "AWS/ApiGateway", "5XXError", api, 5),
        "ProcessorErrorsAlarm": _alarm(
            "Processor invocations failed (records are retried, then dead-lettered)",
            "AWS/Lambda",
            "Errors",
            {"FunctionName": {"Ref": "HandleUploadEvents"}},
            3,
        ),
        "ProcessorDurationAlarm": _alarm(
            "Processor p95 duration above 30 s (timeout is 60 s)",
            "AWS/Lambda",
            "Duration",
            {"FunctionName": {"Ref": "HandleUploadEvents"}},
            30_000,
            statistic="p95",
            periods=3,
        ),
        "ProcessorThrottlesAlarm": _alarm(
            "Processor throttled (account or reserved concurrency)",
            "AWS/Lambda",
            "Throttles",
            {"FunctionName": {"Ref": "HandleUploadEvents"}},
            0,
        ),
        "ApiThrottlesAlarm": _alarm(
            "API function throttled", "AWS/Lambda", "Throttles", {"FunctionName": {"Ref": "APIHandler"}}, 0
        ),
        "SweepErrorsAlarm": _alarm(
            "Expiry/outbox sweep failed", "AWS/Lambda", "Errors", {"FunctionName": {"Ref": "SweepUploads"}}, 0
        ),
        "TableThrottlesAlarm": _alarm(
            "DynamoDB throttled requests", "AWS/DynamoDB", "ThrottledRequests", {"TableName": table}, 0
        ),
        "TableSystemErrorsAlarm": _alarm(
            "DynamoDB system errors", "AWS/DynamoDB", "SystemErrors", {"TableName": table}, 0
        ),
        "DeadLettersAlarm": _alarm(
            "Upload messages in the dead-letter queue: see docs/runbooks/dlq-redrive.md",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": f"{queue}-dlq"},
            0,
            statistic="Maximum",
        ),
        "WebhookDeadLettersAlarm": _alarm(
            "Webhook deliveries SNS gave up on (about 47 minutes of retries) are in the webhook "
            "dead-letter queue: see docs/notifications.md",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": webhook_dlq_name(env["STAGE"], env)},
            0,
            statistic="Maximum",
        ),
        "OldestUploadMessageAlarm": _alarm(
            "Uploads waiting more than 5 minutes for the processor",
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            {"QueueName": queue},
            300,
            statistic="Maximum",
        ),
        "EventDeliveryFailuresAlarm": _alarm(
            "SNS could not deliver image events to subscribers",
            "AWS/SNS",
            "NumberOfNotificationsFailed",
            {"TopicName": topic},
            10,
        ),
    }
    for method, resource, threshold in ROUTE_LATENCY_TARGETS:
        name = "".join(part.strip("{}").title().replace("_", "") for part in resource.split("/"))
        resources[f"Latency{method.title()}{name}Alarm"] = _alarm(
            f"p95 latency of {method} {resource} above {threshold} ms",
            "AWS/ApiGateway",
            "Latency",
            {**api, "Method": method, "Resource": resource},
            threshold,
            statistic="p95",
            periods=3,
        )
    return resources


def dashboard_body(env: dict[str, str]) -> str:
    table = env["TABLE_NAME"]
    queue = env["UPLOAD_QUEUE_NAME"]
    topic = env["EVENTS_TOPIC_ARN"].rsplit(":", 1)[-1]
    stage = env["STAGE"]

    def widget(title: str, metrics: list[list[Any]], y: int, x: int, stat: str = "Sum") -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {"title": title, "region": "${AWS::Region}", "stat": stat, "period": 300, "metrics": metrics},
        }

    widgets = [
        widget(
            "Upload funnel",
            [
                ["ImageService", "UploadsCreated", "Stage", stage],
                ["ImageService", "ImagesCompleted", "Stage", stage],
                ["ImageService", "UploadsExpired", "Stage", stage],
                ["ImageService", "IdempotentReplays", "Stage", stage],
            ],
            0,
            0,
        ),
        widget(
            "Processing p95 by step (ms)",
            [
                ["ImageService", "ProcessingDuration", "Stage", stage, "Step", step]
                for step in ("decode", "resize", "encode", "total")
            ],
            0,
            12,
            stat="p95",
        ),
        widget(
            "Processing failures by reason",
            [
                ["ImageService", "ProcessingFailures", "Reason", reason, "Stage", stage]
                for reason in (
                    "unsupported_format",
                    "corrupt_image",
                    "image_too_large",
                    "image_too_complex",
                    "processing_timeout",
                    "size_mismatch",
                )
            ],
            6,
            0,
        ),
        widget(
            "DynamoDB",
            [
                ["AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", table],
                ["AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", table],
                ["AWS/DynamoDB", "ThrottledRequests", "TableName", table],
            ],
            6,
            12,
        ),
        widget(
            "Upload queue and dead letters",
            [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", queue],
                ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queue],
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f"{queue}-dlq"],
            ],
            12,
            0,
            stat="Maximum",
        ),
        widget(
            "Events (SNS)",
            [
                ["AWS/SNS", "NumberOfMessagesPublished", "TopicName", topic],
                ["AWS/SNS", "NumberOfNotificationsDelivered", "TopicName", topic],
                ["AWS/SNS", "NumberOfNotificationsFailed", "TopicName", topic],
            ],
            12,
            12,
        ),
    ]
    return json.dumps({"widgets": widgets})


def monitoring_template(stage: str) -> dict[str, Any]:
    env = stage_environment(stage)
    resources: dict[str, Any] = {
        "AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": f"image-service-alarms-{stage}"}},
        "Dashboard": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": f"image-service-{stage}",
                "DashboardBody": {"Fn::Sub": dashboard_body(env)},
            },
        },
    }
    resources.update(alarms(env))
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": resources,
        "Outputs": {"AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}}},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.stage == LOCAL_STAGE:
        parser.error("the local stage has no CloudWatch")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(monitoring_template(args.stage), indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
