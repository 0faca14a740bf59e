"""The Kafka backend: each agentlog topic is a Kafka topic of the same partitions, written with aiokafka.

* Appends: one record batch per append (Kafka writes a batch atomically), produced with `acks=all` and
  idempotence; concurrent appends to a partition are group-committed (`writer.PartitionWriter`).
  Timestamps are the broker's (`message.timestamp.type=LogAppendTime`).
* Reads: pooled single-partition consumers that continue where the previous read ended
  (`reader.ReaderPool`); end offsets are the high watermark (only fully replicated records).
  Offsets may have gaps (a transactional producer's markers, compaction): reads return what is there
  and readers skip ahead. An offset below the partition's start (retention deleted it) raises
  `RecordsDeletedError` naming the new start, instead of answering nothing forever.
* Topic metadata (partitions, parent, fork cut) lives in the compacted catalog topic
  `<prefix>__agentlog_topics` (`catalog`), read at open and followed while the log is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from typing import Any

import aiokafka.errors as kafka_errors
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from eventlog import limits
from eventlog.base import EventLog
from eventlog.errors import (
    CorruptLogError,
    InvalidRequestError,
    LogClosedError,
    LogError,
    RecordsDeletedError,
    TopicExistsError,
)
from eventlog.kafka.catalog import CATALOG_TOPIC, NODE_HEADER, decode_topic, encode_topic
from eventlog.kafka.common import ClientOptions, error_for_code, forget_topic, to_log_error
from eventlog.kafka.reader import OffsetOutOfRange, ReaderPool, new_consumer, topic_partition
from eventlog.kafka.writer import PartitionWriter
from eventlog.records import AppendResult, Message, Record, TopicInfo

__all__ = ["KafkaLog"]

_log = logging.getLogger(__name__)

#: Longest Kafka topic name.
KAFKA_TOPIC_NAME_MAX = 249
#: Idle single-partition readers kept for reuse (least recently used close first).
MAX_IDLE_READERS_DEFAULT = 64
#: How long a read waits for records it knows exist before it asks the broker for the end again.
_KNOWN_RECORDS_WAIT_MS = 1000
#: How often a read beyond the end polls the end while it waits.
_BEYOND_END_POLL_MS = 100
#: Records one catalog fetch returns.
_CATALOG_FETCH_RECORDS = 10_000
_PREFIX = re.compile(r"[A-Za-z0-9._-]*")


class KafkaLog(EventLog):
    """Topics stored in an Apache Kafka cluster; any number of processes may open the same cluster."""

    def __init__(
        self,
        options: ClientOptions,
        *,
        topic_prefix: str = "",
        max_idle_readers: int = MAX_IDLE_READERS_DEFAULT,
    ) -> None:
        """Use `KafkaLog.open`, which starts the clients and loads the catalog."""
        super().__init__()
        self._options = options
        self._prefix = topic_prefix
        self._catalog_topic = topic_prefix + CATALOG_TOPIC
        self._node_id = uuid.uuid4().hex.encode()
        self.replication_factor = 1
        self.min_insync_replicas = 1
        self._admin: Any = None
        self._producer: Any = None
        self._offsets: Any = None  # a consumer with no assignment, for end offsets
        self._catalog: Any = None  # a consumer of the catalog partition
        self._catalog_tp = topic_partition(self._catalog_topic, 0)
        self._catalog_position = 0
        self._catalog_advanced = asyncio.Event()
        self._own_catalog_offsets: dict[str, int] = {}  # catalog offset of this log's last change per name
        self._follower: asyncio.Task[None] | None = None
        self._writers: dict[Any, PartitionWriter] = {}
        self._readers = ReaderPool(options, max_idle_readers)
        self._ends: dict[Any, int] = {}  # lowest end offset known per partition (high watermark seen)

    # ----------------------------------------------------------------------------------- opening

    @classmethod
    async def open(
        cls,
        bootstrap_servers: str,
        *,
        replication_factor: int | None = None,
        min_insync_replicas: int | None = None,
        client_id: str = "agentlog",
        topic_prefix: str = "",
        max_batch_bytes: int = limits.MAX_BATCH_BYTES,
        request_timeout_ms: int = 30_000,
        fetch_max_wait_ms: int = 100,
        max_partition_fetch_bytes: int = 1024 * 1024,
        max_idle_readers: int = MAX_IDLE_READERS_DEFAULT,
    ) -> KafkaLog:
        """Connect to the cluster at `bootstrap_servers` ("host:port[,host:port]") and load the catalog.

        New topics get `replication_factor` replicas (default: min(3, brokers)) and
        `min.insync.replicas` (default: min(2, replication factor)); `topic_prefix` is put before every
        Kafka topic name, the catalog's too, so that several logs can share one cluster.
        """
        if not isinstance(bootstrap_servers, str) or not bootstrap_servers.strip():
            raise InvalidRequestError("bootstrap_servers must name at least one host:port")
        if not _PREFIX.fullmatch(topic_prefix) or len(topic_prefix) > 40:
            raise InvalidRequestError("topic_prefix must match [A-Za-z0-9._-]* and be at most 40 characters")
        if not 1024 <= max_batch_bytes <= limits.MAX_BATCH_BYTES:
            raise InvalidRequestError(f"max_batch_bytes must be within 1 KiB..{limits.MAX_BATCH_BYTES}")
        if not 1 <= max_idle_readers <= 100_000:
            raise InvalidRequestError("max_idle_readers must be within 1..100000")
        options = ClientOptions(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            request_timeout_ms=request_timeout_ms,
            fetch_max_wait_ms=fetch_max_wait_ms,
            max_partition_fetch_bytes=max_partition_fetch_bytes,
            max_batch_bytes=max_batch_bytes,
        )
        log = cls(options, topic_prefix=topic_prefix, max_idle_readers=max_idle_readers)
        try:
            await log._start(replication_factor, min_insync_replicas)
        except BaseException as error:
            await log.close()
            if isinstance(error, Exception):
                raise to_log_error(error, f"open {bootstrap_servers}") from error
            raise
        return log

    async def _start(self, replication_factor: int | None, min_insync_replicas: int | None) -> None:
        options = self._options
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=options.bootstrap_servers,
            client_id=f"{options.client_id}-admin",
            request_timeout_ms=options.request_timeout_ms,
        )
        await self._admin.start()
        cluster = await self._admin.describe_cluster()
        brokers = len(cluster["brokers"])
        self.replication_factor = replication_factor if replication_factor is not None else min(3, brokers)
        if not 1 <= self.replication_factor <= max(brokers, 1):
            raise InvalidRequestError(f"replication_factor {self.replication_factor} outside 1..{brokers} brokers")
        self.min_insync_replicas = (
            min_insync_replicas if min_insync_replicas is not None else min(2, self.replication_factor)
        )
        if not 1 <= self.min_insync_replicas <= self.replication_factor:
            raise InvalidRequestError(
                f"min_insync_replicas {self.min_insync_replicas} outside 1..{self.replication_factor}"
            )
        self._producer = AIOKafkaProducer(
            bootstrap_servers=options.bootstrap_servers,
            client_id=f"{options.client_id}-producer",
            acks="all",
            enable_idempotence=True,
            linger_ms=0,  # appends are group-committed per partition by PartitionWriter
            compression_type=None,
            max_batch_size=options.max_batch_bytes,
            max_request_size=options.max_batch_bytes + 1024 * 1024,
            request_timeout_ms=options.request_timeout_ms,
        )
        await self._producer.start()
        self._offsets = new_consumer(options, "offsets")
        await self._offsets.start()
        await self._ensure_catalog_topic()
        await self._load_catalog()
        self._follower = asyncio.get_running_loop().create_task(self._follow_catalog())

    async def _ensure_catalog_topic(self) -> None:
        configs = {
            "cleanup.policy": "compact",
            "min.insync.replicas": str(self.min_insync_replicas),
            "unclean.leader.election.enable": "false",
            "message.timestamp.type": "LogAppendTime",
        }
        topics = await self._admin.list_topics()
        if self._catalog_topic not in topics:
            with contextlib.suppress(TopicExistsError):  # another node created it meanwhile
                await self._create_kafka_topic(self._catalog_topic, 1, configs)
            await self._wait_topic_ready(self._catalog_topic, 1)

    async def _load_catalog(self) -> None:
        tp = self._catalog_tp
        start = int((await self._offsets.beginning_offsets([tp]))[tp])
        end = int((await self._offsets.end_offsets([tp]))[tp])
        self._catalog = new_consumer(self._options, "catalog")
        await self._catalog.start()
        self._catalog.assign([tp])
        self._catalog.seek(tp, start)
        self._catalog_position = start
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.request_timeout_ms / 1000
        while self._catalog_position < end:
            if loop.time() > deadline:
                raise LogError(f"kafka: catalog {self._catalog_topic} not read to {end} in time")
            await self._read_catalog(timeout_ms=500, follow=False)

    async def _read_catalog(self, timeout_ms: int, *, follow: bool) -> None:
        tp = self._catalog_tp
        batches = await self._catalog.getmany(tp, timeout_ms=timeout_ms, max_records=_CATALOG_FETCH_RECORDS)
        for record in batches.get(tp, []):
            try:
                deleted = self._apply_catalog(record, following=follow)
            except CorruptLogError as error:
                if not follow:
                    raise  # refuse to open on a catalog we cannot read, as the file backend does
                _log.error("catalog %s: %s; record skipped", self._catalog_topic, error)
                continue
            if deleted is not None:
                await self._forget_kafka_topic(self.kafka_topic(deleted))
        position = int(await self._catalog.position(tp))
        if position > self._catalog_position:
            self._catalog_position = position
            self._catalog_advanced.set()
            self._catalog_advanced = asyncio.Event()

    def _apply_catalog(self, record: Any, *, following: bool) -> str | None:
        """Apply one catalog record; return the name of the topic it deletes, if it deletes one.

        While following, this log's own records are skipped (it applied them when it wrote them), and
        so are other nodes' records about a name older than this log's last own change of that name.
        """
        if following and any(name == NODE_HEADER and value == self._node_id for name, value in record.headers):
            return None
        if record.key is None:
            _log.warning("catalog %s: record at %d has no key; ignored", self._catalog_topic, record.offset)
            return None
        name = bytes(record.key).decode("utf-8", "replace")
        if following and record.offset < self._own_catalog_offsets.get(name, -1):
            return None
        if record.value is None:
            return name if self._topics.pop(name, None) is not None else None
        self._topics[name] = decode_topic(record.value, f"kafka:{self._catalog_topic}", int(record.offset))
        return None

    async def _follow_catalog(self) -> None:
        """Apply the catalog changes other nodes make, while the log is open."""
        while True:
            try:
                await self._read_catalog(timeout_ms=1000, follow=True)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                _log.warning("following catalog %s failed: %r; retrying", self._catalog_topic, error)
                await asyncio.sleep(1)

    async def sync_topics(self) -> None:
        """Return once every catalog change made before this call (by any node) is applied here."""
        self._check_open()
        tp = self._catalog_tp
        try:
            end = int((await self._offsets.end_offsets([tp]))[tp])
        except Exception as error:
            raise to_log_error(error, f"end of {self._catalog_topic}") from error
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.request_timeout_ms / 1000
        while self._catalog_position < end:
            self._check_open()
            try:
                await asyncio.wait_for(self._catalog_advanced.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise LogError(f"kafka: catalog {self._catalog_topic} not followed to {end} in time") from None

    # ----------------------------------------------------------------------------------- names

    def kafka_topic(self, name: str) -> str:
        """The Kafka topic that stores agentlog topic `name`."""
        return self._prefix + name

    def _check_kafka_name(self, name: str) -> str:
        kafka_name = self.kafka_topic(name)
        if len(kafka_name) > KAFKA_TOPIC_NAME_MAX:
            raise InvalidRequestError(f"Kafka topic name {kafka_name!r} is longer than {KAFKA_TOPIC_NAME_MAX}")
        if kafka_name == self._catalog_topic or kafka_name.startswith("__"):
            raise InvalidRequestError(f"topic name {name!r} is reserved on Kafka")
        return kafka_name

    # ----------------------------------------------------------------------------------- backend

    async def _physical_create(self, info: TopicInfo) -> None:
        kafka_name = self._check_kafka_name(info.name)
        configs = {
            "cleanup.policy": "delete",
            "retention.ms": "-1",
            "retention.bytes": "-1",
            "message.timestamp.type": "LogAppendTime",
            "min.insync.replicas": str(self.min_insync_replicas),
            "unclean.leader.election.enable": "false",
            "max.message.bytes": str(self._options.max_batch_bytes),
        }
        # The Kafka topic is the claim on the name (the broker refuses a second one), then the catalog says
        # what it is. A crash between the two leaves a Kafka topic that no catalog entry names.
        tps = [topic_partition(kafka_name, p) for p in range(info.partitions)]
        await self._create_kafka_topic(kafka_name, info.partitions, configs)
        cataloged = False
        try:
            await self._write_catalog(info.name, encode_topic(info))
            cataloged = True
            # Wait until every partition has a leader that serves it, so that the first append and read
            # need no retry; the producer and the offsets consumer learn the leaders meanwhile.
            await self._wait_topic_ready(kafka_name, info.partitions)
            try:
                await asyncio.gather(self._producer.partitions_for(kafka_name), self._offsets.end_offsets(tps))
            except Exception as error:
                raise to_log_error(error, f"create topic {kafka_name}") from error
        except BaseException:  # undo, as far as the cluster lets us
            if cataloged:
                with contextlib.suppress(Exception):
                    await self._write_catalog(info.name, None)
            with contextlib.suppress(Exception):
                await self._delete_kafka_topic(kafka_name)
            raise
        for tp in tps:
            self._ends[tp] = 0

    async def _physical_delete(self, name: str) -> None:
        kafka_name = self.kafka_topic(name)
        await self._write_catalog(name, None)
        for tp in [tp for tp in self._writers if tp.topic == kafka_name]:
            task = self._writers.pop(tp).task
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
        await self._delete_kafka_topic(kafka_name)
        await self._forget_kafka_topic(kafka_name)

    async def _forget_kafka_topic(self, kafka_name: str) -> None:
        """Drop what this log holds for a deleted Kafka topic: writers, readers, known ends, client metadata."""
        for tp in [tp for tp, writer in self._writers.items() if tp.topic == kafka_name and writer.task is None]:
            del self._writers[tp]
        for tp in [tp for tp in self._ends if tp.topic == kafka_name]:
            del self._ends[tp]
        await self._readers.drop_topic(kafka_name)
        for client in (getattr(self._producer, "client", None), getattr(self._offsets, "_client", None)):
            if client is not None:
                forget_topic(client, kafka_name)

    async def _physical_append(self, topic: str, partition: int, messages: list[Message]) -> AppendResult:
        tp = topic_partition(self.kafka_topic(topic), partition)
        writer = self._writers.get(tp)
        if writer is None:
            writer = PartitionWriter(self._producer, tp.topic, partition, max_batch_bytes=self._options.max_batch_bytes)
            self._writers[tp] = writer
        result = await writer.append(messages)
        if result.next_offset > self._ends.get(tp, 0):
            self._ends[tp] = result.next_offset
        return result

    async def _physical_read(
        self, topic: str, partition: int, offset: int, max_records: int, wait_ms: int
    ) -> list[Record]:
        tp = topic_partition(self.kafka_topic(topic), partition)
        reader = self._readers.acquire(tp, offset)
        try:
            return await self._read(reader, tp, offset, max_records, wait_ms)
        finally:
            await self._readers.release(reader)

    async def _read(self, reader: Any, tp: Any, offset: int, max_records: int, wait_ms: int) -> list[Record]:
        if reader.position == offset:  # continuing where the last read ended: maybe prefetched already
            with contextlib.suppress(OffsetOutOfRange):
                records: list[Record] = await reader.fetch(0, max_records)
                if records:
                    return records
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_ms / 1000
        end = max(self._ends.get(tp, 0), reader.highwater())
        asked = False  # whether `end` came from the broker during this read
        out_of_range = 0
        while True:
            remaining_ms = max(0, int((deadline - loop.time()) * 1000))
            try:
                if offset < end:  # records are there: wait for the fetch that brings them
                    await reader.move_to(offset)
                    records = await reader.fetch(_KNOWN_RECORDS_WAIT_MS, max_records)
                    self._note_end(tp, reader.highwater())
                    if records:
                        return records
                elif offset == end or (reader.position == offset and not asked):
                    # At the end as far as we know: tail the partition (a fetch at the end is held by the
                    # broker until records arrive), or, with no time to wait, ask the broker where it ends.
                    if remaining_ms > 0:
                        await reader.move_to(offset)
                        records = await reader.fetch(remaining_ms, max_records)
                        self._note_end(tp, reader.highwater())
                        return records
                    if asked:
                        return []
                elif asked:  # beyond the end: nothing to read unless the partition grows past `offset`
                    if remaining_ms == 0:
                        return []
                    await asyncio.sleep(min(remaining_ms, _BEYOND_END_POLL_MS) / 1000)
            except OffsetOutOfRange:
                start = await self._fetch_start(tp)
                if offset < start:  # retention moved the start past us: say so, never spin on it
                    raise RecordsDeletedError(tp.topic, tp.partition, offset, start) from None
                out_of_range += 1
                if out_of_range > 2:
                    return []
            end = await self._fetch_end(tp)
            asked = True

    async def _fetch_start(self, tp: Any) -> int:
        try:
            return int((await self._offsets.beginning_offsets([tp]))[tp])
        except Exception as error:
            raise to_log_error(error, f"start offset of {tp.topic}/{tp.partition}") from error

    def _note_end(self, tp: Any, end: int) -> None:
        if end > self._ends.get(tp, 0):
            self._ends[tp] = end

    async def _fetch_end(self, tp: Any) -> int:
        try:
            end = int((await self._offsets.end_offsets([tp]))[tp])
        except Exception as error:
            raise to_log_error(error, f"end offset of {tp.topic}/{tp.partition}") from error
        self._note_end(tp, end)
        return end

    async def _physical_end_offsets(self, topic: str) -> list[int]:
        kafka_name = self.kafka_topic(topic)
        tps = [topic_partition(kafka_name, p) for p in range(self.topic(topic).partitions)]
        try:
            found = await self._offsets.end_offsets(tps)
        except Exception as error:
            raise to_log_error(error, f"end offsets of {kafka_name}") from error
        ends = [int(found[tp]) for tp in tps]
        for tp, end in zip(tps, ends, strict=True):
            self._note_end(tp, end)
        return ends

    async def _physical_close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        tasks = [w.task for w in self._writers.values() if w.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._readers.close()
        for client in [self._producer, self._catalog, self._offsets]:
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self._admin.close()
        self._catalog_advanced.set()

    # ----------------------------------------------------------------------------------- Kafka admin

    async def _create_kafka_topic(self, name: str, partitions: int, configs: dict[str, str]) -> None:
        what = f"create topic {name}"
        new_topic = NewTopic(name, partitions, self.replication_factor, topic_configs=configs)
        try:
            response = await self._admin.create_topics([new_topic], timeout_ms=self._options.request_timeout_ms)
        except Exception as error:
            raise to_log_error(error, what) from error
        for entry in response.topic_errors:
            code = int(entry[1])
            if code != 0:
                raise error_for_code(code, entry[2] if len(entry) > 2 else None, what)

    async def _wait_topic_ready(self, name: str, partitions: int) -> None:
        """Poll the cluster metadata until each of the topic's partitions has a leader."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.request_timeout_ms / 1000
        delay = 0.005
        while True:
            try:
                [described] = await self._admin.describe_topics([name])
            except Exception as error:
                raise to_log_error(error, f"describe topic {name}") from error
            found = described.get("partitions") or []
            if (
                described.get("error_code") == 0
                and len(found) == partitions
                and all(p.get("error_code") == 0 and p.get("leader", -1) >= 0 for p in found)
            ):
                return
            if loop.time() > deadline:
                raise LogError(f"kafka: topic {name} has no leader for every partition after creation")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def _delete_kafka_topic(self, name: str) -> None:
        what = f"delete topic {name}"
        try:
            response = await self._admin.delete_topics([name], timeout_ms=self._options.request_timeout_ms)
        except Exception as error:
            raise to_log_error(error, what) from error
        for entry in response.topic_error_codes:
            code = int(entry[1])
            if code not in (0, kafka_errors.UnknownTopicOrPartitionError.errno):
                raise error_for_code(code, None, what)

    async def _write_catalog(self, name: str, value: bytes | None) -> None:
        if self._producer is None:
            raise LogClosedError("the log is closed")
        try:
            metadata = await self._producer.send_and_wait(
                self._catalog_topic,
                key=name.encode(),
                value=value,
                partition=0,
                headers=[(NODE_HEADER, self._node_id)],
            )
        except Exception as error:
            raise to_log_error(error, f"write catalog {self._catalog_topic}") from error
        self._own_catalog_offsets[name] = int(metadata.offset)
