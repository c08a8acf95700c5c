"""Create or update a stage's AWS resources, idempotently.

    python scripts/provision.py --stage dev        # against AWS (your credentials)
    python scripts/provision.py --stage local      # against AWS_ENDPOINT_URL (moto)

The same code provisions moto in tests and the local stack, so what the tests exercise
is what the stages get. Every step reads the current state first and changes only what
differs; the report lists what changed (nothing, on a second run).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from chalicelib.repositories.keys import INDEXES as KEY_INDEXES
from chalicelib.repositories.webhooks import WEBHOOK_PROTOCOLS, delivery_attributes
from infra.stage_config import CONFIG_PATH, LOCAL_STAGE, apply_stage_environment, command_environment

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

MAX_RECEIVE_COUNT = 5
UNPROCESSED_UPLOAD_DAYS = 3
PROCESSOR_TIMEOUT_SECONDS = 60
LOCAL_VISIBILITY_TIMEOUT = 30  # the local worker retries quickly


@dataclass(frozen=True)
class StageResources:
    stage: str
    region: str
    table_name: str
    upload_bucket: str
    image_bucket: str
    queue_name: str
    topic_name: str
    webhook_dlq_name: str

    @property
    def dlq_name(self) -> str:
        return f"{self.queue_name}-dlq"

    @property
    def is_local(self) -> bool:
        return self.stage == LOCAL_STAGE

    @classmethod
    def from_environment(cls, stage: str, environment: dict[str, str]) -> StageResources:
        return cls(
            stage=stage,
            region=environment.get("AWS_REGION", "us-east-1"),
            table_name=environment["TABLE_NAME"],
            upload_bucket=environment["UPLOAD_BUCKET"],
            image_bucket=environment["IMAGE_BUCKET"],
            queue_name=environment["UPLOAD_QUEUE_NAME"],
            topic_name=environment["EVENTS_TOPIC_ARN"].rsplit(":", 1)[-1],
            webhook_dlq_name=webhook_dlq_name(stage, environment),
        )


def webhook_dlq_name(stage: str, environment: dict[str, str]) -> str:
    """The stage's webhook dead-letter queue (``WEBHOOK_DLQ_NAME``, written by provisioning)."""
    return environment.get("WEBHOOK_DLQ_NAME") or f"image-service-webhooks-{stage}-dlq"


@dataclass
class Report:
    changes: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    def changed(self, what: str) -> None:
        self.changes.append(what)


@dataclass
class Clients:
    dynamodb: DynamoDBClient
    s3: S3Client
    sqs: SQSClient
    sns: SNSClient
    ssm: SSMClient
    cloudfront: CloudFrontClient

    @classmethod
    def create(cls, region: str, endpoint_url: str | None = None) -> Clients:
        session = boto3.session.Session(region_name=region)
        return cls(
            dynamodb=session.client("dynamodb", endpoint_url=endpoint_url),
            s3=session.client("s3", endpoint_url=endpoint_url),
            sqs=session.client("sqs", endpoint_url=endpoint_url),
            sns=session.client("sns", endpoint_url=endpoint_url),
            ssm=session.client("ssm", endpoint_url=endpoint_url),
            cloudfront=session.client("cloudfront", endpoint_url=endpoint_url),
        )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# -- DynamoDB ---------------------------------------------------------------------------


# GSI1: a user's images, GSI2: an album's, GSI3: the sparse sweep index (expiry and outbox);
# their keys are built in chalicelib/repositories/keys.py.
INDEXES = KEY_INDEXES
_KEY_ATTRIBUTES = ("PK", "SK", *(f"{name}{part}" for name in INDEXES for part in ("PK", "SK")))


