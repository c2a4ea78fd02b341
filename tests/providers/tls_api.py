"""A small HTTPS API server on loopback that answers `/version` like kube-apiserver.

It checks what the provider code must get right against a real TLS stack:
the server certificate chains to a test CA, and a request is authenticated
either by bearer token or by a client certificate signed by the client CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0", "gitCommit": "0" * 40, "gitTreeState": "clean",
    "buildDate": "2024-12-11T18:04:20Z", "goVersion": "go1.23.3", "compiler": "gc", "platform": "linux/amd64",
}


@dataclass
class Pki:
    """A CA and the ability to issue leaf certificates from it."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, name: str) -> Pki:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name: str, server: bool) -> tuple[bytes, bytes]:
        """A leaf certificate and key (both PEM) for a server (127.0.0.1/localhost) or a client."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ), critical=False)
        )
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem


@dataclass
class TlsApiServer:
    ca: Pki
    client_ca: Pki
    valid_tokens: set[str] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)  # "token" | "cert:<CN>" | "anonymous", per request
    url: str = ""

    def client_cert(self, common_name: str = "fleet-hub") -> tuple[bytes, bytes]:
        return self.client_ca.issue(common_name, server=False)


def _handler(api: TlsApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            who = "anonymous"
            peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
            authorization = self.headers.get("Authorization", "")
            if authorization.startswith("Bearer ") and authorization.removeprefix("Bearer ") in api.valid_tokens:
                who = "token"
            elif peer:
                subject: Any = peer.get("subject", ())
                names = [value for rdn in subject for key, value in rdn if key == "commonName"]
                who = f"cert:{names[0] if names else '?'}"
            api.seen.append(who)
            if who == "anonymous":
                self._reply(401, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
                return
            if self.path.split("?")[0].rstrip("/") != "/version":  # the Python client asks for /version/
                self._reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})
                return
            self._reply(200, VERSION)

    return Handler


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Handshake in the worker thread so a client that rejects our certificate cannot stall the server.
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


def serve_tls_api() -> Iterator[TlsApiServer]:
    api = TlsApiServer(ca=Pki.create("test-cluster-ca"), client_ca=Pki.create("test-client-ca"))
    cert_pem, key_pem = api.ca.issue("kube-apiserver", server=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "tls.crt").write_bytes(cert_pem)
        (Path(scratch) / "tls.key").write_bytes(key_pem)
        context.load_cert_chain(Path(scratch) / "tls.crt", Path(scratch) / "tls.key")
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(cadata=api.client_ca.pem.decode())
    server = _TlsServer(context, _handler(api))
    api.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="tls-api", daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
