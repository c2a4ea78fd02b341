"""Which hub replica runs the scheduled jobs.

Every replica serves the API. Only the leader polls Git, registers clusters,
runs failover, rotations and local dispatch, so none of it happens twice.
On PostgreSQL the leader holds a session-level advisory lock on its own
connection; if that connection dies, the lock is released and another replica
takes over. SQLite means one hub: a file lock on the data dir keeps a second
process from sharing it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger("fleet.hub.leader")

ADVISORY_LOCK_KEY = 0x666C656574  # "fleet"


class DataDirInUse(RuntimeError):
    pass


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold an exclusive lock on the data dir for the life of the process."""
    handle = open(data_dir / "hub.lock", "a+")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirInUse(f"another hub is running on the data dir {data_dir}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


class Leadership(Protocol):
    def check(self) -> bool:
        """Refresh and return whether this replica leads."""
        ...

    def close(self) -> None: ...


class SoleLeader:
    """SQLite: the only hub is the leader."""

    def check(self) -> bool:
        return True

    def close(self) -> None:
        return None


class PostgresLeader:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None
        self._leading = False
        self._lock = threading.Lock()

    def check(self) -> bool:
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = self.engine.connect()
                if self._leading:
                    self._connection.execute(text("SELECT 1"))  # the lock lives as long as this session
                    return True
                acquired = self._connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                ).scalar()
                self._connection.commit()
                self._leading = bool(acquired)
            except Exception as exc:
                log.warning("leadership check failed: %s", type(exc).__name__)
                self._drop()
            return self._leading

    def _drop(self) -> None:
        self._leading = False
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            except Exception:
                log.debug("closing the leadership connection failed", exc_info=True)
        self._connection = None

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._leading:
                try:
                    self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
                    self._connection.commit()
                except Exception:
                    log.debug("advisory unlock failed", exc_info=True)
            self._drop()


def leadership_for(engine: Engine) -> Leadership:
    return PostgresLeader(engine) if engine.dialect.name == "postgresql" else SoleLeader()
