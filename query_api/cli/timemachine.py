"""`agentlog replay|verify|branch`: rebuild offline to any cut, check a live node's digests, manage branches.

- `agentlog replay DATA_DIR --until CUT|TIME` rebuilds a topic of an embedded log (opened read-only,
  so it works beside a running node) up to a cut (`0:12,3:40`) or a log time (`t:<ms>`, ISO-8601),
  from the newest usable snapshot, with a progress bar; it prints the cut and the digests there.
- `agentlog verify` asks a live node for its applied cut and digests (`GET /v1/status`), rebuilds
  from zero to exactly that cut from the same log (`--data DIR` or `--log URL`), and prints each
  projection as `equal` or `DIFFERENT`; exit 1 on any difference.
- `agentlog branch create|list|show|delete|fork` talk to a node with the SDK client.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import click

from agentlog.client import AgentlogClient
from agentlog.errors import AgentlogError
from eventlog.base import EventLog
from eventlog.errors import LogError
from eventlog.file import FileLog
from eventlog.url import open_log
from projections.cut import CutError, parse_token
from projections.engine import EngineState
from projections.timetravel import ProgressCallback, TimeTravelError, cut_at_time, rebuild
from query_api.cli.verbs import DEFAULT_URL, _echo_json, _with_client
from query_api.node.branches import DEFAULT_TENANT, MAIN, BranchError, cut_token, parse_as_of, tenant_branch_prefix

__all__ = ["branch", "compare_digests", "register", "replay", "verify"]

#: What `verify` prints for a projection whose rebuilt digest matches the live one, and for one that does not.
EQUAL: Final = "equal"
DIFFERENT: Final = "DIFFERENT"


def compare_digests(live: Mapping[str, str], rebuilt: Mapping[str, str]) -> list[tuple[str, bool]]:
    """Each projection named by either side, sorted, with whether both sides have it with the same digest."""
    return [(name, name in live and live.get(name) == rebuilt.get(name)) for name in sorted({*live, *rebuilt})]


@contextmanager
def _progress(label: str) -> Iterator[ProgressCallback]:
    """A progress callback drawing a click progress bar on stderr (created on the first report)."""
    bars: list[Any] = []

    def report(done: int, total: int) -> None:
        if not bars:
            bar = click.progressbar(length=max(total, 1), label=label, file=sys.stderr)
            bars.append(bar.__enter__())
        bars[0].update(done - bars[0].pos)

    try:
        yield report
    finally:
        for bar in bars:
            bar.__exit__(None, None, None)


async def _open_read_only(data_dir: Path | None, log_url: str | None) -> EventLog:
    """The log to rebuild from: an embedded directory read-only, or a log URL (file URLs read-only too)."""
    if data_dir is None and log_url is not None and log_url.startswith("file://"):
        data_dir = Path(log_url.removeprefix("file://"))
    if data_dir is not None:
        return await FileLog.open(data_dir, read_only=True)
    if log_url is None:
        raise click.UsageError("give --data DIR (embedded log) or --log URL (the node's log)")
    if log_url.startswith("memory://"):
        raise click.UsageError("an in-memory log lives only inside its node: there is nothing to rebuild from")
    return await open_log(log_url)


async def _cut_of(log: EventLog, topic: str, until: str | None) -> list[int]:
    """The cut `--until` names on `topic` (default: the log's end)."""
    if until is None:
        return await log.end_offsets(topic)
    try:
        parsed = parse_as_of(until, log.topic(topic).partitions)
    except BranchError as error:
        raise click.BadParameter(error.detail, param_hint="--until") from error
    return await cut_at_time(log, topic, parsed) if isinstance(parsed, int) else parsed


async def _replay(
    data_dir: Path, topic: str, until: str | None, use_snapshots: bool, progress: ProgressCallback
) -> tuple[list[int], EngineState]:
    log = await FileLog.open(data_dir, read_only=True)
    try:
        cut = await _cut_of(log, topic, until)
        snapshot_dir = data_dir / "snapshots" if use_snapshots else None
        return cut, await rebuild(log, topic, cut, snapshot_dir, progress)
    finally:
        await log.close()


def _topic(topic: str, branch_name: str | None, tenant: str = DEFAULT_TENANT) -> str:
    """The topic of `tenant`'s `--branch` if given, else `--topic`."""
    if branch_name is None or branch_name == MAIN:
        return topic
    return tenant_branch_prefix(tenant) + branch_name


@click.command()
@click.argument("data_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--until", default=None, help="A cut (0:12,3:40), t:<ms> or an ISO-8601 time [default: the log's end].")
@click.option("--topic", default=MAIN, show_default=True, help="The main topic to rebuild.")
@click.option("--branch", "branch_name", default=None, help="Rebuild this branch of --tenant instead.")
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True, help="The tenant whose --branch it is.")
@click.option(
    "--trust-snapshots",
    is_flag=True,
    default=False,
    help="Start from a snapshot in DATA_DIR/snapshots. Loading a snapshot runs code from it: give this only for "
    "a directory you trust. Default: rebuild from the log alone.",
)
@click.option("--no-snapshots", "no_snapshots", is_flag=True, hidden=True, help="The default; kept for scripts.")
def replay(
    data_dir: Path,
    until: str | None,
    topic: str,
    branch_name: str | None,
    tenant: str,
    trust_snapshots: bool,
    no_snapshots: bool,
) -> None:
    """Rebuild a topic of the embedded log in DATA_DIR up to --until (read-only); print the cut and digests."""
    if trust_snapshots and no_snapshots:
        raise click.UsageError("--trust-snapshots and --no-snapshots contradict each other")
    topic = _topic(topic, branch_name, tenant)
    with _progress(f"replaying {topic}") as progress:
        try:
            cut, state = asyncio.run(_replay(data_dir, topic, until, trust_snapshots, progress))
        except (LogError, TimeTravelError) as error:
            raise click.ClickException(str(error)) from error
    click.echo(json.dumps({"topic": topic, "cut": cut, "token": cut_token(cut), "digests": state.digests()}, indent=2))


