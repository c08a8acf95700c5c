"""``python scripts/provision.py --stage STAGE``: create or update the stage's resources (infra.provision)."""

from infra.provision import main

if __name__ == "__main__":
    raise SystemExit(main())
