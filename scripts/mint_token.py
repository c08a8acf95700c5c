"""``python scripts/mint_token.py USER``: print a token the local stage accepts (operations.mint_token)."""

from operations.mint_token import main

if __name__ == "__main__":
    raise SystemExit(main())
