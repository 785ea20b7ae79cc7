"""The `legation` command: serve, project, migrate, import, rebuild, keys."""

import argparse
import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import uvicorn
import uvloop
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress

from service.app import create_app
from service.config import DEFAULT_KEY_SECRET, InvalidSettings, Settings, settings_from_env
from service.http.keys import InvalidKeyRequest, create_key, parse_scopes, revoke_key
from service.http.stream_limits import raise_open_files
from service.log.database import connect, create_pool
from service.log.doorbell import Doorbell
from service.log.migrations import migrate
from service.ops import logs
from service.ops.demo import load_demo
from service.ops.embedded import EmbeddedPostgres, EmbeddedPostgresError, default_data_dir
from service.ops.imports import count_lines, import_file
from service.projections.projector import Projector
from service.projections.rebuild import MAX_PARTS, PARTS_FROM, log_head, rebuild

GRACE_SECONDS = 10  # for requests in flight when SIGTERM comes
log = logging.getLogger("legation")


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """Where sessions connect: LEGATION_SESSION_DATABASE_URL or DATABASE_URL when set; else
    an embedded PostgreSQL, stopped on exit.

    Migrations (under a session advisory lock) and the tools run here, never through
    a pooler that hands each transaction to another server connection.
    """
    if settings.session_dsn:
        yield settings.session_dsn
        return
    data_dir = settings.data_dir or default_data_dir()
    server = EmbeddedPostgres(data_dir)
    log.info("DATABASE_URL is unset: starting embedded PostgreSQL in %s", data_dir)
    try:
        yield server.start()
    finally:
        server.stop()


def _leave(signum: int, _frame: object) -> None:
    # uvicorn shuts down gracefully, then re-raises the signal it caught; leaving
    # through SystemExit lets the embedded PostgreSQL be stopped on the way out.
    raise SystemExit(0)


def check_key_secret(settings: Settings) -> None:
    """Warn about the built-in key secret; refuse it (exit 2) in production.

    Anyone who has the source has that secret: with it, a copy of the database
    gives away the webhook secrets and lets API keys be checked offline.
    """
    if settings.key_secret != DEFAULT_KEY_SECRET:
        return
    if settings.env == "production":
        print(
            "legation: LEGATION_ENV=production refuses the built-in key secret: set"
            " LEGATION_KEY_SECRET to a long random value (API keys and webhook secrets"
            " depend on it, so keep it once set)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    log.warning(
        "LEGATION_KEY_SECRET is the built-in default: API keys are hashed and webhook secrets"
        " encrypted with a secret anyone can read in the source; set it (LEGATION_ENV=production"
        " refuses to start with the default)",
        extra={"fields": {"setting": "LEGATION_KEY_SECRET"}},
    )


def serve(settings: Settings, demo: bool) -> None:
    """Migrate, optionally load the demo incidents, and serve HTTP."""
    check_key_secret(settings)
    if settings.read_only and demo:
        print(
            "legation: --demo writes; a read-only server (LEGATION_READ_ONLY) cannot",
            file=sys.stderr,
        )
        raise SystemExit(2)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _leave)
    with database(settings) as dsn:
        if settings.read_only:
            log.info("read-only: serving reads; writes go to %s", settings.primary_url)
        else:
            migrate(dsn)
        if demo:
            loaded = asyncio.run(load_demo(dsn))
            log.info("demo: %s", f"{loaded} incidents loaded" if loaded else "incidents exist")
        # Without DATABASE_URL the embedded server is the one database for everything.
        app = create_app(
            msgspec.structs.replace(settings, database_url=settings.database_url or dsn)
        )
        # A socket per event stream: say how many files the process may hold.
        log.info("open files allowed: %s", raise_open_files())
        log.info("serving on http://%s:%d", settings.host, settings.port)
        # No uvicorn access log line: the edge writes one (LEGATION_ACCESS_LOG), in JSON.
        # log_config=None: uvicorn's records go through the JSON handler too.
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            access_log=False,
            log_config=None,
            # X-Forwarded-For picks the client address that rate limits count by, so only
            # the configured proxies may set it (uvicorn trusts 127.0.0.1 by default); from
            # them the right-most address that is not itself a trusted proxy counts.
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=list(settings.trusted_proxies),
            # An event stream never ends by itself: after this, SIGTERM closes it (clients
            # resume with Last-Event-ID) and the server stops.
            timeout_graceful_shutdown=GRACE_SECONDS,
        )


async def project(settings: Settings) -> None:
    """Keep the read models following the log until SIGTERM or SIGINT."""
    dsn = settings.database_url
    assert dsn is not None  # project_command checked
    session_dsn = settings.session_database_url or dsn
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    pool = await create_pool(dsn, 1, 2, settings.statement_cache_size)
    doorbell = Doorbell(session_dsn)
    projector = Projector(pool, session_dsn, doorbell)
    doorbell.start()
    projector.start()
    gc.freeze()  # as in serve: full collections need not walk what start-up made
    log.info("projecting the log into the read models (or standing by for whoever is)")
    try:
        await stopping.wait()
    finally:
        await projector.stop()
        await doorbell.stop()
        await pool.close()


def project_command(settings: Settings) -> int:
    """`legation project`: only on a database that `legation serve` processes share."""
    if not settings.database_url:
        print(
            "legation: project needs DATABASE_URL, the database the serve processes use",
            file=sys.stderr,
        )
        return 2
    if settings.read_only:
        print(
            "legation: project writes the read models; not with LEGATION_READ_ONLY", file=sys.stderr
        )
        return 2
    with database(settings) as session_dsn:
        migrate(session_dsn)
    uvloop.run(project(settings))  # the event loop serve runs on
    return 0


