"""The Litestar application: create_app(settings)."""

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler

from service.config import Settings
from service.http.admission import Admission
from service.http.auth import Authorizer, KeyCache
from service.http.consistency import ReadModels
from service.http.domain_problems import DOMAIN_PROBLEMS
from service.http.edge import Edge
from service.http.metrics import Metrics
from service.http.openapi.document import openapi_config, refine
from service.http.problems import EXCEPTION_HANDLERS
from service.http.query_names import QueryNames
from service.http.resources import DEPENDENCIES
from service.http.routes import (
    blocs,
    charts,
    embeds,
    events,
    front_page,
    health,
    incidents,
    schemas,
    standings,
    standings_stream,
    stream,
    stream_tokens,
    subscriptions,
)
from service.http.routes.batch import batch_route
from service.http.routes.options import allow_handlers
from service.http.stream_limits import StreamSlots
from service.log.database import create_pool
from service.log.doorbell import Doorbell
from service.log.group_commit import GroupCommit
from service.log.migrations import head_revisions
from service.log.replay import ReplayBell
from service.projections.answer_cache import AnswerCache
from service.projections.projector import Projector
from service.projections.rebuild_watch import RebuildWatch
from service.projections.standing_changes import StandingChanges
from service.subscribers.fanout import Fanout
from service.subscribers.sealing import seal_clear_secrets
from service.subscribers.webhooks import Deliverer


def create_app(settings: Settings) -> Litestar:
    """An app serving the log in `settings.database_url` (which must be set)."""
    if settings.database_url is None:
        raise ValueError("create_app needs settings.database_url; `legation serve` provides one")
    metrics = Metrics()
    # One byte-bounded store of answers for the edge and the standings handlers alike.
    answers = AnswerCache(settings.cache_bytes)
    keys = KeyCache(settings.key_secret)
    streams = StreamSlots(settings.max_streams, settings.max_streams_per_address)
    made = {"settings": settings, "metrics": metrics, "answers": answers, "streams": streams}
    handlers = _routes(settings)
    names = QueryNames()  # learnt from the routes Litestar builds
    app = Litestar(
        # The OPTIONS answers come first so that Litestar does not make its own.
        route_handlers=[*allow_handlers(handlers), *handlers],
        lifespan=[_running],
        state=State({**made, "api_keys": keys}),
        dependencies=DEPENDENCIES,
        exception_handlers={**EXCEPTION_HANDLERS, **DOMAIN_PROBLEMS},
        before_request=Admission(Authorizer(settings, keys), names).before_request,
        openapi_config=openapi_config(),
        # Litestar's own logging config would replace the JSON one (service/ops/logs.py).
        logging_config=None,
        request_max_body_size=settings.max_body_bytes,
        # Browsers may read (EventSource included) from any origin; writes need no CORS.
        cors_config=CORSConfig(
            allow_origins=["*"],
            allow_methods=["GET", "HEAD"],
            expose_headers=["Legation-Position", "ETag"],
        ),
    )
    names.learn(app)
    refine(app)
    # Around Litestar's exception handling, CORS and routing, not after them as its
    # middleware would be: a remembered answer needs none of them (service/http/edge.py).
    app.asgi_handler = Edge(settings, metrics, answers)(app.asgi_handler)
    return app


def _routes(settings: Settings) -> list[HTTPRouteHandler]:
    return [
        *incidents.ROUTES,
        batch_route(settings.max_batch_bytes),
        *stream.ROUTES,
        *standings_stream.ROUTES,
        *stream_tokens.ROUTES,
        *subscriptions.ROUTES,
        *events.ROUTES,
        *schemas.ROUTES,
        *standings.ROUTES,
        *charts.ROUTES,
        *embeds.ROUTES,
        *front_page.ROUTES,
        *blocs.ROUTES,
        *health.ROUTES,
    ]


@asynccontextmanager
async def _running(app: Litestar) -> AsyncIterator[None]:
    """What needs the database, started in order and stopped in reverse when the app stops.

    A read-only server (on a hot standby) starts no writer: no group commit, no
    projector of its own, no webhook deliveries, no sealing of secrets; it polls
    what the standby replayed instead of listening (LISTEN is refused there).
    """
    state = app.state
    settings: Settings = state.settings
    dsn = settings.database_url
    assert dsn is not None  # create_app refuses settings without one
    session_dsn = settings.session_database_url or dsn
    writes = not settings.read_only
    async with AsyncExitStack() as started:
        pool = await create_pool(
            dsn, settings.pool_min_size, settings.pool_max_size, settings.statement_cache_size
        )
        started.push_async_callback(pool.close)
        state.api_keys.use(pool)
        appends = GroupCommit(pool, on_appended=state.metrics.count_appended)
        doorbell = (
            Doorbell(session_dsn) if writes else ReplayBell(pool, settings.standby_poll_seconds)
        )
        projects = writes and settings.projector == "inline"
        projector = Projector(
            pool, session_dsn, doorbell, projects=projects, on_moved=state.answers.advance
        )
        fanout = Fanout(pool, doorbell)
        state.answers.restart()  # the log may be another (or rebuilt) since the app last ran
        await projector.refresh()  # never answer standings at position 0 after a restart
        for worker in (appends, doorbell, projector) if writes else (doorbell, projector):
            worker.start()
            started.push_async_callback(worker.stop)
        await fanout.start()
        started.push_async_callback(fanout.stop)
        # What each event changed in the standings, computed once in this process for
        # the webhooks and the standings streams alike.
        changes = StandingChanges()
        doorbell.on_rebuilt(changes.forget)
        deliverer = Deliverer(pool, doorbell, settings, changes)
        started.push_async_callback(deliverer.stop)  # closes its HTTP client even if unstarted
        if writes:
            await seal_clear_secrets(pool, settings.key_secret)  # rows from before sealing
            deliverer.start()
        rebuilds = RebuildWatch(pool, doorbell, state.answers)
        rebuilds.start()
        started.push_async_callback(rebuilds.stop)
        state.update(
            pool=pool,
            appends=appends,
            doorbell=doorbell,
            read_models=ReadModels(
                projector,
                pool,
                settings.read_wait_seconds,
                standby=settings.read_only,
                bell=doorbell,
            ),
            fanout=fanout,
            deliverer=deliverer,
            standing_changes=changes,
            migration_heads=head_revisions(),
        )
        # What start-up made (modules, the app, the catalogue) lives as long as the
        # process: moved out of the collector's sight, a full collection walks ~6 ms
        # of objects instead of ~125 ms (profiled under batch ingest).
        gc.freeze()
        # vl-convert's JavaScript engine starts with the first chart (~0.5 s once), not
        # here: started eagerly it held ~80 MB in every process, charts drawn or not.
        yield
