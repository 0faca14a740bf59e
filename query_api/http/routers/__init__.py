"""One router per resource; `ROUTERS` is what the app mounts."""

from fastapi import APIRouter

from query_api.http.routers import (
    audit,
    branches,
    coordination,
    hive,
    kv,
    memories,
    runs,
    system,
    tasks,
    timeline,
    vectors,
    watch,
)

__all__ = ["ROUTERS"]

ROUTERS: list[APIRouter] = [system.router, kv.router, coordination.router, runs.router, vectors.router, branches.router]
ROUTERS.append(timeline.router)
ROUTERS.append(audit.router)
ROUTERS.append(memories.router)
ROUTERS.append(watch.router)
ROUTERS.append(tasks.router)
ROUTERS.append(hive.router)
