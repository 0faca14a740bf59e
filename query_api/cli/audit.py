"""`agentlog audit`: the denials write barriers made (from a node), and the offline check of the log's hash chains."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from projections.chain import ChainReport

__all__ = ["register"]

DEFAULT_URL = "http://127.0.0.1:8000"


@click.group()
def audit() -> None:
    """Governance: barrier denials, tamper evidence."""


@audit.command("denials")
@click.option(
    "--url", envvar="AGENTLOG_URL", default=DEFAULT_URL, show_default=True, help="The node [env AGENTLOG_URL]."
)
@click.option("--api-key", envvar="AGENTLOG_API_KEY", default=None, help="An admin key [env AGENTLOG_API_KEY].")
@click.option("--tenant", envvar="AGENTLOG_TENANT", default=None, help="Tenant (open mode) [env AGENTLOG_TENANT].")
@click.option("--namespace", default=None, help="Only this namespace's denials.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=1_000, show_default=True, help="Newest N denials.")
def denials(url: str, api_key: str | None, tenant: str | None, namespace: str | None, limit: int) -> None:
    """Print the writes barriers denied, one JSON object a line, oldest first; exit 1 on an error."""
    import httpx

    headers = {}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    if tenant is not None:
        headers["X-Tenant"] = tenant
    params: dict[str, str | int] = {"limit": limit}
    if namespace is not None:
        params["namespace"] = namespace
    try:
        response = httpx.get(f"{url}/v1/audit/denials", params=params, headers=headers, timeout=30)
    except httpx.HTTPError as error:
        raise click.ClickException(f"cannot reach {url}: {error}") from error
    if response.status_code != 200:
        click.echo(response.text, err=True)
        sys.exit(1)
    for item in response.json()["items"]:
        click.echo(json.dumps(item, ensure_ascii=False, sort_keys=True))


@audit.command("verify")
@click.argument("data_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--topic", default="main", show_default=True, help="The topic whose chains to check.")
def verify(data_dir: Path, topic: str) -> None:
    """Recompute each partition's hash chain from DATA_DIR's log (read-only); name the first record that breaks it.

    Each record's hash is compared with the one the node recorded in DATA_DIR/audit when it applied
    it; exit 1 when any differs (a record rewritten after it was applied, checksum or not).
    """
    from eventlog.errors import LogError

    try:
        report = asyncio.run(_verify(data_dir, topic))
    except LogError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{topic}: {report.records} records, {report.anchored} with a recorded chain hash")
    for partition, head in enumerate(report.heads):
        click.echo(f"partition {partition}: head {head}")
    for broken in report.breaks:
        click.echo(
            f"BROKEN: partition {broken.partition} offset {broken.offset}: the record's chain hash is "
            f"{broken.computed}, the node recorded {broken.recorded} when it applied it",
            err=True,
        )
    if not report.ok:
        sys.exit(1)
    click.echo("ok")


async def _verify(data_dir: Path, topic: str) -> ChainReport:
    from eventlog.file import FileLog
    from projections.chain import verify_chain

    log = await FileLog.open(data_dir, read_only=True)
    try:
        return await verify_chain(log, data_dir, topic)
    finally:
        await log.close()


def register(main: click.Group) -> None:
    """Add the `audit` group to the CLI."""
    main.add_command(audit)
