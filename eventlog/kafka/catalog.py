"""The topic catalog: agentlog topics' metadata in a compacted Kafka topic, shared by every node.

One record per agentlog topic, key = its name, value = the JSON the file backend keeps in topic.json
(partitions, parent, fork cut); a tombstone (null value) when the topic is deleted. Every node reads
the catalog fully at open, then follows it, so topics made by one node appear on the others.
"""

from __future__ import annotations

import json

from eventlog.errors import CorruptLogError
from eventlog.records import TopicInfo, check_topic_name

__all__ = ["CATALOG_TOPIC", "NODE_HEADER", "decode_topic", "encode_topic"]

#: The compacted topic holding the catalog (after the log's topic prefix).
CATALOG_TOPIC = "__agentlog_topics"
#: Header naming the KafkaLog instance that wrote a catalog record (it applies its own changes itself).
NODE_HEADER = "agentlog-node"


def encode_topic(info: TopicInfo) -> bytes:
    """The catalog value of a topic (the file backend's topic.json document)."""
    document = {
        "format": 1,
        "name": info.name,
        "partitions": info.partitions,
        "parent": info.parent,
        "fork_cut": list(info.fork_cut) if info.fork_cut is not None else None,
    }
    return json.dumps(document, sort_keys=True).encode()


def decode_topic(value: bytes, where: str, offset: int) -> TopicInfo:
    """The topic a catalog value describes; CorruptLogError naming `where` and `offset` if unreadable."""
    try:
        document = json.loads(value)
        if document["format"] != 1:
            raise ValueError(f"unknown format {document['format']!r}")
        fork_cut = document["fork_cut"]
        parent = document["parent"]
        info = TopicInfo(
            name=str(document["name"]),
            partitions=int(document["partitions"]),
            parent=str(parent) if parent is not None else None,
            fork_cut=tuple(int(o) for o in fork_cut) if fork_cut is not None else None,
        )
        check_topic_name(info.name)
        if info.fork_cut is not None and len(info.fork_cut) != info.partitions:
            raise ValueError("fork cut and partitions disagree")
        return info
    except Exception as error:  # bad JSON, missing keys, wrong types, invalid names
        raise CorruptLogError(where, offset, f"unreadable topic metadata: {error}") from error
