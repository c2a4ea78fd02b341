"""The hub store: SQLModel tables on SQLite (default, WAL) or Postgres, migrated by Alembic."""

from fleet.store.db import make_engine, migrate, sqlite_url
from fleet.store.store import Store, hash_secret

__all__ = ["Store", "hash_secret", "make_engine", "migrate", "sqlite_url"]