def _gsi(name: str) -> Any:  # GlobalSecondaryIndex and its Create action share this shape
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": f"{name}PK", "KeyType": "HASH"},
            {"AttributeName": f"{name}SK", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def ensure_table(client: DynamoDBClient, res: StageResources, report: Report) -> None:
    try:
        client.describe_table(TableName=res.table_name)
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        client.create_table(
            TableName=res.table_name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in _KEY_ATTRIBUTES],
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[_gsi(name) for name in INDEXES],
            SSESpecification={"Enabled": True},
        )
        client.get_waiter("table_exists").wait(TableName=res.table_name)
        report.changed(f"table {res.table_name} created")
    existing = {
        i["IndexName"]
        for i in client.describe_table(TableName=res.table_name)["Table"].get("GlobalSecondaryIndexes", [])
    }
    for name in INDEXES:
        if name not in existing:
            # One index per UpdateTable call; DynamoDB backfills it online.
            client.update_table(
                TableName=res.table_name,
                AttributeDefinitions=[
                    {"AttributeName": f"{name}PK", "AttributeType": "S"},
                    {"AttributeName": f"{name}SK", "AttributeType": "S"},
                ],
                GlobalSecondaryIndexUpdates=[{"Create": _gsi(name)}],
            )
            report.changed(f"table index {name} created")
    ttl = client.describe_time_to_live(TableName=res.table_name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        client.update_time_to_live(
            TableName=res.table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
        )
        report.changed("table TTL on 'ttl' enabled")
    backups = client.describe_continuous_backups(TableName=res.table_name)["ContinuousBackupsDescription"]
    pitr = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
    if pitr != "ENABLED":
        client.update_continuous_backups(
            TableName=res.table_name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
        report.changed("table point-in-time recovery enabled")
    report.outputs["TABLE_NAME"] = res.table_name


# -- S3 -----------------------------------------------------------------------------------


def ensure_bucket(client: S3Client, name: str, region: str, report: Report) -> None:
    try:
        client.head_bucket(Bucket=name)
    except ClientError as exc:
        if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
        if region == "us-east-1":
            client.create_bucket(Bucket=name)
        else:
            client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
        report.changed(f"bucket {name} created")
    block = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    try:
        current_block = client.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    except ClientError:
        current_block = {}
    if current_block != block:
        client.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)  # type: ignore[arg-type]
        report.changed(f"bucket {name}: public access blocked")
    encryption = {
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]
    }
    try:
        rules = client.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
        encrypted = any(r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules)
    except ClientError:
        encrypted = False
    if not encrypted:
        client.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=encryption)  # type: ignore[arg-type]
        report.changed(f"bucket {name}: default encryption on")


def ensure_upload_bucket_extras(client: S3Client, res: StageResources, report: Report) -> None:
    cors_rules = [
        {
            "AllowedMethods": ["POST"],
            "AllowedOrigins": ["*"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag", "Location"],
            "MaxAgeSeconds": 3000,
        }
    ]
    try:
        current = client.get_bucket_cors(Bucket=res.upload_bucket)["CORSRules"]
    except ClientError:
        current = []
    if [_normalise(r) for r in current] != [_normalise(r) for r in cors_rules]:
        client.put_bucket_cors(Bucket=res.upload_bucket, CORSConfiguration={"CORSRules": cors_rules})  # type: ignore[typeddict-item]
        report.changed(f"bucket {res.upload_bucket}: CORS for browser POST uploads")
    if not res.is_local:
        status = client.get_bucket_accelerate_configuration(Bucket=res.upload_bucket).get("Status")
        if status != "Enabled":
            client.put_bucket_accelerate_configuration(
                Bucket=res.upload_bucket, AccelerateConfiguration={"Status": "Enabled"}
            )
            report.changed(f"bucket {res.upload_bucket}: Transfer Acceleration enabled")


def ensure_lifecycle(client: S3Client, bucket: str, rules: list[dict[str, Any]], report: Report) -> None:
    try:
        current = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        if _code(exc) != "NoSuchLifecycleConfiguration":
            raise
        current = []
    if _canonical_rules(current) != _canonical_rules(rules):
        client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})  # type: ignore[typeddict-item]
        report.changed(f"bucket {bucket}: lifecycle rules {', '.join(r['ID'] for r in rules)}")


def _canonical_rules(rules: list[Any]) -> list[str]:
    return sorted(json.dumps(rule, sort_keys=True, default=str) for rule in rules)


def upload_lifecycle_rules() -> list[dict[str, Any]]:
    return [
        {
            # Uploads still tagged unprocessed after a few days were abandoned, rejected or
            # never processed; completed images' originals are re-tagged and kept.
            "ID": "expire-unprocessed-uploads",
            "Status": "Enabled",
            "Filter": {"And": {"Prefix": "uploads/", "Tags": [{"Key": "state", "Value": "unprocessed"}]}},
            "Expiration": {"Days": UNPROCESSED_UPLOAD_DAYS},
        },
        {
            "ID": "abort-incomplete-multipart",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        },
    ]


