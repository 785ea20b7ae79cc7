"""POST /v1/incidents:batch through a real server: past the line limit, answered early."""

from __future__ import annotations

import socket

from tests.servers import serving


def status_line(sock: socket.socket) -> bytes:
    """The first line of the answer on `sock` (raises TimeoutError if none comes)."""
    answer = b""
    while b"\r\n" not in answer:
        received = sock.recv(4096)
        assert received, "the server closed the connection without answering"
        answer += received
    return answer.split(b"\r\n")[0]


async def test_a_batch_past_the_line_limit_is_answered_before_the_rest_is_sent(
    dsn: str, admin_key: str
) -> None:
    announced = 32 << 20  # a body of 32 MiB of newlines, of which 64 KiB is ever sent
    head = (
        "POST /v1/incidents:batch HTTP/1.1\r\nHost: legation\r\n"
        f"Authorization: Bearer {admin_key}\r\nContent-Type: application/x-ndjson\r\n"
        f"Content-Length: {announced}\r\n\r\n"
    ).encode()
    with serving(dsn, rate_limit="0") as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head + b"\n" * (64 << 10))
            assert status_line(sock) == b"HTTP/1.1 422 Unprocessable Entity"
