"""The hub process: the API under uvicorn plus apscheduler jobs (Git poll, registration refresh, ...)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import IO, Any

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi import FastAPI

from fleet.hub import datadir
from fleet.hub.app import create_app
from fleet.hub.core import Hub
from fleet.hub.leader import Leadership, leadership_for, lock_data_dir

log = logging.getLogger("fleet.hub")

REGISTRATION_REFRESH_SECONDS = 300


LEADERSHIP_CHECK_SECONDS = 2.0


class HubDaemon:
    """One hub replica. Every replica serves the API; the jobs on `scheduler` run on the leader only
    (see fleet.hub.leader), while `replica_jobs` run everywhere (leadership, following the revision
    in force, Vault token renewal)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}
        self.scheduler = BackgroundScheduler(timezone=UTC, job_defaults=defaults)
        self.replica_jobs = BackgroundScheduler(timezone=UTC, job_defaults=defaults)
        self.leadership: Leadership = leadership_for(hub.store.engine)
        self.leading = False
        self._demote_hooks: list[Callable[[], None]] = []
        self._data_dir_lock: IO[str] | None = None
        self.app: FastAPI = create_app(hub, trigger_poll=self.trigger_poll)
        self._poll_interval = 0
        self._server: uvicorn.Server | None = None
        self._extra_jobs: list[Callable[[HubDaemon], None]] = []
        self._shutdown_hooks: list[Callable[[], None]] = []
        self.dispatcher: Any = None
        from fleet.hub.failover import install_failover

        self.failover = install_failover(self)
        from fleet.hub.rotation import install_rotation

        self.rotation = install_rotation(self)

    # ------------------------------------------------------------ jobs

    def add_job_installer(self, installer: Callable[[HubDaemon], None]) -> None:
        """Features (dispatch, failover, secrets) register their scheduled jobs through this."""
        self._extra_jobs.append(installer)

    def add_shutdown_hook(self, hook: Callable[[], None]) -> None:
        self._shutdown_hooks.append(hook)

    def add_demote_hook(self, hook: Callable[[], None]) -> None:
        """Called when this replica stops leading (e.g. local dispatch stops its agents)."""
        self._demote_hooks.append(hook)

    def check_leadership(self) -> None:
        leading = self.leadership.check()
        if leading and not self.leading:
            self.leading = True
            self.hub.reconciler.restore()
            self.failover.watch_from_now()
            self.hub.store.add_event("hub.leader", f"hub replica {self.hub.config.url} now runs the scheduled jobs")
            log.info("this replica now leads")
            self.scheduler.resume()
        elif not leading and self.leading:
            self.leading = False
            self.scheduler.pause()
            log.warning("this replica lost leadership; scheduled jobs paused")
            for hook in self._demote_hooks:
                try:
                    hook()
                except Exception:
                    log.exception("demote hook failed")

    def follow(self) -> None:
        """Followers keep the revision in force checked out, to serve sealed secrets from it."""
        if self.leading:
            return
        current = self.hub.reconciler.current
        in_force = self.hub.store.source_state().current_sha
        if in_force and (current is None or current.sha != in_force):
            self.hub.reconciler.restore()

    def poll(self) -> None:
        try:
            result = self.hub.reconciler.poll()
            if result.action not in ("unchanged",):
                first_line = result.message.splitlines()[0] if result.message else ""
                log.info("git poll: %s %s %s", result.action, (result.sha or "")[:12], first_line)
        except Exception:
            log.exception("git poll failed")
        self._reschedule_poll()

    def _reschedule_poll(self) -> None:
        interval = self.hub.poll_interval
        if interval != self._poll_interval and self.scheduler.get_job("git-poll") is not None:
            self._poll_interval = interval
            self.scheduler.reschedule_job("git-poll", trigger="interval", seconds=interval)

    def trigger_poll(self) -> None:
        if self.scheduler.get_job("git-poll") is not None:
            self.scheduler.modify_job("git-poll", next_run_time=datetime.now(UTC))

    def refresh_registrations(self) -> None:
        current = self.hub.reconciler.current
        if current is not None:
            self.hub.registrar.refresh(current.inventory)

    def start_background(self) -> None:
        """Restore the revision in force and start the scheduled jobs (not the HTTP server)."""
        self._data_dir_lock = lock_data_dir(self.hub.data_dir)
        self.hub.is_leader = lambda: self.leading
        self.hub.reconciler.restore()
        self._poll_interval = self.hub.poll_interval
        self.scheduler.add_job(
            self.poll, "interval", seconds=self._poll_interval, id="git-poll", next_run_time=datetime.now(UTC)
        )
        self.scheduler.add_job(
            self.refresh_registrations, "interval", seconds=REGISTRATION_REFRESH_SECONDS, id="registration-refresh"
        )
        self.scheduler.add_job(self.hub.store.purge_expired_tokens, "interval", hours=1, id="token-purge")
        for install in self._extra_jobs:
            install(self)
        self.scheduler.start(paused=True)
        self.check_leadership()
        self.replica_jobs.add_job(self.check_leadership, "interval", seconds=LEADERSHIP_CHECK_SECONDS, id="leadership")
        self.replica_jobs.add_job(self.follow, "interval", seconds=LEADERSHIP_CHECK_SECONDS, id="follow")
        self.replica_jobs.add_job(self.hub.secrets.maintain, "interval", seconds=30, id="vault-token-renewal")
        self.replica_jobs.start()

    def stop_background(self) -> None:
        if self.replica_jobs.running:
            self.replica_jobs.shutdown(wait=True)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.leadership.close()
        if self._data_dir_lock is not None:
            self._data_dir_lock.close()
            self._data_dir_lock = None
        for hook in self._shutdown_hooks:
            try:
                hook()
            except Exception:
                log.exception("shutdown hook failed")

    # ------------------------------------------------------------ serving

    def serve(self) -> None:
        """Run until SIGINT/SIGTERM, then stop the jobs and any local agents.

        uvicorn runs in a thread: on the main thread it would re-raise the signal after its own
        shutdown, killing the process before the hub could stop its agents.
        """
        host, _, port = self.hub.config.listen.rpartition(":")
        config = uvicorn.Config(
            self.app,
            host=host or "127.0.0.1",
            port=int(port),
            log_level="warning",
            access_log=False,
            limit_concurrency=500,
            timeout_keep_alive=30,
            ssl_certfile=str(self.hub.config.tls_cert) if self.hub.config.tls_cert else None,
            ssl_keyfile=str(self.hub.config.tls_key) if self.hub.config.tls_key else None,
        )
        self._server = uvicorn.Server(config)
        self.start_background()
        datadir.write_private(self.hub.data_dir / datadir.HUB_URL_FILE, self.hub.config.url + "\n")
        stop = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("stopping on %s", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        api = threading.Thread(target=self._server.run, name="hub-api", daemon=True)
        api.start()
        try:
            while not stop.is_set() and api.is_alive():
                stop.wait(0.5)
        finally:
            self._server.should_exit = True
            api.join(30)
            self.stop_background()
            self.hub.close()
        if not self._server.started:
            raise SystemExit(f"the hub API could not listen on {self.hub.config.listen}")

    def request_stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
