"""Webhook connections: kept alive while the receiver allows it, and TLS checked against the
URL's host while connecting to the pinned address.

The receivers are real asyncio servers on loopback; the TLS one has a certificate made
here for `hooks.example`, which the connections are told to trust.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from uuid import uuid4

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from service.subscribers.ssrf import Pinned
from service.subscribers.webhook_connections import Connections

NAME = "hooks.example"
REQUEST = b"POST /hooks?x=1 HTTP/1.1\r\nhost: hooks.example\r\ncontent-length: 2\r\n\r\n"


class Receiver:
    """Answers every request with `answer`; notes connections made and requests read."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                self.requests.append(head + await reader.readexactly(length))
                writer.write(self.answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


Serve = Callable[..., Awaitable[tuple[Receiver, int]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(answer: bytes, tls: ssl.SSLContext | None = None) -> tuple[Receiver, int]:
        receiver = Receiver(answer)
        server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        return receiver, server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()


def target(port: int, *, tls: bool = False, server_name: str | None = None) -> Pinned:
    scheme = "https" if tls else "http"
    url = f"{scheme}://127.0.0.1:{port}/hooks?x=1"
    return Pinned(url, NAME, server_name, "127.0.0.1", port, tls, "/hooks?x=1")


async def test_a_connection_is_kept_alive_while_the_receiver_allows(serve: Serve) -> None:
    receiver, port = await serve(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    connections, subscription = Connections(), uuid4()
    try:
        statuses = [
            await connections.post(subscription, target(port), REQUEST, b"{}") for _ in range(3)
        ]
    finally:
        await connections.close()
    assert statuses == [200, 200, 200]
    assert receiver.connections == 1
    assert receiver.requests == [REQUEST + b"{}"] * 3


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n" + b"x" * 5000,
    ],
    ids=["close", "http-1.0", "chunked", "long-body"],
)
async def test_a_connection_the_answer_ends_is_not_reused(serve: Serve, answer: bytes) -> None:
    receiver, port = await serve(answer)
    connections, subscription = Connections(), uuid4()
    try:
        for _ in range(2):
            assert await connections.post(subscription, target(port), REQUEST, b"{}") == 200
    finally:
        await connections.close()
    assert receiver.connections == 2


async def test_an_informational_answer_is_passed_over(serve: Serve) -> None:
    _, port = await serve(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 410 Gone\r\ncontent-length: 0\r\n\r\n"
    )
    connections = Connections()
    try:
        assert await connections.post(uuid4(), target(port), REQUEST, b"{}") == 410
    finally:
        await connections.close()


def certificate(directory: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for `name`, and a client one trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_tls_goes_to_the_pinned_address_and_checks_the_urls_host(
    serve: Serve, tmp_path: Path
) -> None:
    server_tls, client_tls = certificate(tmp_path, NAME)
    receiver, port = await serve(b"HTTP/1.1 204 No Content\r\n\r\n", server_tls)
    connections = Connections(client_tls)  # trusts the certificate made above, as a CA would
    try:
        assert (
            await connections.post(
                uuid4(), target(port, tls=True, server_name=NAME), REQUEST, b"{}"
            )
            == 204
        )
        # A certificate that does not name the host the URL had is refused.
        with pytest.raises(ssl.SSLCertVerificationError):
            await connections.post(
                uuid4(), target(port, tls=True, server_name="other.example"), REQUEST, b"{}"
            )
    finally:
        await connections.close()
    assert receiver.requests == [REQUEST + b"{}"]
