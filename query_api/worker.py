"""`agentlog worker`: the record-triggered processors as a Faust (faust-streaming) app over a kafka:// log.

The one module that imports faust. One Faust agent consumes the command topic in a consumer group
(the app id is the group); each worker folds the records of the partitions it is assigned
(`projections.processors.FoldProcessors`) and appends what they derive through our own
`CommandProducer` on a `KafkaLog` (acks=all, idempotent producer). Faust's exactly-once is not used:
at-least-once delivery plus deterministic derived command ids (`derived:<processor>:<source id>`)
make a redelivered record a no-op retry. The TTL sweeper is not run here: it needs every partition's
records, which the serving nodes hold (their sweeps share command ids, see `projections.processors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import faust

from eventlog.base import EventLog
from eventlog.records import Record
from eventlog.url import open_log
from projections.processors import FoldProcessors
from query_api.node.node import open_topic
from query_api.settings import Settings

__all__ = ["WorkerError", "WorkerRuntime", "create_app", "faust_record", "kafka_servers", "run_worker"]

logger = logging.getLogger("agentlog.worker")

#: Most replicas of Faust's own topics (its leader-election topic).
REPLICATION_FACTOR_MAX = 3
#: How long a silent worker (killed, partitioned) keeps its partitions before the group moves them
#: (Faust's default is 60 s); heartbeats go out at a fifth of it.
SESSION_TIMEOUT_S = 10.0


class WorkerError(Exception):
    """The worker cannot run with these settings."""


def kafka_servers(log_url: str) -> list[str]:
    """The `host:port` bootstrap servers of a `kafka://host:port[,host:port]` log URL."""
    parts = urlsplit(log_url)
    servers = [server.strip() for server in parts.netloc.split(",") if server.strip()]
    if parts.scheme != "kafka" or not servers:
        raise WorkerError(f"the worker needs a kafka://host:port[,...] log, not {log_url!r}")
    return servers


def faust_record(message: Any) -> Record:
    """Our log `Record` of a Faust message (Faust gives the broker's timestamp in seconds)."""
    headers = message.headers or ()
    if isinstance(headers, dict):
        headers = list(headers.items())
    return Record(
        int(message.partition),
        int(message.offset),
        round(float(message.timestamp) * 1000),
        None if message.key is None else bytes(message.key),
        b"" if message.value is None else bytes(message.value),
        tuple((str(name), b"" if value is None else bytes(value)) for name, value in headers),
    )


class WorkerRuntime:
    """The log and the fold a worker process uses: opened before Faust starts, closed when it stops."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log: EventLog | None = None
        self.fold: FoldProcessors | None = None

    async def open(self) -> None:
        """Open the Kafka log, create the command topic if absent (Faust only subscribes), start the fold."""
        self.log = await open_log(self.settings.log)
        await open_topic(self.log, self.settings.topic, self.settings.partitions)
        self.fold = FoldProcessors(self.log, self.settings.topic)

    async def handle(self, record: Record) -> None:
        """Process one record of the command topic."""
        assert self.fold is not None, "the runtime is not open"
        derived = await self.fold.handle(record)
        if derived:
            logger.info(
                "derived %s from %d:%d", ", ".join(e.command_id for e in derived), record.partition, record.offset
            )

    async def close(self) -> None:
        """Append what is still pending, then close the log."""
        if self.fold is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.fold.flush(), 10)
        if self.log is not None:
            await self.log.close()


def create_app(
    settings: Settings,
    runtime: WorkerRuntime,
    *,
    group: str = "agentlog-processors",
    replication_factor: int | None = None,
    work_dir: Path | None = None,
) -> Any:
    """The Faust app: one agent over the command topic that hands each record to `runtime`."""
    servers = kafka_servers(settings.log)
    replicas = replication_factor if replication_factor is not None else min(len(servers), REPLICATION_FACTOR_MAX)
    data_dir = work_dir if work_dir is not None else Path(tempfile.gettempdir()) / f"agentlog-worker-{group}"
    app = faust.App(
        group,
        broker=[f"kafka://{server}" for server in servers],
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        datadir=str(data_dir),
        web_enabled=False,
        autodiscover=False,
        topic_replication_factor=replicas,
        topic_partitions=1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_heartbeat_interval=SESSION_TIMEOUT_S / 5,
        broker_rebalance_timeout=2 * SESSION_TIMEOUT_S,
        worker_redirect_stdouts=False,
    )
    topic = app.topic(settings.topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    async def processors(stream: Any) -> None:
        async for event in stream.events():
            await runtime.handle(faust_record(event.message))

    async def on_shutdown(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await runtime.close()

    app.agent(topic, name="agentlog-processors")(processors)
    app.on_before_shutdown.connect(on_shutdown)
    return app


def run_worker(
    settings: Settings,
    *,
    group: str = "agentlog-processors",
    replication_factor: int | None = None,
    work_dir: Path | None = None,
    loglevel: str = "warning",
) -> None:
    """Run a worker until it is stopped (SIGINT/SIGTERM); returns, or raises SystemExit, when it ends."""
    kafka_servers(settings.log)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runtime = WorkerRuntime(settings)
    try:
        loop.run_until_complete(runtime.open())
    except Exception as error:
        loop.run_until_complete(runtime.close())
        raise WorkerError(f"cannot open {settings.log}: {error}") from error
    app = create_app(settings, runtime, group=group, replication_factor=replication_factor, work_dir=work_dir)
    worker = faust.Worker(app, loop=loop, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
