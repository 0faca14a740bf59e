"""The `agentlog` command line."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sys
from pathlib import Path

import click

from eventlog.errors import LogError
from eventlog.file import FileLog, verify_directory
from eventlog.records import Record
from eventlog.scan import scan
from query_api.cli.audit import register as register_audit
from query_api.cli.hive import register as register_hive
from query_api.cli.memory import register as register_memory
from query_api.cli.replay import register as register_replay
from query_api.cli.tasks import register as register_tasks
from query_api.cli.timemachine import register as register_timemachine
from query_api.cli.verbs import register
from query_api.cli.watch import register as register_watch

__all__ = ["main"]

#: Most records one read of `log dump` asks for.
DUMP_BATCH_RECORDS = 10_000


@click.group()
@click.version_option(package_name="agentlog")
def main() -> None:
    """agentlog: the memory and time machine for AI agents."""


register(main)
register_timemachine(main)
register_replay(main)
register_audit(main)
register_memory(main)
register_watch(main)
register_tasks(main)
register_hive(main)


def serve_log_url(data_dir: Path | None, log_url: str | None) -> str | None:
    """The log URL `serve` was given: `--data DIR` (= file://DIR) or `--log`; both at once only if they agree."""
    if data_dir is None:
        return log_url
    from_data = f"file://{data_dir}"
    if log_url is not None and log_url.rstrip("/") != from_data.rstrip("/"):
        hint = " (on Kafka, snapshots go to --snapshot-dir DIR)" if log_url.startswith("kafka://") else ""
        raise click.UsageError(
            f"--data {data_dir} names the embedded log file://{data_dir}, but --log names {log_url}: "
            f"give one of the two{hint}"
        )
    return from_data


@main.command()
@click.option("--host", default=None, help="Address to listen on [env AGENTLOG_HOST; default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [env AGENTLOG_PORT; default 8000].")
@click.option(
    "--log", "log_url", default=None, help="Log URL: file:///path, memory://, kafka://host:port [env AGENTLOG_LOG]."
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory of the embedded log (shorthand for --log file://DIR; an error beside another --log: "
    "on kafka:// give --snapshot-dir instead).",
)
@click.option("--fsync", default=None, help="always, never or interval:<ms> [env AGENTLOG_FSYNC; default always].")
@click.option("--partitions", type=int, default=None, help="Partitions of the main topic when created [default 8].")
@click.option(
    "--api-keys",
    "api_keys_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON file of API keys; when given, keys decide tenant and identity.",
)
@click.option(
    "--snapshot-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where this node writes snapshots [env AGENTLOG_SNAPSHOT_DIR; default <data>/snapshots, none for kafka://].",
)
@click.option(
    "--embedder",
    default=None,
    help="Embedder for memories sent as text: hashing[:dim], openai:<url>#<model>[#<dim>], fastembed:<model>,"
    " sentence-transformers:<model> or none [env AGENTLOG_EMBEDDER; default hashing].",
)
def serve(
    host: str | None,
    port: int | None,
    log_url: str | None,
    data_dir: Path | None,
    fsync: str | None,
    partitions: int | None,
    api_keys_file: Path | None,
    snapshot_dir: Path | None,
    embedder: str | None,
) -> None:
    """Run a node: the embedded log in ./agentlog-data unless told otherwise."""
    import uvicorn

    from query_api.http.app import create_app
    from query_api.settings import Settings

    overrides: dict[str, object] = {
        "host": host,
        "port": port,
        "log": serve_log_url(data_dir, log_url),
        "fsync": fsync,
        "partitions": partitions,
        "api_keys_file": api_keys_file,
        "snapshot_dir": snapshot_dir,
        "embedder": embedder,
    }
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    click.echo(f"agentlog serving {settings.log} on http://{settings.host}:{settings.port}", err=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        loop=_fastest("uvloop", "uvloop", "asyncio"),
        http=_fastest("httptools", "httptools", "h11"),
    )


def _fastest(module: str, choice: str, fallback: str) -> str:
    """`choice` when `module` imports (uvloop and httptools are dependencies, but not on every platform)."""
    import importlib.util

    return choice if importlib.util.find_spec(module) is not None else fallback


@main.command()
@click.option("--log", "log_url", default=None, help="Log URL, kafka://host:port[,...] [env AGENTLOG_LOG].")
@click.option("--topic", default=None, help="The command topic [env AGENTLOG_TOPIC; default main].")
@click.option("--group", default="agentlog-processors", show_default=True, help="Consumer group (Faust app id).")
@click.option(
    "--replication-factor", type=int, default=None, help="Replicas of Faust's own topics [default: brokers, max 3]."
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Faust's data directory [default: a directory under the system temp dir].",
)
@click.option("--loglevel", default="warning", show_default=True, help="debug, info, warning or error.")
def worker(
    log_url: str | None,
    topic: str | None,
    group: str,
    replication_factor: int | None,
    work_dir: Path | None,
    loglevel: str,
) -> None:
    """Run the derived processors (run summary) as a Faust consumer-group worker over a kafka:// log."""
    from query_api.settings import Settings
    from query_api.worker import WorkerError, run_worker

    overrides: dict[str, object] = {"log": log_url, "topic": topic}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    try:
        run_worker(settings, group=group, replication_factor=replication_factor, work_dir=work_dir, loglevel=loglevel)
    except WorkerError as error:
        raise click.ClickException(str(error)) from error


@main.command()
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="The node's base URL.")
@click.option("--api-key", envvar="AGENTLOG_API_KEY", default=None, help="API key; node-wide detail needs admin.")
def status(url: str, api_key: str | None) -> None:
    """Print a node's applied cut, lag and digests."""
    import httpx

    headers = {} if api_key is None else {"Authorization": f"Bearer {api_key}"}
    try:
        response = httpx.get(f"{url}/v1/status", timeout=10, headers=headers)
    except httpx.HTTPError as error:
        raise click.ClickException(f"cannot reach {url}: {error}") from error
    click.echo(json.dumps(response.json(), indent=2))
    if response.status_code != 200:
        sys.exit(1)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def kafka(args: tuple[str, ...]) -> None:
    """Run local Apache Kafka brokers (KRaft, jars from Maven Central): up [--nodes N] | down | status."""
    from infra.kafka.launcher import main as launcher_main

    sys.exit(launcher_main(list(args)))


@main.group()
def log() -> None:
    """Inspect and check the embedded log's files."""


@log.command("verify")
@click.argument("data_dir", type=click.Path(file_okay=False, path_type=Path))
def log_verify(data_dir: Path) -> None:
    """Check every batch of every segment under DATA_DIR; exit 1 on corruption."""
    try:
        report = verify_directory(data_dir)
    except FileNotFoundError as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"{report.topics} topics, {report.partitions} partitions, {report.segments} segments, "
        f"{report.batches} batches, {report.records} records, {report.bytes} bytes"
    )
    for path, position in report.torn_tails:
        click.echo(f"torn tail: {path} at byte {position} (truncated when the log is next opened)")
    for corruption in report.corruptions:
        click.echo(f"CORRUPT: {corruption.path} at byte {corruption.position}: {corruption.reason}", err=True)
    if not report.ok:
        sys.exit(1)
    click.echo("ok")


