"""The node's one settings object: `AGENTLOG_*` environment variables, overridden by CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from eventlog.url import DEFAULT_LOG_URL

__all__ = ["Settings"]


class Settings(BaseSettings):
    """How a node runs: which log, which topic, where snapshots go, how long writes and reads wait."""

    model_config = SettingsConfigDict(env_prefix="AGENTLOG_", extra="forbid")

    log: str = Field(default=DEFAULT_LOG_URL, description="Log URL: file:///path, memory:// or kafka://host:port[,...]")
    fsync: str = Field(default="always", description="Embedded log durability: always, never or interval:<ms>")
    partitions: int = Field(default=8, ge=1, le=1024, description="Partitions of the main topic when it is created")
    topic: str = Field(default="main", description="The command topic (the main branch)")
    host: str = Field(default="127.0.0.1", description="Address to listen on")
    port: int = Field(default=8000, ge=0, le=65535, description="Port to listen on")
    snapshot_dir: Path | None = Field(
        default=None, description="Where snapshots go (default: <data>/snapshots, or none)"
    )
    snapshot_every: int = Field(default=100_000, ge=0, description="Commands applied between snapshots (0: never)")
    write_timeout_ms: int = Field(default=10_000, ge=1, le=60_000, description="How long a write waits to be applied")
    read_wait_ms_max: int = Field(default=10_000, ge=0, le=60_000, description="Longest a read waits for a token")
    sweep_interval_ms: int = Field(default=1_000, ge=0, description="TTL sweeper period (0: no sweeper)")
    require_run: bool = Field(default=False, description="Refuse writes that name no run")
    subscriber_queue_frames: int = Field(
        default=4_096, ge=1, le=1_000_000, description="Frames a subscriber may have queued before it is dropped (1013)"
    )
    api_keys_file: Path | None = Field(
        default=None, description="JSON file of API keys; when set, keys decide identity"
    )
    embedder: str = Field(
        default="hashing",
        description="Embedder for memories sent as text only: hashing[:dim], openai:<url>#<model>[#<dim>], "
        "fastembed:<model>, sentence-transformers:<model> or none",
    )
    processors: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Derived processors (run summary) in this node; auto: on for file:// logs, off for memory:// "
        "and kafka:// (where `agentlog worker` runs them)",
    )

    def runs_processors(self) -> bool:
        """Whether this node runs the record-triggered processors in-process."""
        return self.processors == "on" or (self.processors == "auto" and self.log.startswith("file://"))

    def resolved_snapshot_dir(self) -> Path | None:
        """The snapshot directory: explicit, or beside an embedded log's data, or none for memory/kafka."""
        if self.snapshot_dir is not None:
            return self.snapshot_dir
        if self.log.startswith("file://"):
            return Path(self.log.removeprefix("file://")) / "snapshots"
        return None
