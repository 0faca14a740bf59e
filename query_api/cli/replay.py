"""`agentlog cassette|harness|diff|export|import`: run replay testing, diffs, and log export/import.

- `agentlog cassette RUN` prints the run's recorded commands; `agentlog harness RUN --agent
  module:function` replays that agent against the recording (an `async def` agent gets a
  `Recorder`, a plain one a `SyncRecorder`), prints the report and exits 1 at a divergence.
  (`agentlog replay` is the offline rebuild to a cut, in `query_api.cli.timemachine`.)
- `agentlog diff --run-a A --run-b B` / `--cut-a CUT [--cut-b CUT]` prints `GET /v1/diff`.
- `agentlog export SOURCE|--url URL [--from CUT] [--to CUT] [--format jsonl|parquet] [-o FILE]`:
  SOURCE is a data directory (opened read-only, so it works beside a running node) or a log URL;
  `--url` exports the caller's tenant from a running node (`GET /v1/log`).
- `agentlog import FILE --data DIR`: re-append an export into a fresh embedded log, keeping the
  exported timestamps (see `projections.export`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO, Final

import click
import httpx

from agentlog._calls import Call
from agentlog.client import AgentlogClient
from agentlog.replay import cassette_call, fetch_cassette_sync, replay_run, replay_run_sync
from agentlog.replay.cassette import CASSETTE_LIMIT
from eventlog.base import EventLog
from eventlog.errors import LogError
from projections.cut import CutError, parse_token
from projections.export import ExportError, export_lines, import_to_directory, write_parquet
from query_api.cli.verbs import _echo_json, _with_client

__all__ = ["cassette", "diff", "export", "harness", "import_log", "register"]

#: Timeout of the streaming export from a node (a large log takes long).
EXPORT_TIMEOUT_S: Final = 600.0


def _json_object(data: Any) -> dict[str, Any]:
    """The answer as a JSON object."""
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _load_agent(target: str) -> Callable[..., Any]:
    """The function `module:attribute` names (the current directory is importable, as for uvicorn)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise click.BadParameter("expected module:function", param_hint="--agent")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as error:
        raise click.BadParameter(f"cannot load {target}: {error}", param_hint="--agent") from error
    if not callable(found):
        raise click.BadParameter(f"{target} is not callable", param_hint="--agent")
    agent: Callable[..., Any] = found
    return agent


@click.command()
@click.argument("run_id", metavar="RUN")
@click.option("--branch", default=None, help="The branch the run is on [default main].")
@_with_client
def cassette(client: AgentlogClient, run_id: str, branch: str | None) -> None:
    """Print RUN's cassette: its commands in order, with positions, outcomes and event seqs."""
    params = {"branch": branch, "limit": CASSETTE_LIMIT}
    _echo_json(client.run(Call("GET", cassette_call(run_id).path, _json_object, params=params, read=True)))


@click.command()
@click.argument("run_id", metavar="RUN")
@click.option("--agent", "agent_target", required=True, help="The agent to replay: module:function.")
@click.option("--branch", default=None, help="The branch the run is on [default main].")
@click.option("--json", "as_json", is_flag=True, help="Print the replay report as JSON.")
@_with_client
def harness(client: AgentlogClient, run_id: str, agent_target: str, branch: str | None, as_json: bool) -> None:
    """Replay --agent against RUN's recording (no tool or model is called); exit 1 at the first divergence.

    An `async def` agent gets a `Recorder`, a plain function a `SyncRecorder` (see `agentlog.replay`).
    """
    agent = _load_agent(agent_target)
    if inspect.iscoroutinefunction(agent):
        steps = fetch_cassette_sync(client, run_id, branch=branch)
        report = asyncio.run(replay_run(None, run_id, agent, cassette=steps, branch=branch))
    else:
        report = replay_run_sync(client, run_id, agent, branch=branch)
    if as_json:
        _echo_json({**dataclasses.asdict(report), "ok": report.ok})
    else:
        click.echo(str(report))
    if not report.ok:
        sys.exit(1)


@click.command()
@click.option("--run-a", default=None, help="First run of a run diff.")
@click.option("--run-b", default=None, help="Second run of a run diff.")
@click.option("--cut-a", default=None, help="First cut of a cut diff: a token p:o,... or t:<ms>.")
@click.option("--cut-b", default=None, help="Second cut (default: the node's live state).")
@click.option("--branch", default=None, help="Branch of run A / cut A [default main].")
@click.option("--branch-b", default=None, help="Branch of run B / cut B [default: --branch].")
@click.option("--limit", type=click.IntRange(1, 10_000), default=1_000, show_default=True, help="Changes listed.")
@_with_client
def diff(
    client: AgentlogClient,
    run_a: str | None,
    run_b: str | None,
    cut_a: str | None,
    cut_b: str | None,
    branch: str | None,
    branch_b: str | None,
    limit: int,
) -> None:
    """Diff two runs (events by seq, first divergence, differing writes) or the state at two cuts."""
    params = {"run_a": run_a, "run_b": run_b, "cut_a": cut_a, "cut_b": cut_b, "limit": limit}
    params |= {"branch": branch, "branch_b": branch_b}
    _echo_json(client.run(Call("GET", "/v1/diff", _json_object, params=params, read=True)))


