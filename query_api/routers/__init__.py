"""One router per resource; `ROUTERS` is what the app mounts."""

from fastapi import APIRouter

from query_api.routers import coordination, kv, runs, system, vectors

__all__ = ["ROUTERS"]

ROUTERS: list[APIRouter] = [system.router, kv.router, coordination.router, runs.router, vectors.router]
