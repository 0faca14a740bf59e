"""`agentlog watch`: stream what a node applies (a subscription over its WebSocket) as JSON lines."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import click

from agentlog.errors import AgentlogError
from agentlog.watch import Watch

__all__ = ["register", "watch"]


@click.command()
@click.option("--url", envvar="AGENTLOG_URL", default="http://127.0.0.1:8000", show_default=True, help="The node.")
@click.option("--tenant", envvar="AGENTLOG_TENANT", default=None, help="Tenant (open mode) [env AGENTLOG_TENANT].")
@click.option("--api-key", envvar="AGENTLOG_API_KEY", default=None, help="API key [env AGENTLOG_API_KEY].")
@click.option("--run", "runs", multiple=True, help="A run id to follow (repeatable).")
@click.option("--namespace", "namespaces", multiple=True, help="A namespace to follow (repeatable).")
@click.option("--prefix", "prefixes", multiple=True, help="namespace/key-prefix to follow (repeatable).")
@click.option("--after", default=None, help="Resume from this cursor (a cut such as 0:12,1:40; '' = from the start).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop after this many records.")
def watch(
    url: str,
    tenant: str | None,
    api_key: str | None,
    runs: tuple[str, ...],
    namespaces: tuple[str, ...],
    prefixes: tuple[str, ...],
    after: str | None,
    limit: int | None,
) -> None:
    """Print every applied record the subscription matches, one JSON object a line, resuming on drops."""
    subscription = Watch(
        url, runs=runs, namespaces=namespaces, prefixes=prefixes, after=after, tenant=tenant, api_key=api_key
    )

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


def register(main: click.Group) -> None:
    """Add `watch` to the `agentlog` command."""
    main.add_command(watch)