async def _open_source(source: str) -> EventLog:
    """A data directory (read-only) or a log URL."""
    from eventlog.file import FileLog
    from eventlog.url import open_log

    if "://" not in source:
        return await FileLog.open(Path(source), read_only=True)
    if source.startswith("file://"):
        return await FileLog.open(Path(source.removeprefix("file://")), read_only=True)
    return await open_log(source)


def _cut(token: str | None, partitions: int, what: str) -> list[int] | None:
    """A `--from`/`--to` token as one offset per partition (None: not given)."""
    if token is None:
        return None
    try:
        required = parse_token(token, partitions)
    except CutError as error:
        raise click.BadParameter(str(error), param_hint=what) from error
    return [required.get(p, 0) for p in range(partitions)]


async def _source_lines(source: str, topic: str, start: str | None, end: str | None) -> AsyncIterator[bytes]:
    """The export lines of a local data directory or log URL."""
    log = await _open_source(source)
    try:
        partitions = log.topic(topic).partitions
        async for line in export_lines(log, topic, _cut(start, partitions, "--from"), _cut(end, partitions, "--to")):
            yield line
    finally:
        await log.close()


async def _write(lines: AsyncIterator[bytes], fmt: str, output: Path | None) -> int:
    """Write an export stream as Parquet to `output`, or as JSON lines to `output` or stdout; the records written."""
    if fmt == "parquet":
        assert output is not None
        return await write_parquet(lines, output)
    sink: BinaryIO = click.get_binary_stream("stdout") if output is None else output.open("wb")
    count = -1
    try:
        async for line in lines:
            sink.write(line)
            count += 1
        sink.flush()
    finally:
        if output is not None:
            sink.close()
    return max(count, 0)


async def _http_lines(client: AgentlogClient, start: str | None, end: str | None) -> AsyncIterator[bytes]:
    """The export lines `GET /v1/log` streams for the caller's tenant, header first."""
    params = {key: value for key, value in (("from", start), ("to", end)) if value is not None}
    params["header"] = "true"
    params["limit"] = "10000000"
    async with (
        httpx.AsyncClient(base_url=client.base_url, headers=client.session.headers, timeout=EXPORT_TIMEOUT_S) as http,
        http.stream("GET", "/v1/log", params=params) as response,
    ):
        if response.status_code != 200:
            body = (await response.aread()).decode("utf-8", "replace")
            raise click.ClickException(f"GET /v1/log answered {response.status_code}: {body[:2000]}")
        async for line in response.aiter_lines():
            if line:
                yield line.encode() + b"\n"


@click.command()
@click.argument("source", required=False)
@click.option("--url", default=None, help="Export the caller's tenant from this node instead (GET /v1/log).")
@click.option("--tenant", default=None, help="Tenant for --url (open mode).")
@click.option("--api-key", envvar="AGENTLOG_API_KEY", default=None, help="API key for --url [env AGENTLOG_API_KEY].")
@click.option("--topic", default="main", show_default=True, help="Topic to export (a branch is branch.NAME).")
@click.option("--from", "start", default=None, help="First cut (token p:o,...; omitted partitions from 0).")
@click.option("--to", "end", default=None, help="Cut to stop before (default: the end of the log).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File [stdout].")
def export(
    source: str | None,
    url: str | None,
    tenant: str | None,
    api_key: str | None,
    topic: str,
    start: str | None,
    end: str | None,
    fmt: str,
    output: Path | None,
) -> None:
    """Export a range of the log as JSON lines (header line first) or Parquet, from SOURCE or a node."""
    if (source is None) == (url is None):
        raise click.UsageError("name a SOURCE (data directory or log URL) or --url, not both")
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs --output FILE")
    try:
        if url is not None:
            with AgentlogClient(url, tenant=tenant, api_key=api_key) as client:
                count = asyncio.run(_write(_http_lines(client, start, end), fmt, output))
        else:
            assert source is not None
            count = asyncio.run(_write(_source_lines(source, topic, start, end), fmt, output))
    except (ExportError, LogError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"exported {count} records", err=True)


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory of the fresh embedded log to import into.",
)
@click.option("--topic", default=None, help="Topic to create [default: the export's].")
def import_log(file: Path, data_dir: Path, topic: str | None) -> None:
    """Re-append an export (JSON lines) into a fresh embedded log, keeping partitions, order and timestamps."""
    try:
        if str(file) == "-":
            result = asyncio.run(import_to_directory(data_dir, click.get_binary_stream("stdin"), topic=topic))
        else:
            with file.open("rb") as stream:
                result = asyncio.run(import_to_directory(data_dir, stream, topic=topic))
    except (ExportError, LogError, OSError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps(dataclasses.asdict(result)))


def register(main: click.Group) -> None:
    """Add `cassette`, `harness`, `diff`, `export` and `import` to the `agentlog` command."""
    for command in (cassette, harness, diff, export, import_log):
        main.add_command(command)
