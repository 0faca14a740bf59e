"""Fields that write bodies share: the idempotency key, the run, the namespace."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from commands.fields import Id, Namespace

__all__ = ["CommandOptions", "NamespacedWriteOptions", "WriteOptions"]


class CommandOptions(BaseModel):
    """The idempotency key every write body may carry; unknown fields (a `tenant`, say) are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)
    command_id: Id | None = Field(None, description="Idempotency key: a retry with it is applied once")


class WriteOptions(CommandOptions):
    """A write that belongs to a run (default: the caller's default run)."""

    run_id: Id | None = Field(None, description="The run this write belongs to (default: the caller's default run)")


class NamespacedWriteOptions(WriteOptions):
    """A write to a namespaced record whose namespace travels in the body."""

    namespace: Namespace | None = Field(None, description="Namespace of the record (default: `default`)")