def image_lifecycle_rules() -> list[dict[str, Any]]:
    return [
        {
            # Renditions of old images are rarely viewed: let S3 move them between tiers.
            "ID": "renditions-intelligent-tiering",
            "Status": "Enabled",
            "Filter": {"Prefix": "images/"},
            "Transitions": [{"Days": 0, "StorageClass": "INTELLIGENT_TIERING"}],
        }
    ]


def _normalise(rule: Any) -> str:
    return json.dumps(
        {k: sorted(v) if isinstance(v, list) else v for k, v in dict(rule).items() if k != "ID"}, sort_keys=True
    )


# -- SQS and SNS -----------------------------------------------------------------------


def _queue(client: SQSClient, name: str, attributes: dict[str, str], report: Report) -> tuple[str, str]:
    try:
        url = client.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if "NonExistentQueue" not in _code(exc):
            raise
        url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
        report.changed(f"queue {name} created")
    current = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    wanted = {k: v for k, v in attributes.items() if _attribute_differs(current.get(k), v)}  # type: ignore[call-overload]
    if wanted:
        client.set_queue_attributes(QueueUrl=url, Attributes=wanted)  # type: ignore[arg-type]
        report.changed(f"queue {name}: {', '.join(sorted(wanted))} updated")
    return url, current["QueueArn"]


def _attribute_differs(current: str | None, wanted: str) -> bool:
    if current is None:
        return True
    try:
        return bool(_canonical(json.loads(current)) != _canonical(json.loads(wanted)))
    except (ValueError, TypeError):
        return current != wanted


def _canonical(value: Any) -> Any:
    """JSON with numbers and numeric strings alike: SQS echoes "5" back as 5."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def ensure_queues(client: SQSClient, res: StageResources, bucket_arn: str, report: Report) -> str:
    _dlq_url, dlq_arn = _queue(client, res.dlq_name, {"MessageRetentionPeriod": str(14 * 24 * 3600)}, report)
    visibility = LOCAL_VISIBILITY_TIMEOUT if res.is_local else 6 * PROCESSOR_TIMEOUT_SECONDS
    url, arn = _queue(
        client,
        res.queue_name,
        {
            "VisibilityTimeout": str(visibility),
            "MessageRetentionPeriod": str(4 * 24 * 3600),
            "ReceiveMessageWaitTimeSeconds": "20",
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}),
        },
        report,
    )
    _allow_send(client, url, arn, ("S3UploadEvents", "s3.amazonaws.com", bucket_arn), report)
    report.outputs["UPLOAD_QUEUE_NAME"] = res.queue_name
    return arn


def _allow_send(client: SQSClient, url: str, arn: str, sender: tuple[str, str, str], report: Report) -> None:
    """The queue's policy: only ``sender`` (statement id, AWS service, source ARN) may send."""
    sid, service, source_arn = sender
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
            }
        ],
    }
    current = client.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {})
    if _attribute_differs(current.get("Policy"), json.dumps(policy)):
        client.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        report.changed(f"queue {arn.rsplit(':', 1)[-1]}: only {service} ({sid}) may send to it")


def ensure_topic(client: SNSClient, res: StageResources, report: Report) -> str:
    existing = [
        t["TopicArn"] for page in client.get_paginator("list_topics").paginate() for t in page.get("Topics", [])
    ]
    arn = next((a for a in existing if a.rsplit(":", 1)[-1] == res.topic_name), None)
    if arn is None:
        arn = client.create_topic(Name=res.topic_name)["TopicArn"]
        report.changed(f"topic {res.topic_name} created")
    attributes = client.get_topic_attributes(TopicArn=arn)["Attributes"]
    # moto always signs with SHA256 and does not report the attribute.
    if not res.is_local and attributes.get("SignatureVersion") != "2":
        client.set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion", AttributeValue="2")
        report.changed(f"topic {res.topic_name}: SignatureVersion 2 (SHA256)")
    report.outputs["EVENTS_TOPIC_ARN"] = arn
    return arn


def ensure_webhook_dlq(client: SQSClient, res: StageResources, topic_arn: str, report: Report) -> str:
    """The queue SNS moves a webhook delivery to once its retries are exhausted: encrypted
    (SSE-SQS, which SNS can write without a KMS key grant), 14 days, and writable by the
    stage's topic only. Webhook subscriptions name it in their RedrivePolicy."""
    url, arn = _queue(
        client,
        res.webhook_dlq_name,
        {"MessageRetentionPeriod": str(14 * 24 * 3600), "SqsManagedSseEnabled": "true"},
        report,
    )
    _allow_send(client, url, arn, ("UndeliveredWebhookEvents", "sns.amazonaws.com", topic_arn), report)
    report.outputs["WEBHOOK_DLQ_NAME"] = res.webhook_dlq_name
    return arn


