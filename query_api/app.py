"""`create_app(settings)`: the FastAPI application of one node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from query_api.auth import ApiKeys
from query_api.node import Node
from query_api.problems import install_problem_handlers
from query_api.routers import ROUTERS
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
    install_problem_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
