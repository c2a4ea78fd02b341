"""A smart-HTTP git server for tests: real `git http-backend` behind a loopback HTTP server that wants a token.

Plain HTTP on 127.0.0.1: the client code path is the one https uses (an
`Authorization` header handed to git's curl transport); only TLS is left out.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.fixtures.ports import wait_for_port

TOKEN_USER = "x-access-token"


class GitHttpServer:
    def __init__(self, project_root: Path, port: int, token: str) -> None:
        self.project_root = project_root
        self.port = port
        self.token = token
        self.expected_auth = "Basic " + base64.b64encode(f"{TOKEN_USER}:{token}".encode()).decode()
        self.authorized_requests = 0
        self.refused_requests = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, repo: str = "origin.git") -> str:
        return f"http://127.0.0.1:{self.port}/{repo}"

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks: list[bytes] = []
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _serve(self) -> None:
                if self.headers.get("Authorization") != outer.expected_auth:
                    outer.refused_requests += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="fleet"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                outer.authorized_requests += 1
                body = self._body()
                path, _, query = self.path.partition("?")
                env = {
                    "PATH": os.environ["PATH"],
                    "GIT_PROJECT_ROOT": str(outer.project_root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_USER": TOKEN_USER,
                    "REMOTE_ADDR": "127.0.0.1",
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                }
                result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
                raw = result.stdout
                separator = b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n"
                head, _, payload = raw.partition(separator)
                status = 200
                headers: list[tuple[str, str]] = []
                for line in head.decode("latin-1").splitlines():
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        wait_for_port(self.port, what="git http server")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
