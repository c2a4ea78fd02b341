"""Local agent dispatch: the hub runs one agent per kubeconfig cluster on its own machine.

This is for laptops, demos and scale runs against kubesim; in production each
cluster runs its agent in-cluster (`fleet agent install`). The dispatcher
bootstraps each agent's credential with a one-time token, restarts agents
that exit (with exponential backoff), and stops agents whose cluster left the
inventory. Agents keep their identity and credential in their own state dir,
so a restarted hub finds them again.

Two modes: "local" runs each agent as its own `fleet agent run` process (as a
user would); "threads" runs agents as threads of the hub process, which is
much lighter for 100-cluster runs.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Protocol

from fleet.hub import datadir
from fleet.hub.core import Hub
from fleet.store.models import ClusterRecord

log = logging.getLogger("fleet.hub.dispatch")

CHECK_SECONDS = 2.0
STOP_TIMEOUT = 8.0  # agents exit within 5 s of SIGTERM (see fleet.cli.agent)
MAX_BACKOFF = 60.0
TOKEN_TTL = timedelta(minutes=30)


class AgentHandle(Protocol):
    def running(self) -> bool: ...
    def stop(self, timeout: float = 10.0) -> None: ...
    @property
    def exit_code(self) -> int | None: ...


@dataclass(frozen=True)
class AgentLaunch:
    cluster: str
    hub_url: str
    token_file: Path
    state_dir: Path
    kubeconfig: Path | None
    context: str
    log_file: Path


def _is_agent_for(pid: int, cluster: str) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"agent" in argv and b"run" in argv and cluster.encode() in argv


def reap_leftover(pid_file: Path, cluster: str) -> bool:
    """Stop an agent a previous hub process left running (it died without stopping its agents),
    so a cluster never has two local agents sharing one identity."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    if not _is_agent_for(pid, cluster):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and _is_agent_for(pid, cluster):
            time.sleep(0.1)
        if _is_agent_for(pid, cluster):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


class ProcessHandle:
    def __init__(self, launch: AgentLaunch) -> None:
        argv = [
            sys.executable, "-m", "fleet", "agent", "run",
            "--hub", launch.hub_url,
            "--cluster", launch.cluster,
            "--token-file", str(launch.token_file),
            "--state-dir", str(launch.state_dir),
            "--context", launch.context,
        ]  # fmt: skip
        if launch.kubeconfig is not None:
            argv += ["--kubeconfig", str(launch.kubeconfig)]
        self._log: IO[bytes] = open(launch.log_file, "ab")  # noqa: SIM115 - lives as long as the process
        self.pid_file = launch.state_dir.parent / "agent.pid"
        reap_leftover(self.pid_file, launch.cluster)
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid = self.process.pid
        self.pid_file.write_text(f"{self.pid}\n")

    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def exit_code(self) -> int | None:
        return self.process.poll()

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        self.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        self.pid_file.unlink(missing_ok=True)


