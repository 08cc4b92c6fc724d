"""Alembic revisions, one per module, oldest first (``v0001_…``). Alembic reads them by
path; they are a package only so that an installed wheel carries them."""
