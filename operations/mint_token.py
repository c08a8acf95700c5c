"""Print a bearer token the local stage accepts, for any user id.

    python scripts/mint_token.py alice                 # valid for an hour
    python scripts/mint_token.py alice --ttl 600
    TOKEN=$(python scripts/mint_token.py alice)

Only the token goes to stdout, so it can be captured. Local stage only: AWS stages
verify Cognito tokens and have no shared secret.
"""

from __future__ import annotations

import argparse

from chalicelib.auth import mint_local_token
from chalicelib.models.user_ids import USER_ID_RULE, user_id_problem
from infra.stage_config import LOCAL_STAGE, stage_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("user_id", help="the token's subject (the user id)")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    parser.add_argument("--scope", action="append", default=[], help="a scope to grant, e.g. images:import")
    args = parser.parse_args(argv)
    problem = user_id_problem(args.user_id)
    if problem is not None:
        # The API would answer 401 to such a token: say so here instead.
        parser.error(f"user_id {problem} ({USER_ID_RULE})")
    environment = stage_environment(LOCAL_STAGE)
    print(
        mint_local_token(
            environment["LOCAL_JWT_SECRET"],
            args.user_id,
            issuer=environment["JWT_ISSUER"],
            audience=environment["JWT_AUDIENCE"],
            ttl_seconds=args.ttl,
            scopes=tuple(args.scope),
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