async def _rebuild_at(
    data_dir: Path | None, log_url: str | None, topic: str, cut: list[int], progress: ProgressCallback
) -> EngineState:
    log = await _open_read_only(data_dir, log_url)
    try:
        return await rebuild(log, topic, cut, None, progress)
    finally:
        await log.close()


@click.command()
@click.option(
    "--url", envvar="AGENTLOG_URL", default=DEFAULT_URL, show_default=True, help="The node [env AGENTLOG_URL]."
)
@click.option(
    "--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Its data directory."
)
@click.option("--log", "log_url", default=None, help="Its log URL (file:///path, kafka://host:port).")
@click.option("--branch", "branch_name", default=MAIN, show_default=True, help="The branch to verify.")
@click.option("--api-key", envvar="AGENTLOG_API_KEY", default=None, help="An admin key [env AGENTLOG_API_KEY].")
def verify(url: str, data_dir: Path | None, log_url: str | None, branch_name: str, api_key: str | None) -> None:
    """Rebuild from zero to the node's applied cut and compare digests; exit 1 on any difference."""
    if data_dir is None and log_url is None:
        raise click.UsageError("give --data DIR (embedded log) or --log URL (the node's log)")
    try:
        with AgentlogClient(url, api_key=api_key) as client:
            status = client.status(branch=None if branch_name == MAIN else branch_name)
    except AgentlogError as error:
        raise click.ClickException(f"{url}: {error.detail} ({error.code})") from error
    topic, token, live = status["topic"], status["token"], status["digests"]
    partitions = len(status["partitions"])
    try:
        named = parse_token(token, partitions)
    except CutError as error:
        raise click.ClickException(f"the node answered a malformed token {token!r}: {error}") from error
    cut = [named.get(p, 0) for p in range(partitions)]
    click.echo(f"{url} ({topic}) applied {cut_token(cut)}; rebuilding from zero", err=True)
    with _progress(f"rebuilding {topic}") as progress:
        try:
            state = asyncio.run(_rebuild_at(data_dir, log_url, topic, cut, progress))
        except (LogError, TimeTravelError) as error:
            raise click.ClickException(str(error)) from error
    rows = compare_digests(live, state.digests())
    for name, equal in rows:
        click.echo(f"{name:<12} {EQUAL if equal else DIFFERENT}")
    if not all(equal for _, equal in rows):
        sys.exit(1)


