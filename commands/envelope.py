"""The envelope around every command, and the split between what a client sends and what is logged.

- `CommandRequest` is what an HTTP body (or SDK call) may carry: the command plus optional
  `command_id`, `run_id`, `namespace`, `issued_at`. It refuses unknown fields, so a body naming
  `tenant`, `agent_id` or `tool_id` is rejected, and it refuses internal commands (`kv.expire`).
- `Caller` is the identity the server derives from credentials: tenant, agent, tool.
- `stamp(...)` joins the two into an `Envelope`, the logged form: it mints a missing command id,
  attaches a write without a run to the default run (or refuses it under `require_run`), and fills
  the default namespace of namespaced commands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, ValidationError, model_validator

from commands import limits
from commands.catalog import ClientCommand, Command
from commands.errors import CommandError, from_validation_errors
from commands.fields import CommandModel, Id, Namespace, Scope
from commands.ids import new_id
from commands.runs import RunBegin, RunEnd

__all__ = ["Caller", "CommandRequest", "Envelope", "stamp"]

_Millis = Annotated[int, Field(ge=0, le=limits.MAX_INT)]


class Envelope(CommandModel):
    """A command as logged: who (tenant, agent, tool), where (run, namespace), which (command_id), what."""

    command_id: Id
    tenant: Id
    agent_id: Id | None = None
    tool_id: Id | None = None
    run_id: Id
    namespace: Namespace | None = None
    issued_at: _Millis | None = None
    command: Command

    @model_validator(mode="after")
    def _scoped(self) -> Envelope:
        if self.command.scope == "namespace":
            if self.namespace is None:
                raise ValueError(f"{self.command.type} needs a namespace")
            try:
                self.command.check_scope(self.namespace)
            except CommandError as exc:
                raise ValueError(exc.detail) from None
        elif self.namespace is not None:
            raise ValueError(f"{self.command.type} is run-scoped and takes no namespace")
        return self

    @property
    def type(self) -> str:
        """The command's `type` tag, e.g. `kv.put`."""
        return self.command.type

    @property
    def scope(self) -> Scope:
        """`namespace` or `run`: which partition key routes this command."""
        return self.command.scope


class CommandRequest(CommandModel):
    """What a client may send: a command and optional ids; never tenant or agent identity."""

    command: ClientCommand
    command_id: Id | None = None
    run_id: Id | None = None
    namespace: Namespace | None = None
    issued_at: _Millis | None = None

    def stamp(self, caller: Caller, *, require_run: bool = False, default_run: str = limits.DEFAULT_RUN_ID) -> Envelope:
        """The envelope for this request sent by `caller` (see `stamp`)."""
        return stamp(
            self.command,
            caller,
            command_id=self.command_id,
            run_id=self.run_id,
            namespace=self.namespace,
            issued_at=self.issued_at,
            require_run=require_run,
            default_run=default_run,
        )


@dataclass(frozen=True, slots=True)
class Caller:
    """The writer's identity as the server established it from credentials (never from a body)."""

    tenant: str
    agent_id: str | None = None
    tool_id: str | None = None


def stamp(
    command: Command,
    caller: Caller,
    *,
    command_id: str | None = None,
    run_id: str | None = None,
    namespace: str | None = None,
    issued_at: int | None = None,
    require_run: bool = False,
    default_run: str = limits.DEFAULT_RUN_ID,
    new_command_id: Callable[[], str] = new_id,
) -> Envelope:
    """Build and validate the envelope of `command` for `caller`; failures raise CommandError.

    A missing `command_id` is minted (UUIDv7). A missing `run_id` is minted for `run.begin`, refused
    for `run.end`, refused for any command under `require_run` (`run_required`), else `default_run`.
    A namespaced command without `namespace` goes to `default`; a run-scoped one must name none.
    """
    if run_id is None:
        if isinstance(command, RunBegin):
            run_id = new_command_id()
        elif isinstance(command, RunEnd):
            raise CommandError("invalid", "run.end must name the run it ends")
        elif require_run:
            raise CommandError("run_required", f"{command.type} names no run and this caller must attach writes to one")
        else:
            run_id = default_run
    if namespace is None and command.scope == "namespace":
        namespace = limits.DEFAULT_NAMESPACE
    try:
        return Envelope(
            command_id=command_id if command_id is not None else new_command_id(),
            tenant=caller.tenant,
            agent_id=caller.agent_id,
            tool_id=caller.tool_id,
            run_id=run_id,
            namespace=namespace,
            issued_at=issued_at,
            command=command,
        )
    except ValidationError as exc:
        raise from_validation_errors(exc.errors()) from None
