"""`create_app(settings)`: the FastAPI application of one node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from query_api.http.auth import ApiKeys
from query_api.http.openapi import install_openapi
from query_api.http.problems import install_problem_handlers, route_methods
from query_api.http.routers import ROUTERS
from query_api.node.memory_edge import edge_embedder
from query_api.node.node import Node
from query_api.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """An app that starts a node for `settings` on startup and stops it on shutdown."""
    settings = settings or Settings()
    api_keys = ApiKeys.load(settings.api_keys_file) if settings.api_keys_file else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node = await Node.start(settings)
        app.state.node = node
        try:
            yield
        finally:
            await node.stop()

    app = FastAPI(
        title="agentlog",
        version="0.1.0",
        summary="The memory and time machine for AI agents.",
        lifespan=lifespan,
    )
    app.state.api_keys = api_keys
    app.state.embedder = edge_embedder(settings.embedder)
    install_problem_handlers(app)
    install_openapi(app)
    for router in ROUTERS:
        app.include_router(router)
    app.state.route_methods = route_methods(ROUTERS)
    return app
