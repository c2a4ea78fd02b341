"""Every store test runs on SQLite and on a throwaway PostgreSQL (see tests/fixtures/postgres.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from fleet.store import Store
from fleet.store.models import ObjectStatusRecord, SQLModel


def test_migrations_create_the_models_schema(database_url: str) -> None:
    store = Store.open(database_url)
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), SQLModel.metadata)
        assert diff == [], f"models and migrations differ; add a migration: {diff}"
        assert "clusters" in inspect(store.engine).get_table_names()
        Store.open(database_url).close()  # idempotent
    finally:
        store.close()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'fleet.db'}")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    store.close()


def test_cluster_lifecycle_and_credentials(database_url: str) -> None:
    store = Store.open(database_url)
    record, created = store.upsert_cluster_spec("dev", "kubeconfig", None, {"env": "dev"}, {"name": "dev"})
    assert created and record.state == "pending"
    _, created = store.upsert_cluster_spec("dev", "kubeconfig", None, {"env": "dev2"}, {"name": "dev"})
    assert not created
    store.set_registration("dev", state="registered", endpoint="https://x", kubernetes_version="v1.32.0")
    assert store.cluster("dev").labels == {"env": "dev2"}  # type: ignore[union-attr]
    store.set_agent_credential("dev", "cred-abc-123", "age1xyz", "0.1")
    assert store.cluster_for_credential("cred-abc-123") == "dev"
    assert store.cluster_for_credential("wrong") is None
    stored = store.cluster("dev")
    assert stored is not None and "cred-abc-123" not in str(stored.model_dump())
    store.mark_removed("dev")
    assert store.cluster("dev").state == "removed"  # type: ignore[union-attr]
    assert [c.name for c in store.clusters(include_removed=False)] == []
    store.close()


def test_bootstrap_tokens_are_single_use_and_expire(database_url: str) -> None:
    store = Store.open(database_url)
    store.upsert_cluster_spec("dev", "kubeconfig", None, {}, {})
    store.add_bootstrap_token("dev", "token-one-0123456789", timedelta(minutes=5))
    store.add_bootstrap_token("dev", "token-old-0123456789", timedelta(seconds=-1))
    assert not store.consume_bootstrap_token("other", "token-one-0123456789")
    assert store.consume_bootstrap_token("dev", "token-one-0123456789")
    assert not store.consume_bootstrap_token("dev", "token-one-0123456789")
    assert not store.consume_bootstrap_token("dev", "token-old-0123456789")
    store.close()


def test_status_events_desired_and_restart(database_url: str) -> None:
    store = Store.open(database_url)
    store.upsert_cluster_spec("dev", "kubeconfig", None, {}, {})
    assert store.put_desired("dev", "sha1", "sha256:a", 0, {"objects": [1]})
    assert not store.put_desired("dev", "sha2", "sha256:a", 0, {"objects": [1]})
    assert store.desired("dev").revision == "sha2"  # type: ignore[union-attr]
    store.record_status(
        "dev",
        agent_version="0.1",
        applied_revision="sha2",
        applied_digest="sha256:a",
        phase="Applied",
        cluster_health="Unreachable",
        cluster_health_detail={},
        objects=[ObjectStatusRecord(cluster="dev", key="apps/Deployment/web/web", health="Healthy", drifted=True)],
        errors=[],
        secret_versions={},
    )
    record = store.record_status(
        "dev",
        agent_version="0.1",
        applied_revision="sha2",
        applied_digest="sha256:a",
        phase="Applied",
        cluster_health="Degraded",
        cluster_health_detail={},
        objects=[],
        errors=["boom"],
        secret_versions={},
    )
    assert record is not None and record.unhealthy_since is not None and record.last_error == "boom"
    store.add_event("revision.applied", "applied abc", commit="abc", author="me")
    store.add_event("drift", "web scaled", cluster="dev", severity="warning")
    store.put_failover_group("web", "east", 3, "test")
    store.close()

    reopened = Store.open(database_url)  # a hub restart loses nothing
    assert [e.kind for e in reopened.events()] == ["revision.applied", "drift"]
    assert [e.kind for e in reopened.events(cluster="dev")] == ["drift"]
    assert reopened.failover_groups()["web"].epoch == 3
    assert reopened.desired_digests() == {"dev": ("sha2", "sha256:a")}
    reopened.close()
