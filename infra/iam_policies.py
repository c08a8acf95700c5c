"""Write the least-privilege IAM policies of a stage's functions into .chalice/.

    python scripts/iam_policies.py --stage prod        # writes .chalice/policy-prod*.json
    python scripts/iam_policies.py --all --check       # CI: fail if a committed file is stale

One policy per function, each granting only the actions its code path uses, on the
stage's own resources (names from the stage's environment in .chalice/config.json, which
scripts/provision.py fills in). The only "Resource": "*" is X-Ray's, which has no
resource-level permissions.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.repositories.keys import ALBUM_INDEX, DUPLICATE_INDEX_LEADING_KEYS, SWEEP_INDEX, USER_INDEX
from infra.stage_config import CONFIG_PATH, LOCAL_STAGE, load_config, stage_environment

APP_NAME = "image-service"
# What an SQS event source mapping needs of the function's execution role.
EVENT_SOURCE_MAPPING_SQS_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
# Function name -> policy file suffix (the API handler uses the stage's default file).
FUNCTIONS = {"api_handler": "", "handle_upload_events": "-processor", "sweep_uploads": "-sweeper"}


@dataclass(frozen=True)
class StageArns:
    stage: str
    region: str
    account: str
    table: str
    upload_bucket: str
    image_bucket: str
    queue: str
    topic: str
    cursor_parameter: str
    distribution_id: str

    @classmethod
    def from_environment(cls, stage: str, env: dict[str, str]) -> StageArns:
        _, _, _, region, account, _ = env["EVENTS_TOPIC_ARN"].split(":", 5)
        return cls(
            stage=stage,
            region=region,
            account=account,
            table=f"arn:aws:dynamodb:{region}:{account}:table/{env['TABLE_NAME']}",
            upload_bucket=f"arn:aws:s3:::{env['UPLOAD_BUCKET']}",
            image_bucket=f"arn:aws:s3:::{env['IMAGE_BUCKET']}",
            queue=f"arn:aws:sqs:{region}:{account}:{env['UPLOAD_QUEUE_NAME']}",
            topic=env["EVENTS_TOPIC_ARN"],
            cursor_parameter=f"arn:aws:ssm:{region}:{account}:parameter{env.get('CURSOR_SECRET_PARAMETER', '')}",
            distribution_id=env.get("CDN_DISTRIBUTION_ID", ""),
        )


def _statement(
    sid: str, actions: list[str], resources: list[str], condition: dict[str, dict[str, list[str]]] | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def _common(arns: StageArns, function: str) -> list[dict[str, Any]]:
    log_group = f"arn:aws:logs:{arns.region}:{arns.account}:log-group:/aws/lambda/{APP_NAME}-{arns.stage}-{function}"
    return [
        _statement("Logs", ["logs:CreateLogGroup"], [log_group]),
        _statement("LogStreams", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group}:*"]),
        # X-Ray has no resource-level permissions: "*" is the only valid resource.
        _statement("Tracing", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]),
    ]


# The indexes the API queries: a user's images and webhooks (GSI1), an album's images
# (GSI2). Not the sweep index (GSI3): only the sweeper reads it.
API_INDEXES = (USER_INDEX, ALBUM_INDEX)


def api_policy(arns: StageArns) -> list[dict[str, Any]]:
    statements = [
        # Items only (a transaction needs the action of each of its puts, no more; the
        # code has no ConditionCheck action); its only Queries of the table are the duplicate index...
        _statement(
            "ImageTable",
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            [arns.table],
        ),
        _statement("ImageIndexes", ["dynamodb:Query"], [f"{arns.table}/index/{index}" for index in API_INDEXES]),
        # A DELETE re-points the image's duplicates: Queries of its back-references and of
        # their perceptual-hash buckets (chalicelib/repositories/duplicates.py).
        _duplicate_index(arns),
        # Presigned POSTs are signed with this role: it must be allowed to put the upload
        # (with the tag the POST policy pins).
        _statement(
            "Uploads",
            ["s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject"],
            [f"{arns.upload_bucket}/uploads/*"],
        ),
        _statement("Renditions", ["s3:DeleteObject"], [f"{arns.image_bucket}/images/*"]),
        _statement("Webhooks", ["sns:Subscribe"], [arns.topic]),
        _statement("WebhookSubscriptions", ["sns:Unsubscribe", "sns:GetSubscriptionAttributes"], [f"{arns.topic}:*"]),
        _statement("CursorSecret", ["ssm:GetParameter"], [arns.cursor_parameter]),
    ]
    statements += _cdn_invalidation(arns)
    return statements


def _cdn_invalidation(arns: StageArns) -> list[dict[str, Any]]:
    if not arns.distribution_id:
        return []
    distribution = f"arn:aws:cloudfront::{arns.account}:distribution/{arns.distribution_id}"
    return [_statement("CdnInvalidation", ["cloudfront:CreateInvalidation"], [distribution])]


def _list_uploads(arns: StageArns) -> dict[str, Any]:
    """Without s3:ListBucket, S3 answers HeadObject/GetObject of a missing key with 403
    AccessDenied instead of 404. Listing is confined to the upload prefix (S3 checks the
    missing object's key as ``s3:prefix``)."""
    return _statement(
        "ListUploads", ["s3:ListBucket"], [arns.upload_bucket], {"StringLike": {"s3:prefix": ["uploads/*"]}}
    )


def _duplicate_index(arns: StageArns) -> dict[str, Any]:
    """The duplicate index's items live in the table (bucket items, back-references): only
    their partitions (``dynamodb:LeadingKeys``), so a role granted this for them still
    cannot put, delete or query an image record (the Null test: ForAllValues alone would
    also pass a request that names no key)."""
    return _statement(
        "DuplicateIndex",
        ["dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"],
        [arns.table],
        {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(DUPLICATE_INDEX_LEADING_KEYS)},
            "Null": {"dynamodb:LeadingKeys": ["false"]},
        },
    )


