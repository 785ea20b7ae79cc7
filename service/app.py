"""The Litestar application: create_app(settings)."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State

from service.config import Settings
from service.http.auth import Authorizer, KeyCache
from service.http.consistency import ReadModels
from service.http.domain_problems import DOMAIN_PROBLEMS
from service.http.edge import Edge
from service.http.openapi.document import openapi_config, refine
from service.http.problems import EXCEPTION_HANDLERS
from service.http.resources import DEPENDENCIES
from service.http.routes import events, health, incidents, standings, stream, subscriptions
from service.http.routes.batch import batch_route
from service.http.routes.options import allow_handlers
from service.log.database import create_pool, head_revisions
from service.log.doorbell import Doorbell
from service.log.group_commit import GroupCommit
from service.ops.metrics import Metrics
from service.projections.answer_cache import AnswerCache
from service.projections.projector import Projector
from service.projections.rebuild_watch import RebuildWatch
from service.subscribers.fanout import Fanout
from service.subscribers.sealing import seal_clear_secrets
from service.subscribers.stream_limits import StreamSlots
from service.subscribers.webhooks import Deliverer


def create_app(settings: Settings) -> Litestar:
    """An app serving the log in `settings.database_url` (which must be set)."""
    if settings.database_url is None:
        raise ValueError("create_app needs settings.database_url; `legation serve` provides one")
    dsn = settings.database_url
    metrics = Metrics()
    # One byte-bounded store of answers for the edge and the standings handlers alike.
    answers = AnswerCache(settings.cache_bytes)
    keys = KeyCache(settings.key_secret)
    streams = StreamSlots(settings.max_streams, settings.max_streams_per_address)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = await create_pool(dsn, settings.pool_min_size, settings.pool_max_size)
        keys.use(pool)
        appends, doorbell = GroupCommit(pool, on_appended=metrics.count_appended), Doorbell(dsn)
        projector = Projector(
            pool, dsn, doorbell, projects=settings.projector == "inline", on_moved=answers.advance
        )
        fanout = Fanout(pool, doorbell)
        await projector.refresh()  # never answer standings at position 0 after a restart
        for worker in (appends, doorbell, projector):
            worker.start()
        await fanout.start()
        await seal_clear_secrets(pool, settings.key_secret)  # rows from before sealing
        deliverer = Deliverer(pool, doorbell, settings)
        deliverer.start()
        rebuilds = RebuildWatch(pool, doorbell, answers)
        rebuilds.start()
        app.state.update(
            pool=pool,
            appends=appends,
            doorbell=doorbell,
            read_models=ReadModels(projector, pool, settings.read_wait_seconds),
            fanout=fanout,
            deliverer=deliverer,
            migration_heads=head_revisions(),
        )
        # What start-up made (modules, the app, the catalogue) lives as long as the
        # process: moved out of the collector's sight, a full collection walks ~6 ms
        # of objects instead of ~125 ms (profiled under batch ingest).
        gc.freeze()
        try:
            yield
        finally:
            await rebuilds.stop()
            await deliverer.stop()
            await fanout.stop()
            await projector.stop()
            await doorbell.stop()
            await appends.stop()
            await pool.close()

    handlers = [
        *incidents.ROUTES,
        batch_route(settings.max_batch_bytes),
        *stream.ROUTES,
        *subscriptions.ROUTES,
        *events.ROUTES,
        *standings.ROUTES,
        *health.ROUTES,
    ]
    app = Litestar(
        # The OPTIONS answers come first so that Litestar does not make its own.
        route_handlers=[*allow_handlers(handlers), *handlers],
        lifespan=[lifespan],
        state=State(
            {"settings": settings, "metrics": metrics, "answers": answers, "streams": streams}
        ),
        dependencies=DEPENDENCIES,
        exception_handlers={**EXCEPTION_HANDLERS, **DOMAIN_PROBLEMS},
        middleware=[Edge(settings, metrics, answers)],
        before_request=Authorizer(settings, keys).before_request,
        openapi_config=openapi_config(),
        # Litestar's own logging config would replace the JSON one (service/ops/logs.py).
        logging_config=None,
        request_max_body_size=settings.max_body_bytes,
        # Browsers may read (EventSource included) from any origin; writes need no CORS.
        cors_config=CORSConfig(
            allow_origins=["*"],
            allow_methods=["GET"],
            expose_headers=["Legation-Position", "ETag"],
        ),
    )
    refine(app)
    return app
