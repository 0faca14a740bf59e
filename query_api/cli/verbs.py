"""`agentlog kv|runs|events`: talk to a running node with the SDK client; answers print as JSON.

Every verb takes `--url` (env `AGENTLOG_URL`, default http://127.0.0.1:8000), `--tenant`
(`AGENTLOG_TENANT`), `--agent-id` (`AGENTLOG_AGENT_ID`) and `--api-key` (`AGENTLOG_API_KEY`).
A failed call prints the node's problem detail and exits 1; a malformed argument is a usage error
(exit 2). JSON arguments may be `-` to read the JSON from stdin.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from collections.abc import Callable
from typing import Any, Final, cast

import click

from agentlog.client import AgentlogClient
from agentlog.errors import AgentlogError
from agentlog.models import RunStatus

__all__ = ["events", "kv", "register", "runs"]

#: Where verbs connect when neither `--url` nor `AGENTLOG_URL` says.
DEFAULT_URL: Final = "http://127.0.0.1:8000"
#: The statuses a run can end with.
END_STATUSES: Final = ("succeeded", "failed", "cancelled")
#: The statuses runs can be listed by.
RUN_STATUSES: Final = ("running", *END_STATUSES)


def _echo_json(value: Any) -> None:
    """Print a dataclass, list or JSON value as indented JSON."""
    click.echo(json.dumps(_plain(value), indent=2, ensure_ascii=False))


def _plain(value: Any) -> Any:
    """A JSON-ready copy: dataclasses become objects, lists and dicts are walked."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _json_argument(text: str, what: str) -> Any:
    """Parse a JSON argument (`-` reads stdin); a usage error names the argument when it is not JSON."""
    if text == "-":
        text = click.get_text_stream("stdin").read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint=what) from error


def _json_object_option(text: str | None, what: str) -> dict[str, Any] | None:
    """Parse an optional JSON object option."""
    if text is None:
        return None
    value = _json_argument(text, what)
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=what)
    return value


def _failure(error: AgentlogError) -> click.ClickException:
    """The exit-1 error for a failed call: the problem's detail, code, status and extra members."""
    where = f"HTTP {error.status}" if error.status else "no answer"
    message = f"{error.detail} ({error.code}, {where})"
    extras = {name: value for name, value in error.extra.items() if name != "write"}
    if extras:
        message += " " + json.dumps(extras, ensure_ascii=False, sort_keys=True)
    return click.ClickException(message)


def _with_client(command: Callable[..., None]) -> Callable[..., None]:
    """Add the connection options to a verb and pass it a client as its first argument (closed after)."""

    @click.option(
        "--url",
        envvar="AGENTLOG_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="The node's base URL [env AGENTLOG_URL].",
    )
    @click.option("--tenant", envvar="AGENTLOG_TENANT", default=None, help="Tenant (open mode) [env AGENTLOG_TENANT].")
    @click.option(
        "--agent-id", envvar="AGENTLOG_AGENT_ID", default=None, help="Writer identity [env AGENTLOG_AGENT_ID]."
    )
    @click.option("--api-key", envvar="AGENTLOG_API_KEY", default=None, help="API key [env AGENTLOG_API_KEY].")
    @functools.wraps(command)
    def verb(url: str, tenant: str | None, agent_id: str | None, api_key: str | None, **arguments: Any) -> None:
        with AgentlogClient(url, tenant=tenant, agent_id=agent_id, api_key=api_key) as client:
            try:
                command(client, **arguments)
            except AgentlogError as error:
                raise _failure(error) from error

    return verb


# -- kv -------------------------------------------------------------------------------------------


@click.group()
def kv() -> None:
    """Read and write KV records of a namespace."""


@kv.command("get")
@click.argument("namespace")
@click.argument("key")
@_with_client
def kv_get(client: AgentlogClient, namespace: str, key: str) -> None:
    """Print the record at KEY of NAMESPACE (exit 1 if absent)."""
    record = client.kv_get(namespace, key)
    if record is None:
        raise click.ClickException(f"no key {key!r} in namespace {namespace!r} (not_found, HTTP 404)")
    _echo_json(record)


@kv.command("put")
@click.argument("namespace")
@click.argument("key")
@click.argument("value_json", metavar="JSON")
@click.option("--ttl-s", type=click.IntRange(min=1), default=None, help="Expire this many seconds after the write.")
@click.option("--metadata", "metadata_json", default=None, help="Metadata as a JSON object.")
@click.option(
    "--if-version", type=click.IntRange(min=0), default=None, help="Only at this version (0: must not exist)."
)
@click.option("--run-id", default=None, help="The run this write belongs to.")
@_with_client
def kv_put(
    client: AgentlogClient,
    namespace: str,
    key: str,
    value_json: str,
    ttl_s: int | None,
    metadata_json: str | None,
    if_version: int | None,
    run_id: str | None,
) -> None:
    """Write the JSON value at KEY of NAMESPACE; print the write (version, position, token)."""
    value = _json_argument(value_json, "JSON")
    metadata = _json_object_option(metadata_json, "--metadata")
    _echo_json(
        client.kv_put(namespace, key, value, metadata=metadata, ttl_s=ttl_s, if_version=if_version, run_id=run_id)
    )


