"""``python scripts/gateway_responses.py --stage STAGE``: API Gateway's error bodies (infra.gateway_responses)."""

from infra.gateway_responses import main

if __name__ == "__main__":
    raise SystemExit(main())
