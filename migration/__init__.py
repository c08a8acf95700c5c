"""Moving the legacy gallery's ``gallery_images`` table into the Image Service; run by the
operator (backfill, verify) and inside or beside the legacy gallery (dual-write, read
routing, cache invalidation, outbox replay). Nothing here ships in the Lambda package.

Phases (docs/migration.md): dual-write (``dual_write``, ``outbox``, ``replay_outbox``),
backfill (``migrate_gallery``, ``backfill``; ``scripts/migrate_gallery.py``), verify
(``verify_migration``, ``verify``; ``scripts/verify_migration.py``), rollout with fallback
(``read_routing``), and the legacy cache invalidation (``cache_invalidation``).
"""