def ensure_webhook_subscriptions(client: SNSClient, topic_arn: str, dlq_arn: str, report: Report) -> None:
    """Give every HTTP/S subscription of the topic (the webhooks) the retry and
    dead-letter policies the API sets on new ones: webhooks subscribed before them get
    them here. Subscriptions still pending confirmation have no ARN yet: the next run."""
    wanted = delivery_attributes(dlq_arn)
    pages = client.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
    for subscription in (s for page in pages for s in page.get("Subscriptions", [])):
        arn = subscription["SubscriptionArn"]
        if subscription.get("Protocol") not in WEBHOOK_PROTOCOLS or not arn.startswith("arn:"):
            continue
        current = client.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
        stale = sorted(name for name, value in wanted.items() if _attribute_differs(current.get(name), value))
        for name in stale:
            client.set_subscription_attributes(SubscriptionArn=arn, AttributeName=name, AttributeValue=wanted[name])
        if stale:
            # The ARN, not the endpoint: a webhook URL may carry a token in its query.
            report.changed(f"subscription {arn}: {', '.join(stale)} set")


def ensure_notification(client: S3Client, res: StageResources, queue_arn: str, report: Report) -> None:
    wanted = {
        "QueueConfigurations": [
            {
                "Id": "upload-created",
                "QueueArn": queue_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
            }
        ]
    }
    current = client.get_bucket_notification_configuration(Bucket=res.upload_bucket)
    queues = current.get("QueueConfigurations", [])
    if [(q.get("QueueArn"), sorted(q.get("Events", []))) for q in queues] != [(queue_arn, ["s3:ObjectCreated:*"])]:
        client.put_bucket_notification_configuration(
            Bucket=res.upload_bucket,
            NotificationConfiguration=wanted,  # type: ignore[arg-type]
        )
        report.changed(f"bucket {res.upload_bucket}: ObjectCreated -> {res.queue_name}")


def ensure_cursor_secret(client: SSMClient, res: StageResources, report: Report) -> None:
    """The secret that signs pagination cursors, generated once per stage (AWS stages)."""
    if res.is_local:
        return  # the local stage's secret is in its config
    name = f"/image-service/{res.stage}/cursor-secret"
    try:
        client.get_parameter(Name=name)
    except ClientError as exc:
        if _code(exc) != "ParameterNotFound":
            raise
        client.put_parameter(
            Name=name,
            Type="SecureString",
            Value=secrets.token_urlsafe(48),
            Description="Signs the Image Service's pagination cursors",
        )
        report.changed(f"parameter {name} created")
    report.outputs["CURSOR_SECRET_PARAMETER"] = name


# AWS's managed "CachingOptimized" cache policy.
CACHING_OPTIMIZED_POLICY = "658327ea-f89d-4fab-a63d-7e88639e58f6"


