"""``python scripts/iam_policies.py --all [--check]``: write or check the IAM policies (infra.iam_policies)."""

from infra.iam_policies import main

if __name__ == "__main__":
    raise SystemExit(main())
