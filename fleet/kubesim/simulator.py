"""Public API: a Simulator runs many simulated clusters on one background event loop.

Each cluster gets its own uvicorn server on its own loopback port, so stopping one
cluster's listener refuses connections for that cluster only.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from fleet.kubesim import kubeconfig as kubeconfig_module
from fleet.kubesim import tls as tls_module
from fleet.kubesim.admin import AdminApp
from fleet.kubesim.cluster import ClusterState
from fleet.kubesim.faults import Counters, Faults
from fleet.kubesim.objects import deep_copy
from fleet.kubesim.server import ClusterApp

T = TypeVar("T")
START_TIMEOUT = 30.0


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.new_event_loop()


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class _Listener:
    """One uvicorn server on one pre-bound socket, started and stopped without its own main loop."""

    def __init__(self, app: Any, port: int, ssl_files: tuple[str, str] | None) -> None:
        self.app = app
        self.port = port
        self.ssl_files = ssl_files
        self.server: uvicorn.Server | None = None
        self.sock: socket.socket | None = None

    async def start(self) -> int:
        self.sock = _bind(self.port)
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="httptools",
            proxy_headers=False,
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=1,
            ssl_certfile=self.ssl_files[0] if self.ssl_files else None,
            ssl_keyfile=self.ssl_files[1] if self.ssl_files else None,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[self.sock])
        server.server_state.default_headers = list(config.encoded_headers)
        self.server = server
        return self.port

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.force_exit = True
            await server.shutdown(sockets=[self.sock] if self.sock else None)
        self.sock = None

    @property
    def running(self) -> bool:
        return self.server is not None


class SimCluster:
    """One simulated cluster. Methods are safe to call from any thread."""

    def __init__(self, simulator: Simulator, name: str, port: int | None, state: ClusterState) -> None:
        self._simulator = simulator
        self.name = name
        self.token = secrets.token_urlsafe(24)
        self.state = state
        self._counters = Counters()
        self.faults = Faults(self._set_down, self._set_node_ready, self._set_stuck)
        self.app = ClusterApp(state, self.token, self.faults, self._counters)
        self._listener = _Listener(self.app, port or 0, simulator._ssl_files)
        self.port = port or 0

    @property
    def url(self) -> str:
        scheme = "https" if self._simulator.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def ca_pem(self) -> bytes | None:
        return self._simulator.ca_pem

    def counters(self) -> dict[str, int]:
        """Requests per verb (get, list, watch, create, update, patch, delete), `total` and `discovery`."""
        return self._counters.snapshot()

    def kubeconfig(self) -> dict[str, Any]:
        """A kubeconfig holding only this cluster (context name == cluster name)."""
        entry = kubeconfig_module.ClusterEntry(self.name, self.url, self.token, self.ca_pem)
        return kubeconfig_module.build([entry])

    def reset_counters(self) -> None:
        self._counters.reset()

    def wipe(self) -> None:
        """Lose all objects and CRDs, like a rebuilt cluster; built-in namespaces and nodes come back."""

        def wipe_now() -> None:
            self.app.stop_watches()
            self.state.wipe()

        self._simulator._on_loop(wipe_now)

    def get_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """Read an object directly (not counted as a request); None when absent or the kind is unknown."""
        resource_type = self.state.registry.by_kind(api_version, kind)
        if resource_type is None:
            return None
        obj = self.state.store.get(resource_type.storage_key, namespace or "" if resource_type.namespaced else "", name)
        if obj is None:
            return None
        return dict(deep_copy(self.state.as_version(resource_type, obj)))

    # faults (run on the loop) ------------------------------------------------------------------------
    async def _start(self) -> None:
        self.port = await self._listener.start()
        self._listener.port = self.port

    async def _stop(self) -> None:
        self.app.stop_watches()
        await self._listener.stop()

    async def set_down_async(self, down: bool) -> None:
        if down and self._listener.running:
            self.faults.down = True
            await self._stop()
        elif not down and not self._listener.running:
            await self._start()
            self.faults.down = False

    def _set_down(self, down: bool) -> None:
        self._simulator._run(self.set_down_async(down))

    def _set_node_ready(self, node_name: str, ready: bool) -> None:
        def toggle() -> None:
            if not self.state.controllers.set_node_ready(node_name, ready):
                raise KeyError(f"node {node_name!r} not found in cluster {self.name}")

        self._simulator._on_loop(toggle)

    def _set_stuck(self, kind: str, namespace: str, name: str, stuck: bool) -> None:
        def toggle() -> None:
            key = (kind, namespace, name)
            if stuck:
                self.state.stuck.add(key)
            else:
                self.state.stuck.discard(key)
            self.state.controllers.refresh(kind, namespace, name)

        self._simulator._on_loop(toggle)


class Simulator:
    def __init__(
        self,
        tls: bool = True,
        controller_delay: float = 0.5,
        nodes_per_cluster: int = 3,
        watch_history: int = 1000,
    ) -> None:
        self.tls = tls
        self.controller_delay = controller_delay
        self.nodes_per_cluster = nodes_per_cluster
        self.watch_history = watch_history
        self.clusters: dict[str, SimCluster] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir = Path(tempfile.mkdtemp(prefix="kubesim-"))
        self.ca_pem: bytes | None = None
        self._ssl_files: tuple[str, str] | None = None
        if tls:
            certificates = tls_module.generate()
            self.ca_pem = certificates.ca_pem
            cert_path, key_path = self._tmpdir / "server.crt", self._tmpdir / "server.key"
            cert_path.write_bytes(certificates.cert_pem)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(certificates.key_pem)
            self._ssl_files = (str(cert_path), str(key_path))
        self.admin_token = secrets.token_urlsafe(24)
        self._admin: _Listener | None = None
        self.admin_url: str | None = None

    # loop plumbing ---------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._loop is not None

    def _in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float = START_TIMEOUT) -> T:
        """Run a coroutine on the simulator loop and wait for it (from any other thread)."""
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the simulator is not started")
        if self._in_loop_thread():
            raise RuntimeError("blocking simulator call made from the simulator's own loop")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _on_loop(self, action: Callable[[], T]) -> T:
        """Call a function on the loop thread (directly when not started yet or already there)."""
        if self._loop is None or self._in_loop_thread():
            return action()

        async def call() -> T:
            return action()

        return self._run(call())

    # lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> Simulator:
        if self._loop is not None:
            return self
        loop = _new_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="kubesim", daemon=True)
        self._thread.start()
        ready.wait(START_TIMEOUT)
        self._loop = loop
        for cluster in list(self.clusters.values()):
            self._run(cluster._start())
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            return

        async def shutdown() -> None:
            await asyncio.gather(*(c._stop() for c in self.clusters.values()), return_exceptions=True)
            for cluster in self.clusters.values():
                cluster.state.controllers.cancel_all()
            if self._admin is not None:
                await self._admin.stop()

        try:
            self._run(shutdown())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(START_TIMEOUT)
            loop.close()
            self._loop = None
            self._thread = None
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # clusters ----------------------------------------------------------------------------------------------
    def add_cluster(self, name: str, port: int | None = None) -> SimCluster:
        if name in self.clusters:
            raise ValueError(f"cluster {name!r} already exists")

        def build() -> SimCluster:
            state = ClusterState(name, self.controller_delay, self.nodes_per_cluster, self.watch_history)
            return SimCluster(self, name, port, state)

        cluster = self._on_loop(build)
        self.clusters[name] = cluster
        if self._loop is not None:
            try:
                self._run(cluster._start())
            except BaseException:
                del self.clusters[name]
                raise
        return cluster

    def remove_cluster(self, name: str) -> None:
        cluster = self.clusters.pop(name)
        if self._loop is not None:

            async def remove() -> None:
                await cluster._stop()
                cluster.state.controllers.cancel_all()

            self._run(remove())

    # kubeconfig and admin --------------------------------------------------------------------------------------
    def kubeconfig(self) -> dict[str, Any]:
        entries = [
            kubeconfig_module.ClusterEntry(c.name, c.url, c.token, c.ca_pem) for c in self.clusters.values()
        ]
        return kubeconfig_module.build(entries, self.admin_url, self.admin_token if self.admin_url else None)

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> Path:
        return kubeconfig_module.write(self.kubeconfig(), path)

    def start_admin(self, port: int | None = None) -> str:
        """Serve the admin endpoint (plain HTTP on loopback) for faults and counters from other processes."""
        if self.admin_url is not None:
            return self.admin_url
        if self._loop is None:
            raise RuntimeError("start the simulator first")
        listener = _Listener(AdminApp(self), port or 0, None)
        bound = self._run(listener.start())
        self._admin = listener
        self.admin_url = f"http://127.0.0.1:{bound}"
        return self.admin_url
