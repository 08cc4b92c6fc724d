"""The store's versioned schema: Alembic revisions, shipped inside the package.

``versions/`` holds one module per revision; ``monitor.store.schema`` runs them (through
``env.py``) on the store's own connection, in one transaction under the migration lock.
There is no ``alembic.ini``: ``monitor db upgrade`` is the way to run them.

Revisions are frozen history: never edit one that has been released. To change the
schema, change ``monitor/store/tables.py`` (what the queries use), add a revision that
makes the same change (copy the latest, set ``down_revision`` to its ``revision``; write
it for both SQLite and PostgreSQL, with ``op.batch_alter_table`` where SQLite cannot
alter in place), and set ``monitor.store.schema.HEAD`` to it. ``tests/test_migrations.py``
fails while ``HEAD``, the revisions and ``tables.py`` disagree.
"""
