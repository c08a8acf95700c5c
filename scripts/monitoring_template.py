"""``python scripts/monitoring_template.py --stage STAGE --out F``: dashboard and alarms (infra.monitoring_template)."""

from infra.monitoring_template import main

if __name__ == "__main__":
    raise SystemExit(main())
