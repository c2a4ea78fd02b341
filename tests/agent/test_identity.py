from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from fleet.agent.identity import AgentState, FileStateStore, read_token_file, token_is_unused
from fleet.secrets.envelope import recipient_of


def test_file_store_round_trip_is_private(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state")
    assert store.load() is None
    state = AgentState.new()
    state.credential, state.max_epoch = "cred-secret", 4
    store.save(state)
    mode = stat.S_IMODE(os.stat(store.path).st_mode)
    assert mode == 0o600
    loaded = store.load()
    assert loaded == state
    assert recipient_of(loaded.identity) == loaded.recipient
    assert loaded.recipient.startswith("age1")


def test_state_repr_hides_private_key_and_credential() -> None:
    state = AgentState.new()
    state.credential = "cred-secret"
    text = repr(state)
    assert state.identity not in text and "cred-secret" not in text and state.recipient in text


def test_token_freshness(tmp_path: Path) -> None:
    path = tmp_path / "token"
    assert read_token_file(path) is None
    path.write_text("tok-1-aaaaaaaaaaaaaaaa\n")
    state = AgentState.new()
    token = read_token_file(path)
    assert token is not None and token.value == "tok-1-aaaaaaaaaaaaaaaa"
    assert token_is_unused(state, token)
    state.token_mtime_ns, state.token_sha256 = token.mtime_ns, token.sha256
    assert not token_is_unused(state, token)
    time.sleep(0.01)
    path.write_text("tok-1-aaaaaaaaaaaaaaaa\n")  # same (spent) token rewritten: still used
    again = read_token_file(path)
    assert again is not None and not token_is_unused(state, again)
    path.write_text("tok-2-bbbbbbbbbbbbbbbb\n")
    os.utime(path, ns=(token.mtime_ns + 10**9, token.mtime_ns + 10**9))
    fresh = read_token_file(path)
    assert fresh is not None and token_is_unused(state, fresh)
