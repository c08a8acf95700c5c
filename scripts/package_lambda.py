"""``python scripts/package_lambda.py --stage STAGE``: build the Lambda package (infra.package_lambda)."""

from infra.package_lambda import main

if __name__ == "__main__":
    raise SystemExit(main())