def import_command(settings: Settings, path: Path) -> int:
    """Import with a progress bar; print the summary; 1 if any line failed."""
    if not path.is_file():
        print(f"legation: no such file: {path}", file=sys.stderr)
        return 2
    console = Console(stderr=True)
    with database(settings) as dsn:
        migrate(dsn)
        with Progress(
            *Progress.get_default_columns(), MofNCompleteColumn(), console=console
        ) as bar:
            task = bar.add_task(f"importing {path.name}", total=count_lines(path))
            summary = asyncio.run(
                import_file(dsn, path, on_progress=lambda done: bar.advance(task, done))
            )
    print(
        f"imported {summary.imported}, skipped {summary.skipped} (already present), "
        f"failed {len(summary.failed)}"
    )
    for error in summary.failed:
        print(f"  line {error.line}: {error.field}: {error.message}")
    return 1 if summary.failed else 0


def rebuild_command(settings: Settings, parts: int | None) -> None:
    """Rebuild the read models with a progress bar, folding in `parts` processes (None: default)."""
    with database(settings) as dsn:
        migrate(dsn)
        head = asyncio.run(log_head(dsn))
        columns = (*Progress.get_default_columns(), MofNCompleteColumn())
        with Progress(*columns, console=Console(stderr=True)) as bar:
            task = bar.add_task("rebuilding read models", total=max(head, 1))
            position = asyncio.run(
                rebuild(dsn, lambda done: bar.update(task, completed=done), parts)
            )
            bar.update(task, completed=max(position, 1))
    print(f"rebuilt the read models from the log up to position {position}")


async def keys_command(dsn: str, args: argparse.Namespace, secret: str) -> int:
    """`legation keys create|list|revoke`; keys are hashed with `secret` (Settings.key_secret)."""
    conn = await connect(dsn)
    try:
        if args.keys_command == "create":
            try:
                key = await create_key(conn, args.name, parse_scopes(args.scopes), secret)
            except InvalidKeyRequest as exc:
                print(f"legation: {exc}", file=sys.stderr)
                return 2
            print(f"key {args.name} with scopes {args.scopes}; it is shown only this once:")
            print(key)
        elif args.keys_command == "list":
            rows = await conn.fetch(
                "SELECT name, scopes, created_at, revoked_at FROM api_keys ORDER BY name"
            )
            for row in rows:
                state = f"revoked {row[3]:%Y-%m-%d}" if row[3] else "active"
                print(f"{row[0]}\t{','.join(row[1])}\tcreated {row[2]:%Y-%m-%d}\t{state}")
        elif not await revoke_key(conn, args.name):
            print(f"legation: no active key named {args.name!r}", file=sys.stderr)
            return 1
        else:
            print(f"revoked {args.name}")
        return 0
    finally:
        await conn.close()


def _positive(text: str) -> int:
    """An argument that must be a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="legation", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="migrate and serve the HTTP API")
    serve_cmd.add_argument("--demo", action="store_true", help="load the example incidents")
    serve_cmd.add_argument("--host", help="bind address (default LEGATION_HOST or 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port (default LEGATION_PORT or 8000)")
    commands.add_parser(
        "project",
        help="project the log into the read models in this process "
        "(for serve processes with LEGATION_PROJECTOR=separate)",
    )
    commands.add_parser("migrate", help="bring the database to the newest revision")
    import_cmd = commands.add_parser("import", help="append the reports of an NDJSON file")
    import_cmd.add_argument("file", type=Path, help="one JSON report per line")
    rebuild_cmd = commands.add_parser("rebuild", help="rebuild every read model from the log")
    rebuild_cmd.add_argument(
        "--parts",
        type=_positive,
        metavar="N",
        help="fold the log's streams in N processes at once (default: one per core, up to"
        f" {MAX_PARTS}, from {PARTS_FROM:,} events; one below)",
    )
    keys = commands.add_parser("keys", help="make, list and revoke API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="make a key (printed once, on the last line)")
    create.add_argument("--name", required=True, help="who uses it (goes into metadata.actor)")
    create.add_argument("--scopes", required=True, help="read,write,subscribe,admin")
    key_commands.add_parser("list", help="list keys (names and scopes, never the keys)")
    revoke = key_commands.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `legation` console script."""
    args = _parser().parse_args(argv)
    try:
        settings = settings_from_env()
    except InvalidSettings as exc:
        print(f"legation: {exc}", file=sys.stderr)
        return 2
    logs.configure(access_log=settings.access_log)
    try:
        if args.command == "serve":
            overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
            serve(msgspec.structs.replace(settings, **overrides), args.demo)
        elif args.command == "project":
            return project_command(settings)
        elif args.command == "migrate":
            with database(settings) as dsn:
                migrate(dsn)
            print("migrated to the newest revision")
        elif args.command == "import":
            return import_command(settings, args.file)
        elif args.command == "rebuild":
            rebuild_command(settings, args.parts)
        elif args.command == "keys":
            with database(settings) as dsn:
                migrate(dsn)
                return asyncio.run(keys_command(dsn, args, settings.key_secret))
    except EmbeddedPostgresError as exc:
        print(f"legation: {exc}", file=sys.stderr)
        return 1
    return 0
