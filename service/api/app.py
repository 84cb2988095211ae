"""FastAPI application factory: one router per resource, settings on app.state."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid

from fastapi import FastAPI, Request, Response

from medcode.settings import Settings, get_settings
from service.api.routers import code, codes, extract, health, index, lookup, validate
from service.index_registry import IndexRegistry

log = logging.getLogger("medcode.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if not logging.getLogger().handlers:  # worker processes start with no logging set up
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = FastAPI(
        title="medcode",
        version="0.1.0",
        description="ICD-10-CM code-year index, code information, term lookup and clinical "
        "note extraction.",
    )
    app.state.settings = settings
    app.state.registry = IndexRegistry(
        settings.index_dir, settings.embedding_backend, settings.embedding_model_path,
        settings.cache_dir,
    )
    app.state.extractor = None
    app.state.extractor_lock = threading.Lock()

    @app.middleware("http")
    async def request_id(request: Request, call_next) -> Response:  # type: ignore[no-untyped-def]
        # Logs carry a request id and a hash of the query, never its text (it may hold PHI).
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        request.state.request_id = rid
        started = time.perf_counter()
        response = await call_next(request)
        query_hash = hashlib.sha256(request.url.query.encode()).hexdigest()[:12]
        log.info("%s %s %s q#%s %d %.1fms", rid, request.method, request.url.path, query_hash,
                 response.status_code, (time.perf_counter() - started) * 1000)
        response.headers["x-request-id"] = rid
        return response

    for module in (health, index, codes, lookup, extract, code, validate):
        app.include_router(module.router)
    return app
