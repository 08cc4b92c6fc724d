"""Alembic's entry point for the store: runs the revisions on the connection that
``monitor.store.schema`` hands over, inside its transaction, which already holds the
migration lock; Alembic begins and commits nothing of its own."""

from alembic import context

from monitor.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the store's migrations run through `monitor db upgrade`, which "
                       "takes the migration lock; there is no alembic.ini")
context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
