"""Run a git process under a deadline and a size budget, and kill its whole process group past either.

git fetch spawns helpers (ssh, git-remote-https, upload-pack); killing only git
would leave them holding our pipes, so the child runs in its own session and
the group is killed together.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

STDERR_TAIL_BYTES = 8 * 1024
POLL_SECONDS = 0.05

StopReason = Literal["timeout", "size"]


@dataclass(frozen=True)
class Supervised:
    returncode: int
    stderr_tail: str  # last few KiB only: a hostile remote can print without end
    stopped: StopReason | None
    observed_bytes: int
    elapsed: float


class _TailReader(threading.Thread):
    """Drains a pipe, keeping only its last `limit` bytes."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        self._limit = limit
        self._tail = bytearray()

    def run(self) -> None:
        fd = self._stream.fileno()
        while chunk := os.read(fd, 65536):
            self._tail += chunk
            if len(self._tail) > self._limit:
                del self._tail[: len(self._tail) - self._limit]

    def text(self) -> str:
        return bytes(self._tail).decode("utf-8", errors="replace")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # Only signal the group while its leader is unreaped: until then its id cannot be reused.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_supervised(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    max_bytes: int | None = None,
    measure: Callable[[], int] | None = None,
) -> Supervised:
    """Run `argv`; stop it when `timeout` passes or `measure()` exceeds `max_bytes`."""
    started = time.monotonic()
    deadline = started + timeout
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stderr is not None
    reader = _TailReader(proc.stderr, STDERR_TAIL_BYTES)
    reader.start()
    stopped: StopReason | None = None
    observed = 0
    try:
        while True:
            try:
                proc.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            if measure is not None and max_bytes is not None:
                observed = measure()
                if observed > max_bytes:
                    stopped = "size"
                    break
            if time.monotonic() >= deadline:
                stopped = "timeout"
                break
    finally:
        # Also when we are interrupted ourselves: never leave a fetch running.
        _stop(proc)
        reader.join(timeout=5)
        proc.stderr.close()
    return Supervised(
        returncode=proc.returncode,
        stderr_tail=reader.text(),
        stopped=stopped,
        observed_bytes=observed,
        elapsed=time.monotonic() - started,
    )
