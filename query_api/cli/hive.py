"""`agentlog channels|agents`: channels (create, list, share, feed, subscribe) and the agent registry."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import click

from agentlog._calls import Call, segment
from agentlog.client import AgentlogClient
from agentlog.errors import AgentlogError
from agentlog.watch import Watch
from query_api.cli.verbs import _echo_json, _json_argument, _with_client

__all__ = ["agents", "channels", "register"]


def _write(method: str, path: str, body: dict[str, Any]) -> Call[Any]:
    return Call(method, path, lambda data: data, body=body, write=True)


def _read(path: str, **params: Any) -> Call[Any]:
    return Call("GET", path, lambda data: data, params=params, read=True)


@click.group()
def channels() -> None:
    """Shared channels: create, list, share a reference, read the feed, subscribe live."""


@channels.command("create")
@click.argument("channel")
@click.option("--private", is_flag=True, help="Only its creator may write to it.")
@click.option("--description", default="")
@_with_client
def channels_create(client: AgentlogClient, channel: str, private: bool, description: str) -> None:
    """Create CHANNEL."""
    body = {"channel": channel, "visibility": "private" if private else "public", "description": description}
    _echo_json(client.run(_write("POST", "/v1/channels", body)))


@channels.command("list")
@_with_client
def channels_list(client: AgentlogClient) -> None:
    """List the tenant's channels."""
    _echo_json(client.run(_read("/v1/channels"))["items"])


@channels.command("share")
@click.argument("channel")
@click.argument("kind")
@click.argument("ref")
@click.option("--note", default="")
@click.option("--data", "data_json", default="null", help="JSON carried with the share.")
@_with_client
def channels_share(client: AgentlogClient, channel: str, kind: str, ref: str, note: str, data_json: str) -> None:
    """Share a reference (KIND: memory, kv, event, ...; REF: its id) to CHANNEL."""
    body = {"kind": kind, "ref": ref, "note": note, "data": _json_argument(data_json, "--data")}
    _echo_json(client.run(_write("POST", f"/v1/channels/{segment(channel)}/share", body)))


@channels.command("feed")
@click.argument("channel")
@click.option("--after", type=click.IntRange(min=0), default=0, help="The last seq already seen.")
@click.option("--limit", type=click.IntRange(1, 1_000), default=100)
@_with_client
def channels_feed(client: AgentlogClient, channel: str, after: int, limit: int) -> None:
    """Print CHANNEL's feed after a seq."""
    _echo_json(client.run(_read(f"/v1/channels/{segment(channel)}/feed", after=after, limit=limit)))


@channels.command("subscribe")
@click.argument("channel", nargs=-1, required=True)
@click.option("--url", envvar="AGENTLOG_URL", default="http://127.0.0.1:8000", show_default=True)
@click.option("--tenant", envvar="AGENTLOG_TENANT", default=None)
@click.option("--api-key", envvar="AGENTLOG_API_KEY", default=None)
@click.option("--after", default=None, help="Resume from this cursor ('' = from the start).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop after this many frames.")
def channels_subscribe(
    channel: tuple[str, ...], url: str, tenant: str | None, api_key: str | None, after: str | None, limit: int | None
) -> None:
    """Stream what is shared to CHANNEL(s), one JSON object a line (resumes by itself on drops)."""
    subscription = Watch(url, channels=channel, after=after, tenant=tenant, api_key=api_key)

    async def stream() -> None:
        count = 0
        async for frame in subscription:
            click.echo(json.dumps(dataclasses.asdict(frame), ensure_ascii=False))
            count += 1
            if limit is not None and count >= limit:
                return

    try:
        asyncio.run(stream())
    except AgentlogError as error:
        raise click.ClickException(str(error)) from error
    except KeyboardInterrupt:
        pass


@click.group()
def agents() -> None:
    """The agent registry: register, heartbeat, list, whoami."""


@agents.command("register")
@click.argument("name")
@click.option("--type", "agent_type", default="agent")
@click.option("--capability", "capabilities", multiple=True)
@_with_client
def agents_register(client: AgentlogClient, name: str, agent_type: str, capabilities: tuple[str, ...]) -> None:
    """Register the calling agent (--agent-id) as NAME."""
    body = {"name": name, "agent_type": agent_type, "capabilities": list(capabilities)}
    _echo_json(client.run(_write("POST", "/v1/agents", body)))


@agents.command("heartbeat")
@click.option("--busy", is_flag=True)
@_with_client
def agents_heartbeat(client: AgentlogClient, busy: bool) -> None:
    """Say the calling agent (--agent-id) is alive."""
    agent_id = client.session.headers.get("X-Agent-Id", "")
    _echo_json(client.run(_write("POST", f"/v1/agents/{segment(agent_id)}/heartbeat", {"busy": busy})))


@agents.command("list")
@_with_client
def agents_list(client: AgentlogClient) -> None:
    """List agents with their status."""
    _echo_json(client.run(_read("/v1/agents"))["items"])


@agents.command("whoami")
@_with_client
def agents_whoami(client: AgentlogClient) -> None:
    """The caller's identity, agent record and channels."""
    _echo_json(client.run(_read("/v1/whoami")))


def register(main: click.Group) -> None:
    """Add the `channels` and `agents` groups to the `agentlog` command."""
    main.add_command(channels)
    main.add_command(agents)