class ThreadHandle:
    """An agent running as a thread of the hub process (the light mode for scale runs)."""

    def __init__(self, launch: AgentLaunch) -> None:
        from fleet.agent.hubclient import HubClient
        from fleet.agent.kube import Kube
        from fleet.agent.loop import AGENT_VERSION, Agent, AgentConfig

        self._stop = threading.Event()
        self._code: int | None = None
        kube = Kube.from_kubeconfig(str(launch.kubeconfig) if launch.kubeconfig else None, launch.context, pool_size=4)
        hub = HubClient(launch.hub_url, launch.cluster, agent_version=AGENT_VERSION)
        config = AgentConfig(
            cluster=launch.cluster, token_file=launch.token_file, state_dir=launch.state_dir, concurrency=2
        )
        self._agent = Agent(config, kube, hub)
        self._closers: list[Callable[[], None]] = [self._agent.close, hub.close, kube.close]
        self._thread = threading.Thread(target=self._run, name=f"agent-{launch.cluster}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._agent.run_forever(self._stop)
            self._code = 0
        except Exception:
            log.exception("in-process agent crashed")
            self._code = 1

    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def exit_code(self) -> int | None:
        return self._code

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        for close in self._closers:
            try:
                close()
            except Exception:
                log.debug("closing an in-process agent failed", exc_info=True)


@dataclass
class _Slot:
    handle: AgentHandle | None = None
    failures: int = 0
    next_start: float = 0.0
    token_issued_at: float | None = None
    starts: int = 0
    last_exit: int | None = None


@dataclass
class Dispatcher:
    hub: Hub
    mode: str = "local"  # "local" (processes) | "threads"
    clock: Callable[[], float] = time.monotonic
    slots: dict[str, _Slot] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def root(self) -> Path:
        return self.hub.data_dir / "agents"

    def _launch(self, record: ClusterRecord) -> AgentLaunch | None:
        provider = (record.spec or {}).get("provider") or {}
        if provider.get("type") != "kubeconfig":
            return None
        path = provider.get("path")
        kubeconfig = Path(path).expanduser() if path else self.hub.config.kubeconfig
        state_dir = self.root / record.name
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return AgentLaunch(
            cluster=record.name,
            hub_url=self.hub.config.url,
            token_file=state_dir / "bootstrap.token",
            state_dir=state_dir / "state",
            kubeconfig=kubeconfig,
            context=str(provider.get("context")),
            log_file=state_dir / "agent.log",
        )

    def _ensure_token(self, record: ClusterRecord, launch: AgentLaunch, slot: _Slot) -> None:
        """Hand the agent a fresh bootstrap token while the hub holds no credential for it."""
        if record.agent_credential_hash is not None:
            return
        now = self.clock()
        if slot.token_issued_at is not None and now - slot.token_issued_at < TOKEN_TTL.total_seconds() / 2:
            return
        token, _ = self.hub.issue_bootstrap_token(record.name, TOKEN_TTL)
        datadir.write_private(launch.token_file, token + "\n")
        slot.token_issued_at = now

    def _start(self, launch: AgentLaunch) -> AgentHandle:
        if self.mode == "threads":
            return ThreadHandle(launch)
        return ProcessHandle(launch)

    def reconcile(self) -> None:
        """Scheduled: make the running agents match the inventory."""
        with self.lock:
            wanted = {r.name: r for r in self.hub.store.clusters(include_removed=False)}
            for name in list(self.slots):
                if name not in wanted:
                    slot = self.slots.pop(name)
                    if slot.handle is not None:
                        slot.handle.stop()
                        self.hub.store.add_event(
                            "agent.stopped", f"local agent for {name} stopped: cluster left the inventory", cluster=name
                        )
            for name, record in sorted(wanted.items()):
                launch = self._launch(record)
                if launch is None:
                    continue
                slot = self.slots.setdefault(name, _Slot())
                self._ensure_token(record, launch, slot)
                if slot.handle is not None and slot.handle.running():
                    continue
                now = self.clock()
                if slot.handle is not None:  # it exited: back off, then restart
                    slot.last_exit = slot.handle.exit_code
                    slot.handle = None
                    slot.failures += 1
                    delay = min(MAX_BACKOFF, 2 ** (slot.failures - 1))
                    slot.next_start = now + delay
                    self.hub.store.add_event(
                        "agent.exited",
                        f"local agent for {name} exited with code {slot.last_exit}; restarting in {delay:.0f}s",
                        severity="warning",
                        cluster=name,
                    )
                if now < slot.next_start:
                    continue
                try:
                    slot.handle = self._start(launch)
                except Exception as exc:
                    log.exception("starting the agent for %s failed", name)
                    slot.failures += 1
                    slot.next_start = now + min(MAX_BACKOFF, 2 ** (slot.failures - 1))
                    self.hub.store.add_event(
                        "agent.start-failed", f"local agent for {name} did not start: {exc}", severity="error",
                        cluster=name,
                    )
                    continue
                slot.starts += 1
                if slot.starts > 1:
                    self.hub.store.add_event("agent.restarted", f"local agent for {name} restarted", cluster=name)

    def manages(self, cluster: str) -> bool:
        record = self.hub.store.cluster(cluster)
        return record is not None and self._launch(record) is not None

    def reset(self, cluster: str) -> None:
        """Forget an agent completely (identity, credential, cache) and start it afresh."""
        import shutil

        with self.lock:
            slot = self.slots.pop(cluster, None)
            if slot is not None and slot.handle is not None:
                slot.handle.stop()
            shutil.rmtree(self.root / cluster / "state", ignore_errors=True)
            (self.root / cluster / "bootstrap.token").unlink(missing_ok=True)
        self.reconcile()

    def healthy_reset(self) -> None:
        """Agents that have run for a while get their backoff forgiven."""
        with self.lock:
            for slot in self.slots.values():
                if slot.handle is not None and slot.handle.running() and slot.failures:
                    slot.failures = max(0, slot.failures - 1)

    def stop_all(self) -> None:
        """Signal every agent first, then wait: N agents stop in the time of one."""
        with self.lock:
            handles = [slot.handle for slot in self.slots.values() if slot.handle is not None]
            for handle in handles:
                if isinstance(handle, ProcessHandle):
                    handle.terminate()
            for handle in handles:
                handle.stop()
            self.slots.clear()

    def pids(self) -> dict[str, int]:
        with self.lock:
            return {
                name: slot.handle.pid
                for name, slot in self.slots.items()
                if isinstance(slot.handle, ProcessHandle) and slot.handle.running()
            }


def install_local_dispatch(daemon: object, mode: str = "local") -> Dispatcher:
    from fleet.hub.daemon import HubDaemon

    assert isinstance(daemon, HubDaemon)
    dispatcher = Dispatcher(daemon.hub, mode=mode)

    def install(d: HubDaemon) -> None:
        d.scheduler.add_job(dispatcher.reconcile, "interval", seconds=CHECK_SECONDS, id="dispatch")
        d.scheduler.add_job(dispatcher.healthy_reset, "interval", seconds=120, id="dispatch-forgive")

    daemon.add_job_installer(install)
    daemon.add_shutdown_hook(dispatcher.stop_all)
    daemon.add_demote_hook(dispatcher.stop_all)  # the new leader's dispatcher takes over
    daemon.dispatcher = dispatcher
    daemon.hub.dispatcher = dispatcher
    return dispatcher