def processor_policy(arns: StageArns) -> list[dict[str, Any]]:
    return [
        _statement("ImageTable", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [arns.table]),
        # duplicateOf: Queries of the hash's buckets, the image's bucket items and back-reference.
        _duplicate_index(arns),
        _statement("ReadUploads", ["s3:GetObject", "s3:PutObjectTagging"], [f"{arns.upload_bucket}/uploads/*"]),
        # A message whose upload is gone (the image was deleted) is dropped, not retried
        # into the DLQ: that needs the 404.
        _list_uploads(arns),
        # Writes renditions; deletes them again when the image was deleted meanwhile.
        _statement("WriteRenditions", ["s3:PutObject", "s3:DeleteObject"], [f"{arns.image_bucket}/images/*"]),
        _statement("DeleteOrphanUploads", ["s3:DeleteObject"], [f"{arns.upload_bucket}/uploads/*"]),
        _statement("Events", ["sns:Publish"], [arns.topic]),
        # Not the code's: Lambda's event source mapping polls the queue and deletes what the
        # handler did not report in batchItemFailures with the function's role, and needs
        # exactly these three (the handler makes no SQS call).
        _statement(
            "UploadQueue",
            list(EVENT_SOURCE_MAPPING_SQS_ACTIONS),
            [arns.queue],
        ),
    ]


def sweeper_policy(arns: StageArns) -> list[dict[str, Any]]:
    return [
        _statement("SweepIndex", ["dynamodb:Query"], [f"{arns.table}/index/{SWEEP_INDEX}"]),
        # Transitions; and the last steps of a DELETE that stopped half-way (the record
        # removed, or an imported one read and kept as a purged tombstone).
        _statement("ImageTable", ["dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem"], [arns.table]),
        # ... including the duplicate index's part of it (re-pointing the image's duplicates).
        _duplicate_index(arns),
        # The renditions of an image whose DELETE stopped half-way.
        _statement("Renditions", ["s3:DeleteObject"], [f"{arns.image_bucket}/images/*"]),
        # Looks for the file of an overdue pending image (HeadObject), removes a stray one.
        _statement("Uploads", ["s3:GetObject", "s3:DeleteObject"], [f"{arns.upload_bucket}/uploads/*"]),
        # No file must be a 404 (the image expires), not a 403 that fails every sweep.
        _list_uploads(arns),
        # Hands an upload that arrived but was never processed back to the processor.
        _statement("UploadQueue", ["sqs:GetQueueUrl", "sqs:SendMessage"], [arns.queue]),
        _statement("Events", ["sns:Publish"], [arns.topic]),
        *_cdn_invalidation(arns),
    ]


POLICIES = {"api_handler": api_policy, "handle_upload_events": processor_policy, "sweep_uploads": sweeper_policy}


def policy_documents(stage: str) -> dict[str, dict[str, Any]]:
    """File name -> policy document, for every function of the stage."""
    arns = StageArns.from_environment(stage, stage_environment(stage))
    return {
        f"policy-{stage}{suffix}.json": {
            "Version": "2012-10-17",
            "Statement": POLICIES[function](arns) + _common(arns, function),
        }
        for function, suffix in FUNCTIONS.items()
    }


def deployed_stages(config_path: Path = CONFIG_PATH) -> list[str]:
    return [stage for stage in load_config(config_path)["stages"] if stage != LOCAL_STAGE]


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stage")
    target.add_argument("--all", action="store_true", help="every stage but local")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    args = parser.parse_args(argv)
    stages = deployed_stages() if args.all else [args.stage]
    if LOCAL_STAGE in stages:
        parser.error("the local stage is never deployed and has no IAM policy")
    stale = []
    for stage in stages:
        for name, document in policy_documents(stage).items():
            path = CONFIG_PATH.parent / name
            text = render(document)
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(name)
                continue
            path.write_text(text)
            print(f"wrote {path.relative_to(CONFIG_PATH.parent.parent)}")
    if stale:
        print(f"stale IAM policies (run scripts/iam_policies.py --all): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