@kv.command("delete")
@click.argument("namespace")
@click.argument("key")
@click.option("--if-version", type=click.IntRange(min=0), default=None, help="Only at this version.")
@_with_client
def kv_delete(client: AgentlogClient, namespace: str, key: str, if_version: int | None) -> None:
    """Delete KEY of NAMESPACE; print the write (`deleted` says whether it existed)."""
    _echo_json(client.kv_delete(namespace, key, if_version=if_version))


@kv.command("list")
@click.argument("namespace")
@click.option("--prefix", default="", help="Only keys starting with this.")
@click.option("--cursor", default=None, help="`next_cursor` of the previous page.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Records per page.")
@_with_client
def kv_list(client: AgentlogClient, namespace: str, prefix: str, cursor: str | None, limit: int) -> None:
    """Print one page of NAMESPACE's records in key order, with `next_cursor`."""
    _echo_json(client.kv_list(namespace, prefix, cursor, limit))


# -- runs -----------------------------------------------------------------------------------------


@click.group()
def runs() -> None:
    """Begin, end, list, show and verify runs."""


@runs.command("list")
@click.option("--status", type=click.Choice(RUN_STATUSES), default=None, help="Only runs of this status.")
@click.option("--cursor", default=None, help="`next_cursor` of the previous page.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Runs per page.")
@_with_client
def runs_list(client: AgentlogClient, status: str | None, cursor: str | None, limit: int) -> None:
    """Print one page of runs in the order they began, with `next_cursor`."""
    _echo_json(client.list_runs(status, cursor, limit))


@runs.command("show")
@click.argument("run_id", metavar="RUN")
@_with_client
def runs_show(client: AgentlogClient, run_id: str) -> None:
    """Print RUN: status, metadata, event count and chain head (exit 1 if absent)."""
    run = client.get_run(run_id)
    if run is None:
        raise click.ClickException(f"no run {run_id!r} (not_found, HTTP 404)")
    _echo_json(run)


@runs.command("begin")
@click.option("--name", default=None, help="A name for the run.")
@click.option("--run-id", default=None, help="The run id (default: made by the node).")
@click.option("--metadata", "metadata_json", default=None, help="Metadata as a JSON object.")
@click.option("--parent", "parent_run_id", default=None, help="The parent run id.")
@_with_client
def runs_begin(
    client: AgentlogClient,
    name: str | None,
    run_id: str | None,
    metadata_json: str | None,
    parent_run_id: str | None,
) -> None:
    """Begin a run; print the write (its `result.run_id` is the run's id)."""
    metadata = _json_object_option(metadata_json, "--metadata")
    _echo_json(client.begin_run(run_id, name=name, metadata=metadata, parent_run_id=parent_run_id))


@runs.command("end")
@click.argument("run_id", metavar="RUN")
@click.option("--status", type=click.Choice(END_STATUSES), required=True, help="How the run ended.")
@click.option("--result", "result_json", default=None, help="The run's result as JSON.")
@_with_client
def runs_end(client: AgentlogClient, run_id: str, status: str, result_json: str | None) -> None:
    """End RUN with a status and an optional JSON result."""
    result = None if result_json is None else _json_argument(result_json, "--result")
    _echo_json(client.end_run(run_id, cast(RunStatus, status), result=result))


@runs.command("verify")
@click.argument("run_id", metavar="RUN")
@_with_client
def runs_verify(client: AgentlogClient, run_id: str) -> None:
    """Recompute RUN's hash chain; print the check and exit 1 if it does not hold."""
    check = client.verify_run(run_id)
    _echo_json(check)
    if not check.ok:
        sys.exit(1)


# -- events ---------------------------------------------------------------------------------------


@click.group()
def events() -> None:
    """Append to and read a run's hash-chained events."""


@events.command("list")
@click.argument("run_id", metavar="RUN")
@click.option("--from-seq", type=click.IntRange(min=1), default=1, show_default=True, help="First seq.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Events per page.")
@click.option("--thread-id", default=None, help="Only events of this thread.")
@click.option("--type", "event_type", default=None, help="Only events of this type.")
@_with_client
def events_list(
    client: AgentlogClient, run_id: str, from_seq: int, limit: int, thread_id: str | None, event_type: str | None
) -> None:
    """Print one page of RUN's events from --from-seq, with `next_from_seq`."""
    _echo_json(client.events(run_id, from_seq=from_seq, limit=limit, thread_id=thread_id, type=event_type))


@events.command("append")
@click.argument("run_id", metavar="RUN")
@click.argument("event_type", metavar="TYPE")
@click.argument("payload_json", metavar="JSON")
@click.option("--thread-id", default=None, help="The thread the event belongs to.")
@click.option("--expected-seq", type=click.IntRange(min=0), default=None, help="Seq of the last event seen (0: none).")
@_with_client
def events_append(
    client: AgentlogClient,
    run_id: str,
    event_type: str,
    payload_json: str,
    thread_id: str | None,
    expected_seq: int | None,
) -> None:
    """Append an event of TYPE with a JSON payload to RUN; print the write (`seq`, `hash`)."""
    payload = _json_argument(payload_json, "JSON")
    _echo_json(client.append_event(run_id, event_type, payload, thread_id=thread_id, expected_seq=expected_seq))


def register(main: click.Group) -> None:
    """Add the `kv`, `runs` and `events` groups to the `agentlog` command."""
    for group in (kv, runs, events):
        main.add_command(group)