@log.command("dump")
@click.argument("data_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--topic", required=True, help="Topic to read.")
@click.option("--partition", type=int, default=0, show_default=True, help="Partition to read.")
@click.option("--from", "offset", type=int, default=0, show_default=True, help="First offset.")
@click.option("--limit", type=int, default=100, show_default=True, help="Most records to print.")
def log_dump(data_dir: Path, topic: str, partition: int, offset: int, limit: int) -> None:
    """Print records of one partition as JSON lines (read-only: works beside a running node)."""
    try:
        records = asyncio.run(_dump(data_dir, topic, partition, offset, limit))
    except LogError as error:
        raise click.ClickException(str(error)) from error
    for record in records:
        click.echo(json.dumps(_record_json(record), ensure_ascii=False))


async def _dump(data_dir: Path, topic: str, partition: int, offset: int, limit: int) -> list[Record]:
    log = await FileLog.open(data_dir, read_only=True)
    try:
        records: list[Record] = []
        if limit < 1:
            return records
        batch_records = min(limit, DUMP_BATCH_RECORDS)
        async with contextlib.aclosing(scan(log, topic, partition, offset, None, batch_records=batch_records)) as found:
            async for record in found:
                records.append(record)
                if len(records) == limit:
                    break
        return records
    finally:
        await log.close()


def _bytes_json(data: bytes | None) -> str | dict[str, str] | None:
    """UTF-8 text as a string; anything else as {"base64": ...}."""
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def _record_json(record: Record) -> dict[str, object]:
    return {
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "key": _bytes_json(record.key),
        "headers": [[name, _bytes_json(value)] for name, value in record.headers],
        "value": _bytes_json(record.value),
    }


if __name__ == "__main__":
    main()
