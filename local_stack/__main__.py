"""``python -m local_stack``: run the local stack (``make up``); see local_stack.supervisor."""

from local_stack.supervisor import main

raise SystemExit(main())
