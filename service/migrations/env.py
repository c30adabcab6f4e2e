"""Alembic environment: runs on the connection handed over by service.db.migrate."""

from alembic import context

from service.tables import Base

VERSION_TABLE = "devicefit_alembic_version"  # apart from any other project's alembic_version

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through service.db.migrate(engine)")
context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