def ensure_cdn(cloudfront: CloudFrontClient, s3: S3Client, res: StageResources, report: Report) -> None:
    """A CloudFront distribution in front of the private image bucket, through origin access control."""
    name = f"image-service-{res.stage}"
    controls = cloudfront.list_origin_access_controls().get("OriginAccessControlList", {}).get("Items", [])
    control_id = next((c["Id"] for c in controls if c["Name"] == name), None)
    if control_id is None:
        control_id = cloudfront.create_origin_access_control(
            OriginAccessControlConfig={
                "Name": name,
                "Description": "Image Service renditions",
                "SigningProtocol": "sigv4",
                "SigningBehavior": "always",
                "OriginAccessControlOriginType": "s3",
            }
        )["OriginAccessControl"]["Id"]
        report.changed(f"CloudFront origin access control {name} created")
    listed = cloudfront.list_distributions().get("DistributionList", {}).get("Items", [])
    found = next((d for d in listed if d.get("Comment") == name), None)
    if found is not None:
        distribution_id, arn, domain = found["Id"], found["ARN"], found["DomainName"]
    else:
        origin_id = f"{res.image_bucket}-origin"
        distribution = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": name,
                "Comment": name,
                "Enabled": True,
                "HttpVersion": "http2and3",
                "PriceClass": "PriceClass_100",
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": origin_id,
                            "DomainName": f"{res.image_bucket}.s3.{res.region}.amazonaws.com",
                            "OriginAccessControlId": control_id,
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": origin_id,
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "CachePolicyId": CACHING_OPTIMIZED_POLICY,
                    "Compress": False,  # WebP is compressed already
                    "AllowedMethods": {
                        "Quantity": 2,
                        "Items": ["GET", "HEAD"],
                        "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]},
                    },
                },
            }
        )["Distribution"]
        distribution_id, arn, domain = distribution["Id"], distribution["ARN"], distribution["DomainName"]
        report.changed(f"CloudFront distribution {name} created")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CloudFrontReadsRenditions",
                "Effect": "Allow",
                "Principal": {"Service": "cloudfront.amazonaws.com"},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{res.image_bucket}/images/*",
                "Condition": {"StringEquals": {"AWS:SourceArn": arn}},
            }
        ],
    }
    try:
        current = s3.get_bucket_policy(Bucket=res.image_bucket)["Policy"]
    except ClientError:
        current = None
    if _attribute_differs(current, json.dumps(policy)):
        s3.put_bucket_policy(Bucket=res.image_bucket, Policy=json.dumps(policy))
        report.changed(f"bucket {res.image_bucket}: readable by its CloudFront distribution only")
    report.outputs.update(CDN_DISTRIBUTION_ID=distribution_id, IMAGE_BASE_URL=f"https://{domain}")


def write_stage_config(stage: str, outputs: dict[str, str], config_path: Path = CONFIG_PATH) -> list[str]:
    """Put the provisioned names into the stage's environment; returns the names changed."""
    config = json.loads(config_path.read_text())
    environment = config["stages"][stage].setdefault("environment_variables", {})
    changed = sorted(name for name, value in outputs.items() if environment.get(name) != value)
    if changed:
        environment.update(outputs)
        config_path.write_text(json.dumps(config, indent=2) + "\n")
    return changed


def provision(res: StageResources, clients: Clients, with_cdn: bool = False) -> Report:
    report = Report()
    ensure_table(clients.dynamodb, res, report)
    for bucket in (res.upload_bucket, res.image_bucket):
        ensure_bucket(clients.s3, bucket, res.region, report)
    ensure_upload_bucket_extras(clients.s3, res, report)
    ensure_lifecycle(clients.s3, res.upload_bucket, upload_lifecycle_rules(), report)
    ensure_lifecycle(clients.s3, res.image_bucket, image_lifecycle_rules(), report)
    queue_arn = ensure_queues(clients.sqs, res, f"arn:aws:s3:::{res.upload_bucket}", report)
    topic_arn = ensure_topic(clients.sns, res, report)
    webhook_dlq_arn = ensure_webhook_dlq(clients.sqs, res, topic_arn, report)
    ensure_webhook_subscriptions(clients.sns, topic_arn, webhook_dlq_arn, report)
    ensure_notification(clients.s3, res, queue_arn, report)
    ensure_cursor_secret(clients.ssm, res, report)
    if with_cdn and not res.is_local:
        ensure_cdn(clients.cloudfront, clients.s3, res, report)
    report.outputs.update(UPLOAD_BUCKET=res.upload_bucket, IMAGE_BUCKET=res.image_bucket)
    return report


def provision_stage(stage: str, endpoint_url: str | None = None, with_cdn: bool = False) -> Report:
    environment = apply_stage_environment(stage)
    res = StageResources.from_environment(stage, environment)
    return provision(res, Clients.create(res.region, endpoint_url), with_cdn=with_cdn)


def main(argv: list[str] | None = None) -> int:

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, help="a stage of .chalice/config.json")
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"), help="e.g. http://127.0.0.1:4566")
    parser.add_argument(
        "--cdn", action="store_true", help="also a CloudFront distribution (origin access control) for renditions"
    )
    args = parser.parse_args(argv)
    command_environment(parser, args.stage, args.endpoint_url)
    report = provision_stage(args.stage, args.endpoint_url, with_cdn=args.cdn)
    if args.stage != LOCAL_STAGE:
        written = write_stage_config(args.stage, report.outputs)
        if written:
            report.changed(f".chalice/config.json {args.stage}: {', '.join(written)}")
            from infra.iam_policies import main as write_policies

            write_policies(["--stage", args.stage])
    for change in report.changes:
        print(f"changed: {change}")
    print(f"{len(report.changes)} change(s)" if report.changes else "no changes: the stage is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
