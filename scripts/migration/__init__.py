"""Moving the legacy gallery's ``gallery_images`` table into the Image Service.

Phases (docs/migration.md): dual-write (``dual_write``), backfill
(``scripts/migrate_gallery.py``), verify (``scripts/verify_migration.py``), rollout with
fallback (``read_routing``), and the legacy cache invalidation (``cache_invalidation``).
"""
