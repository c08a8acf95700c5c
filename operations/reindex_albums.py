"""Move album index keys to the per-owner form (one-off, after upgrading to it).

    python scripts/reindex_albums.py --stage dev              # count what would change
    python scripts/reindex_albums.py --stage dev --apply      # rewrite the stale keys
    python scripts/reindex_albums.py --stage local --endpoint-url http://127.0.0.1:4566 --apply

Album listings read the GSI2 partition ``ALBUM#<len(userId)>#<userId>#<albumId>``; records
written before that change carry ``ALBUM#<albumId>``, shared by every user with that album
id, and do not show up in their owner's album listing until this has run. Each rewrite is
conditional on the key still being the stale one (a PATCH in between wins), so the script
is safe to run while the service is live, to interrupt, and to run again: a second run
rewrites nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3

from chalicelib.repositories.dynamo import update_arguments
from chalicelib.repositories.keys import album_partition
from infra.stage_config import command_environment

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass
class ReindexReport:
    scanned: int = 0  # records in an album
    stale: int = 0  # of which with the old key
    rewritten: int = 0
    raced: int = 0  # changed by someone else between the read and the write: left as it is


def reindex(client: DynamoDBClient, table: str, *, apply: bool, progress: bool = False) -> ReindexReport:
    report = ReindexReport()
    paginator = client.get_paginator("scan")
    pages = paginator.paginate(
        TableName=table,
        FilterExpression="attribute_exists(GSI2PK)",
        ProjectionExpression="PK, SK, userId, albumId, GSI2PK",
    )
    for page in pages:
        for item in page.get("Items", []):
            report.scanned += 1
            expected = album_partition(item["userId"]["S"], item["albumId"]["S"])
            if item["GSI2PK"]["S"] == expected:
                continue
            report.stale += 1
            if not apply:
                continue
            try:
                client.update_item(
                    TableName=table,
                    Key={"PK": item["PK"], "SK": item["SK"]},
                    **update_arguments(
                        {"GSI2PK": expected}, condition="GSI2PK = :old", values={":old": item["GSI2PK"]["S"]}
                    ),
                )
                report.rewritten += 1
            except client.exceptions.ConditionalCheckFailedException:
                report.raced += 1
        if progress:
            print(f"\rscanned {report.scanned}, stale {report.stale}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--apply", action="store_true", help="rewrite the stale keys (default: only count them)")
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    args = parser.parse_args(argv)
    environment = command_environment(parser, args.stage, args.endpoint_url)
    client: DynamoDBClient = boto3.client(
        "dynamodb", region_name=environment.get("AWS_REGION", "us-east-1"), endpoint_url=args.endpoint_url
    )
    report = reindex(client, environment["TABLE_NAME"], apply=args.apply, progress=True)
    verb = "rewrote" if args.apply else "would rewrite"
    print(
        f"{report.scanned} record(s) in an album, {report.stale} with the old key: {verb} "
        f"{report.rewritten if args.apply else report.stale}"
        + (f", {report.raced} changed meanwhile and left as they are" if report.raced else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
