"""HTTP load: wrk when it is on PATH, else a small keep-alive asyncio client (POST only).

GETs are loaded by wrk alone (`wrk_get`, and `wrk_pages` for paging the log).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import uvloop

from bench.common import AUTH, percentile

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Post:
    """One request repeated for the whole run."""

    url: str
    body: bytes
    expect: int = 201


@dataclass(frozen=True)
class Outcome:
    requests_per_s: float
    p99_ms: float | None


def generator_name(choice: str) -> str:
    """'wrk' or 'python' for `choice` in auto/wrk/python."""
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    return choice


def check_once(post: Post) -> None:
    """Fail early, with the server's answer, if the request is not what the bench expects."""
    request = urllib.request.Request(
        post.url,
        data=post.body,
        headers={"Content-Type": "application/json", **AUTH},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != post.expect:
            raise RuntimeError(f"POST {post.url}: {response.status} {response.read()[:500]!r}")


def run(generator: str, post: Post, connections: int, seconds: float) -> Outcome:
    """Requests/s and p99 of `connections` clients posting back to back for `seconds`."""
    if generator == "wrk":
        return _wrk(post, connections, seconds)
    # uvloop keeps the fallback client cheaper, as the servers share its 2 cores.
    return uvloop.run(_python(post, connections, seconds))


def _lua(post: Post) -> str:
    # A long bracket needs no escaping of the JSON's quotes or backslashes.
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        + "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in AUTH.items())
        + f"wrk.body = [==[{post.body.decode()}]==]\n"
    )


def _wrk_argv(connections: int, seconds: float) -> list[str]:
    # One thread: 16 connections at a few thousand requests/s do not need more,
    # and every cycle wrk spends is taken from the server and PostgreSQL.
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s"]
    return [*argv, "--latency"]


def _wrk(post: Post, connections: int, seconds: float) -> Outcome:
    return _wrk_script(_lua(post), post.url, connections, seconds)


def _wrk_script(lua: str, url: str, connections: int, seconds: float) -> Outcome:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(lua)
        script.flush()
        argv = [*_wrk_argv(connections, seconds), "-s", script.name, url]
        output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return _parse_wrk(output)


def wrk_get(url: str, connections: int, seconds: float) -> Outcome:
    """Requests/s and p99 of wrk GETting `url` back to back (no script: GET is its default)."""
    argv = [*_wrk_argv(connections, seconds), url]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return _parse_wrk(output)


@dataclass(frozen=True)
class Pages:
    """`url`?after=...&limit=`limit` over a log of `pages` full pages."""

    url: str
    pages: int
    limit: int


def _pages_lua(pages: Pages) -> str:
    # Each request asks for the page after the previous one and wraps at the end,
    # so the connections together sweep the log as a reader catching up would.
    # `wrk.path` is the path of the URL wrk was given.
    return (
        "local page = -1\n"
        "request = function()\n"
        f"  page = (page + 1) % {pages.pages}\n"
        f'  local query = "?after=" .. page * {pages.limit} .. "&limit={pages.limit}"\n'
        "  return wrk.format(nil, wrk.path .. query)\n"
        "end\n"
    )


def wrk_pages(pages: Pages, connections: int, seconds: float) -> Outcome:
    """Requests/s and p99 of wrk GETting the pages of `pages` in turn, back to back."""
    return _wrk_script(_pages_lua(pages), pages.url, connections, seconds)


def _parse_wrk(output: str) -> Outcome:
    for problem in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: (.*)"):
        if found := re.search(problem, output):
            raise RuntimeError(f"wrk reported failures ({found.group(0)}):\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    if rate is None:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{output}")
    p99_ms = float(p99.group(1)) * _UNITS_MS[p99.group(2)] if p99 else None
    return Outcome(float(rate.group(1)), p99_ms)


async def _python(post: Post, connections: int, seconds: float) -> Outcome:
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    await asyncio.gather(*(_client(post, deadline, latencies) for _ in range(connections)))
    return Outcome(len(latencies) / seconds, percentile(latencies, 0.99))


def _request_bytes(post: Post) -> bytes:
    parts = urlsplit(post.url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(post.body)}\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in AUTH.items())
        + "\r\n"
    )
    return head.encode() + post.body


async def _client(post: Post, deadline: float, latencies: list[float]) -> None:
    parts = urlsplit(post.url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    request = _request_bytes(post)
    try:
        while (start := time.monotonic()) < deadline:
            writer.write(request)
            status = await _read_response(reader)
            if status != post.expect:
                raise RuntimeError(f"POST {post.url} answered {status}")
            latencies.append((time.monotonic() - start) * 1000)
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        (
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length:")
        ),
        0,
    )
    await reader.readexactly(length)
    return int(lines[0].split(" ", 2)[1])
