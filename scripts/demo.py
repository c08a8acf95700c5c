"""``python scripts/demo.py`` (``make demo``): the local stack with the corpus photos uploaded (local_stack.demo)."""

from local_stack.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