# -- branch ---------------------------------------------------------------------------------------


@click.group()
def branch() -> None:
    """Make, list, show and delete branches; fork a run."""


def _time_ms(text: str) -> int:
    """A log time option: milliseconds, `t:<ms>` or ISO-8601."""
    if text.isdigit():
        return int(text)
    try:
        parsed = parse_as_of(text, 1)
    except BranchError as error:
        raise click.BadParameter(error.detail, param_hint="--time") from error
    if not isinstance(parsed, int):
        raise click.BadParameter("a time, not a cut", param_hint="--time")
    return parsed


@branch.command("create")
@click.argument("name")
@click.option("--from", "parent", default=None, help="The parent branch [default: main].")
@click.option("--cut", default=None, help="Fork at this cut (0:12,3:40).")
@click.option("--time", "time_text", default=None, help="Fork at this log time (ms, t:<ms> or ISO-8601).")
@click.option("--run", "run_id", default=None, help="Fork just after event --seq of this run.")
@click.option("--seq", type=click.IntRange(min=1), default=None, help="The run's event seq.")
@_with_client
def branch_create(
    client: AgentlogClient,
    name: str,
    parent: str | None,
    cut: str | None,
    time_text: str | None,
    run_id: str | None,
    seq: int | None,
) -> None:
    """Make branch NAME (default: at what the parent has applied); print it."""
    if (run_id is None) != (seq is None):
        raise click.UsageError("--run and --seq go together")
    time_ms = None if time_text is None else _time_ms(time_text)
    if (cut is not None) + (time_ms is not None) + (run_id is not None) > 1:
        raise click.UsageError("give one of --cut, --time, or --run with --seq")
    _echo_json(client.create_branch(name, parent, cut=cut, time_ms=time_ms, run_id=run_id, seq=seq))


@branch.command("list")
@_with_client
def branch_list(client: AgentlogClient) -> None:
    """Print main and every branch, by name."""
    _echo_json(client.list_branches())


@branch.command("show")
@click.argument("name")
@_with_client
def branch_show(client: AgentlogClient, name: str) -> None:
    """Print branch NAME (exit 1 if absent)."""
    found = client.get_branch(name)
    if found is None:
        raise click.ClickException(f"no branch {name!r} (branch_not_found, HTTP 404)")
    _echo_json(found)


@branch.command("delete")
@click.argument("name")
@_with_client
def branch_delete(client: AgentlogClient, name: str) -> None:
    """Delete branch NAME and its own records (refused while branches of it exist)."""
    _echo_json(client.delete_branch(name))


@branch.command("fork")
@click.argument("run_id", metavar="RUN")
@click.argument("seq", type=click.IntRange(min=1))
@click.option("--from", "source", default=None, help="The branch the run is on [default: main].")
@click.option("--name", "new_branch", default=None, help="The new branch's name [default: made from RUN].")
@click.option("--new-run-id", default=None, help="Also begin this run on the new branch.")
@_with_client
def branch_fork(
    client: AgentlogClient, run_id: str, seq: int, source: str | None, new_branch: str | None, new_run_id: str | None
) -> None:
    """Fork RUN onto a new branch just after its event SEQ; print the fork."""
    _echo_json(client.fork_run(run_id, seq, new_run_id=new_run_id, new_branch=new_branch, branch=source))


def register(main: click.Group) -> None:
    """Add `replay`, `verify` and the `branch` group to the `agentlog` command."""
    for command in (replay, verify, branch):
        main.add_command(command)
