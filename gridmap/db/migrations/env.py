"""Alembic environment. The URL comes from the caller (gridmap.db.migrate) or the settings."""

from __future__ import annotations

import importlib
import pkgutil

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

import gridmap.db
from gridmap.config import get_settings
from gridmap.db.models import Base

# Every gridmap.db.models* module registers its tables on Base.metadata; import them all so that
# autogenerate sees the whole schema.
for _module in pkgutil.iter_modules(gridmap.db.__path__):
    if _module.name.startswith("models"):
        importlib.import_module(f"gridmap.db.{_module.name}")

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.attributes.get("url") or get_settings().database_url
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = create_engine(url, poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=alembic_helpers.include_object,
            process_revision_directives=alembic_helpers.writer,
            render_item=alembic_helpers.render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
