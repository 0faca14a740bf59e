"""`Memory`: the seed 003 memory client (add, search, get, update, forget, history, recall) over a client.

    from agentlog import connect
    from agentlog.memory import Memory

    with connect("http://127.0.0.1:8000", tenant="acme", agent_id="planner") as client:
        memory = Memory(client, user_id="ludde")
        memory_id = memory.add("User prefers Rust over Python", tags=["preferences"])
        hits = memory.search("what languages does the user like?")

A `Memory` carries a namespace and a default scope (`user_id`, `agent_id`, `session_id`) that its
adds, searches and recalls use unless told otherwise. Text sent without a vector is embedded by the
node (its `--embedder`); pass `embedder=` to embed here instead, before the command is sent. The
client's consistency token makes every read see this client's own writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from agentlog.embedders.base import Embedder

if TYPE_CHECKING:
    from agentlog.client import AgentlogClient

__all__ = ["HistoryEntry", "Memory", "MemoryItem", "MemorySearchHit"]

SearchMode = Literal["vector", "lexical", "hybrid"]
_SCOPE = ("user_id", "agent_id", "session_id")


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """A memory as the node answered it."""

    id: int
    content: str
    memory_type: str
    tags: list[str]
    valid_from: int
    valid_until: int | None
    active: bool
    version: int
    data: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Any) -> MemoryItem:
        """Parse a `MemoryPublic` body."""
        return cls(
            id=int(data["id"]),
            content=str(data["content"]),
            memory_type=str(data["memory_type"]),
            tags=list(data["tags"]),
            valid_from=int(data["valid_from"]),
            valid_until=data["valid_until"],
            active=bool(data["active"]),
            version=int(data["version"]),
            data=dict(data),
        )


@dataclass(frozen=True, slots=True)
class MemorySearchHit:
    """A search hit: the memory, its score, and each leg's (score, rank) or None (why it matched)."""

    memory: MemoryItem
    score: float
    vector: tuple[float, int] | None
    lexical: tuple[float, int] | None

    @classmethod
    def from_json(cls, data: Any) -> MemorySearchHit:
        """Parse one hit of a `SearchResults` body."""

        def leg(value: Any) -> tuple[float, int] | None:
            return None if value is None else (float(value["score"]), int(value["rank"]))

        return cls(
            MemoryItem.from_json(data["memory"]), float(data["score"]), leg(data["vector"]), leg(data["lexical"])
        )


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change of a memory: operation, version, old and new content, reason, who and when (log time)."""

    operation: str
    version: int
    old_content: str | None
    new_content: str
    reason: str | None
    changed_by: str | None
    at_ms: int

    @classmethod
    def from_json(cls, data: Any) -> HistoryEntry:
        """Parse one entry of a history body."""
        return cls(
            operation=str(data["operation"]),
            version=int(data["version"]),
            old_content=data["old_content"],
            new_content=str(data["new_content"]),
            reason=data["reason"],
            changed_by=data["changed_by"],
            at_ms=int(data["at_ms"]),
        )


def _options(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


class Memory:
    """Memories of one namespace through an agentlog client, with a default scope."""

    def __init__(
        self,
        client: AgentlogClient,
        *,
        namespace: str = "default",
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        embedder: Embedder | None = None,
        branch: str | None = None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.scope = _options(user_id=user_id, agent_id=agent_id, session_id=session_id)
        self.embedder = embedder
        self.branch = branch

    # -- plumbing --

    def _call(self, method: str, path: str, parse: Any, *, body: Any = None, write: bool = False, **params: Any) -> Any:
        from agentlog._calls import Call

        params = _options(branch=self.branch, **params)
        read = not write
        return self.client.run(
            Call(method, path, parse, params=params, body=body, write=write, read=read, branch=self.branch)
        )

    def _write(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
        from agentlog.models import WriteResult

        result: WriteResult = self._call(method, path, WriteResult.from_json, body=body, write=True, **params)
        return result.result

    def _vector(self, text: str) -> dict[str, Any]:
        if self.embedder is None:
            return {}
        return {"embedding": self.embedder.embed([text])[0].tolist(), "model_id": self.embedder.model_id}

    # -- writes --

    def add(
        self,
        content: str,
        *,
        memory_type: str = "fact",
        tags: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
        confidence: float = 1.0,
        source: str = "manual",
        valid_from: int | None = None,
        valid_until: int | None = None,
        embedding: Sequence[float] | None = None,
        model_id: str | None = None,
        reason: str | None = None,
        command_id: str | None = None,
        **scope: str,
    ) -> int:
        """Remember `content`; its number in the namespace. `scope` overrides user_id/agent_id/session_id/run_id."""
        body: dict[str, Any] = {"namespace": self.namespace, "content": content, "memory_type": memory_type}
        body |= {"tags": list(tags), "confidence": confidence, "source": source} | self.scope | scope
        body |= _options(metadata=metadata, valid_from=valid_from, valid_until=valid_until, reason=reason)
        body |= _options(command_id=command_id)
        if embedding is not None:
            body |= {"embedding": list(embedding), "model_id": model_id}
        else:
            body |= self._vector(content)
        return int(self._write("POST", "/v1/memories", body)["id"])

    def update(self, memory_id: int, *, reason: str | None = None, **changes: Any) -> int:
        """Change fields of a memory (content, memory_type, tags, metadata, confidence, valid_*); the new version."""
        body: dict[str, Any] = {"namespace": self.namespace, **_options(reason=reason, **changes)}
        if "content" in changes and "embedding" not in changes:
            body |= self._vector(str(changes["content"]))
        return int(self._write("PUT", f"/v1/memories/{int(memory_id)}", body)["version"])

    def forget(self, memory_id: int, *, reason: str | None = None, valid_until: int | None = None) -> bool:
        """Invalidate a memory (it stays, with its history); False if it was already forgotten."""
        params = _options(namespace=self.namespace, reason=reason, valid_until=valid_until)
        return bool(self._write("DELETE", f"/v1/memories/{int(memory_id)}", **params)["invalidated"])

    def index(self, *, lists: int | None = None) -> int:
        """Train (on the node) and log an IVF index of this namespace's vectors; its number of lists."""
        body = {"namespace": self.namespace, **_options(lists=lists)}
        return int(self._write("POST", "/v1/memories/index", body)["lists"])

    # -- reads --

    def get(self, memory_id: int, *, as_of: str | None = None) -> MemoryItem | None:
        """A memory (or None), as it stands or as of a cut or time."""
        from agentlog.errors import NotFoundError

        try:
            return self._call(  # type: ignore[no-any-return]
                "GET", f"/v1/memories/{int(memory_id)}", MemoryItem.from_json, namespace=self.namespace, as_of=as_of
            )
        except NotFoundError:
            return None

    def history(self, memory_id: int, *, as_of: str | None = None) -> list[HistoryEntry]:
        """Every change of a memory, oldest first."""

        def parse(data: Any) -> list[HistoryEntry]:
            return [HistoryEntry.from_json(item) for item in data["items"]]

        return self._call(  # type: ignore[no-any-return]
            "GET", f"/v1/memories/{int(memory_id)}/history", parse, namespace=self.namespace, as_of=as_of
        )

    def search(
        self,
        query: str | None = None,
        *,
        vector: Sequence[float] | None = None,
        mode: SearchMode = "hybrid",
        k: int = 10,
        min_score: float | None = None,
        tags: Sequence[str] = (),
        memory_type: str | None = None,
        valid_at: int | None = None,
        include_invalidated: bool = False,
        exact: bool = False,
        nprobe: int | None = None,
        as_of: str | None = None,
        **scope: str,
    ) -> list[MemorySearchHit]:
        """The k best memories for `query` (and/or `vector`) in this scope, each saying why it matched."""
        body: dict[str, Any] = {"namespace": self.namespace, "mode": mode, "k": k, "tags": list(tags)}
        body |= self.scope | scope | _options(query=query, min_score=min_score, memory_type=memory_type)
        body |= _options(valid_at=valid_at, nprobe=nprobe) | {
            "include_invalidated": include_invalidated,
            "exact": exact,
        }
        if vector is not None:
            body["vector"] = [float(x) for x in vector]
        elif self.embedder is not None and query and mode != "lexical":
            body["vector"] = self.embedder.embed([query])[0].tolist()

        def parse(data: Any) -> list[MemorySearchHit]:
            return [MemorySearchHit.from_json(hit) for hit in data["hits"]]

        return self._call("POST", "/v1/search", parse, body=body, as_of=as_of)  # type: ignore[no-any-return]

    def recall(
        self,
        *,
        tags: Sequence[str] = (),
        memory_type: str | None = None,
        valid_at: int | None = None,
        include_invalidated: bool = False,
        limit: int = 100,
        as_of: str | None = None,
        **scope: str,
    ) -> list[MemoryItem]:
        """Up to `limit` memories of this scope by tags, kind and validity, by number (pages followed)."""
        found: list[MemoryItem] = []
        after = 0
        while len(found) < limit:
            params = _options(memory_type=memory_type, valid_at=valid_at, as_of=as_of) | self.scope | scope
            page = self._call(
                "GET",
                "/v1/memories",
                lambda data: data,
                namespace=self.namespace,
                tags=",".join(tags) or None,
                include_invalidated=include_invalidated,
                limit=min(1000, limit - len(found)),
                after=after,
                **params,
            )
            found.extend(MemoryItem.from_json(item) for item in page["items"])
            if page["next"] is None:
                break
            after = int(page["next"])
        return found
