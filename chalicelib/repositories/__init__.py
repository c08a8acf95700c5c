"""Adapters for AWS: DynamoDB, S3 and SNS. Each takes its client in ``__init__``."""
