"""`agentlog memory add|search|show|history|forget|list|index`: memories of a running node, printed as JSON.

The connection options are those of the other verbs (`--url`, `--tenant`, `--agent-id`,
`--api-key`, with their `AGENTLOG_*` variables). Text is embedded by the node's `--embedder`.
"""

from __future__ import annotations

from typing import Any

import click

from agentlog._calls import Call
from agentlog.client import AgentlogClient
from query_api.cli.verbs import _echo_json, _json_object_option, _with_client

__all__ = ["memory", "register"]

_MEMORY_TYPES = ("fact", "episodic", "procedural", "semantic")


def _raw(data: Any) -> Any:
    return data


def _options(**values: Any) -> dict[str, Any]:
    """The values given, with `owner_agent` (the scope's agent; `--agent-id` is the writer) as `agent_id`."""
    if "owner_agent" in values:
        values["agent_id"] = values.pop("owner_agent")
    return {name: value for name, value in values.items() if value not in (None, (), [])}


def _run(
    client: AgentlogClient, method: str, path: str, *, body: Any = None, write: bool = False, **params: Any
) -> Any:
    call = Call(method, path, _raw, params=_options(**params), body=body, write=write, read=not write)
    return client.run(call)


_namespace = click.option("--namespace", default="default", show_default=True, help="Namespace of the memories.")
_as_of = click.option("--as-of", default=None, help="Read as of a cut (`0:12,3:40`) or a time (`t:<ms>`, ISO-8601).")


@click.group()
def memory() -> None:
    """Remember, search, show, list and forget memories (with their history)."""


@memory.command("add")
@click.argument("content")
@_namespace
@click.option("--user", "user_id", default=None, help="The user it is about.")
@click.option("--agent", "owner_agent", default=None, help="The agent it belongs to (scope, not the writer).")
@click.option("--session", "session_id", default=None, help="The session it came from.")
@click.option("--type", "memory_type", type=click.Choice(_MEMORY_TYPES), default="fact", show_default=True)
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--metadata", "metadata_json", default=None, help="Metadata as a JSON object.")
@click.option("--valid-from", type=click.IntRange(min=0), default=None, help="World time it became true (ms).")
@click.option("--valid-until", type=click.IntRange(min=0), default=None, help="World time it stopped (ms).")
@_with_client
def memory_add(client: AgentlogClient, content: str, namespace: str, metadata_json: str | None, **fields: Any) -> None:
    """Remember CONTENT; prints the write (the memory's number is `result.id`)."""
    body = {"content": content, "namespace": namespace, **_options(**fields)}
    body |= _options(metadata=_json_object_option(metadata_json, "--metadata"))
    body["tags"] = list(fields["tags"])
    _echo_json(_run(client, "POST", "/v1/memories", body=body, write=True))


@memory.command("search")
@click.argument("query")
@_namespace
@click.option("--mode", type=click.Choice(("hybrid", "vector", "lexical")), default="hybrid", show_default=True)
@click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many hits.")
@click.option("--user", "user_id", default=None, help="Only memories about this user.")
@click.option("--agent", "owner_agent", default=None, help="Only memories of this agent (scope).")
@click.option("--tag", "tags", multiple=True, help="Only memories with this tag (repeatable: all of them).")
@click.option("--valid-at", type=click.IntRange(min=0), default=None, help="World time (ms): what was true then.")
@_as_of
@_with_client
def memory_search(client: AgentlogClient, query: str, as_of: str | None, **fields: Any) -> None:
    """Search memories for QUERY; each hit says its score per leg (vector, lexical)."""
    body = {"query": query, **_options(**fields), "tags": list(fields["tags"])}
    _echo_json(_run(client, "POST", "/v1/search", body=body, as_of=as_of))


@memory.command("show")
@click.argument("memory_id", type=click.IntRange(min=1))
@_namespace
@_as_of
@_with_client
def memory_show(client: AgentlogClient, memory_id: int, namespace: str, as_of: str | None) -> None:
    """Print memory MEMORY_ID (exit 1 if absent)."""
    _echo_json(_run(client, "GET", f"/v1/memories/{memory_id}", namespace=namespace, as_of=as_of))


@memory.command("history")
@click.argument("memory_id", type=click.IntRange(min=1))
@_namespace
@_as_of
@_with_client
def memory_history(client: AgentlogClient, memory_id: int, namespace: str, as_of: str | None) -> None:
    """Print every change of memory MEMORY_ID: operation, old/new content, reason, who, when."""
    _echo_json(_run(client, "GET", f"/v1/memories/{memory_id}/history", namespace=namespace, as_of=as_of))


@memory.command("forget")
@click.argument("memory_id", type=click.IntRange(min=1))
@_namespace
@click.option("--reason", default=None, help="Why it is no longer true.")
@_with_client
def memory_forget(client: AgentlogClient, memory_id: int, namespace: str, reason: str | None) -> None:
    """Invalidate memory MEMORY_ID (it stays in the history, no longer valid from now)."""
    _echo_json(_run(client, "DELETE", f"/v1/memories/{memory_id}", write=True, namespace=namespace, reason=reason))


@memory.command("list")
@_namespace
@click.option("--user", "user_id", default=None, help="Only memories about this user.")
@click.option("--tag", "tags", multiple=True, help="Only memories with this tag (repeatable: all of them).")
@click.option("--all", "include_invalidated", is_flag=True, help="Forgotten memories too.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@_as_of
@_with_client
def memory_list(client: AgentlogClient, tags: tuple[str, ...], **params: Any) -> None:
    """Recall memories by scope and tags, by number."""
    _echo_json(_run(client, "GET", "/v1/memories", tags=",".join(tags) or None, **params))


@memory.command("index")
@_namespace
@click.option("--lists", type=click.IntRange(1, 1024), default=None, help="Lists of the index [default: about √n].")
@_with_client
def memory_index(client: AgentlogClient, namespace: str, lists: int | None) -> None:
    """Train an IVF index of the namespace's vectors on the node and log it (approximate vector search)."""
    body = {"namespace": namespace, **_options(lists=lists)}
    _echo_json(_run(client, "POST", "/v1/memories/index", body=body, write=True))


def register(main: click.Group) -> None:
    """Add the `memory` group to the `agentlog` command."""
    main.add_command(memory)
