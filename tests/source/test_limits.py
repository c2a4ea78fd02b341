"""A hostile or broken remote: fetches are killed at the deadline and past the size budget, and the cache survives."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

import fleet.source.process as source_process
from fleet.source import FetchTimeout, FetchTooLarge, SourceError
from tests.fixtures.gitrepo import FleetRepo
from tests.source.conftest import SourceFactory, sleeping_ssh, throttled_ssh

MiB = 1024 * 1024


def _gone(pid: int) -> bool:
    """The process no longer runs (absent, or a zombie waiting for a reaper)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines())


def _assert_cache_clean(cache: Path) -> None:
    leftovers = [p.name for p in (cache / "objects" / "pack").glob("tmp_*")]
    assert leftovers == []
    assert not (cache / "refs" / "fleet" / "incoming").exists()
    fsck = subprocess.run(["git", "-C", str(cache), "fsck", "--no-dangling"], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr


def test_http_remote_that_never_answers_is_killed_at_the_deadline(
    make_source: SourceFactory, hanging_port: int
) -> None:
    source = make_source(f"http://127.0.0.1:{hanging_port}/fleet.git", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(FetchTimeout, match=r"timed out after 1s"):
        source.fetch()
    assert time.monotonic() - started < 3.0


def test_ssh_remote_that_hangs_is_killed_with_its_helpers(
    make_source: SourceFactory, fake_ssh_dir: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "ssh.pid"
    sleeping_ssh(fake_ssh_dir, pid_file)
    source = make_source("ssh://git@fleet.invalid/fleet.git", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        source.fetch()
    assert time.monotonic() - started < 3.0
    hung = int(pid_file.read_text())
    deadline = time.monotonic() + 2
    while not _gone(hung) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(hung), "the hanging ssh helper outlived the fetch"


@pytest.mark.parametrize(
    "watch_interval", [None, 30.0], ids=["watched-while-streaming", "checked-after-transfer"]
)
def test_large_blob_over_the_limit_is_refused_and_the_cache_stays_usable(
    origin: FleetRepo,
    make_source: SourceFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    watch_interval: float | None,
) -> None:
    if watch_interval is not None:
        # The transfer completes before the watcher looks: the check after the transfer must catch it.
        monkeypatch.setattr(source_process, "POLL_SECONDS", watch_interval)
    source = make_source(origin.url, max_bytes=1 * MiB)
    good = source.fetch().sha
    origin.commit({"apps/big/blob.bin": os.urandom(5 * MiB)}, message="big")

    with pytest.raises(FetchTooLarge, match="limit of 1048576 bytes"):
        source.fetch()

    assert source.head() == good
    _assert_cache_clean(source.repo_path)
    store = sum(p.stat().st_size for p in (source.repo_path / "objects").rglob("*") if p.is_file())
    assert store < 1 * MiB, "the refused objects were kept"

    # Usable: the remote drops the blob and the next fetch works with the same limit.
    origin.commit({"apps/big/blob.bin": None}, message="drop big")
    origin.reset_hard(good)
    fixed = origin.commit({"apps/small.yaml": "x: 1\n"}, message="small", push=False)
    origin.push(force=True)
    assert source.fetch().sha == fixed
    assert source.checkout(fixed, tmp_path / "tree").joinpath("apps/small.yaml").read_text() == "x: 1\n"


def test_slow_large_transfer_is_stopped_while_it_streams(
    origin: FleetRepo, make_source: SourceFactory, fake_ssh_dir: Path
) -> None:
    origin.commit({"blob.bin": os.urandom(8 * MiB)}, message="big")
    # About 1.6 MB/s: the full transfer would take ~5 s; the watcher must stop it near 1 MiB.
    throttled_ssh(fake_ssh_dir, bytes_per_chunk=32 * 1024, pause=0.02)
    source = make_source(f"ssh://git@fleet.invalid{origin.remote_path}", max_bytes=1 * MiB, timeout=20)
    started = time.monotonic()
    with pytest.raises(FetchTooLarge, match="stopped"):
        source.fetch()
    # The whole transfer would take over 5 s at this rate.
    assert time.monotonic() - started < 4.0
    assert source.head() is None
    _assert_cache_clean(source.repo_path)


def test_leftovers_of_a_killed_fetch_are_cleaned_before_the_next_one(
    origin: FleetRepo, make_source: SourceFactory
) -> None:
    source = make_source(origin.url)
    good = source.fetch().sha
    pack_dir = source.repo_path / "objects" / "pack"
    (pack_dir / "tmp_pack_abc123").write_bytes(b"partial")
    (source.repo_path / "refs" / "remotes" / "origin" / "main.lock").write_text("x")
    newer = origin.commit({"b.yaml": "b\n"})
    assert source.fetch().sha == newer
    assert source.is_ancestor(good, newer)
    _assert_cache_clean(source.repo_path)


def test_checkout_refuses_a_tree_larger_than_the_limit(
    origin: FleetRepo, make_source: SourceFactory, tmp_path: Path
) -> None:
    # A tree of zeros compresses to almost nothing but would expand on disk.
    origin.commit({"zeros.bin": bytes(4 * MiB)}, message="zeros")
    source = make_source(origin.url, max_bytes=1 * MiB)
    head = source.fetch().sha
    with pytest.raises(FetchTooLarge, match="bytes of files"):
        source.checkout(head, tmp_path / "tree")
    assert not (tmp_path / "tree").exists()


def test_unsupported_transports_are_refused_before_running_git(make_source: SourceFactory) -> None:
    with pytest.raises(SourceError, match="not allowed"):
        make_source("ext::sh -c 'sleep 30'")
    with pytest.raises(SourceError, match="unsupported URL scheme"):
        make_source("ftp://example.test/fleet.git")
    with pytest.raises(SourceError, match="must not start with '-'"):
        make_source("--upload-pack=touch /tmp/pwned")
