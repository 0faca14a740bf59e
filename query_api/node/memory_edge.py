"""The node's edge embedder: embeds text for clients that send none, before append (DESIGN §9).

Configured by `Settings.embedder` (`--embedder`, `AGENTLOG_EMBEDDER`): `hashing` by default, `none`
to require clients to send vectors. Vectors are cached by `(model_id, sha256(text))`. The hashing
embedder runs on the event loop (microseconds a text); any other runs in a worker thread, one call
at a time. Replay and rebuild never get here: the vectors are in the commands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from agentlog.embedders import CachedEmbedder, Embedder, EmbedderError, HashingEmbedder, embedder_from_spec

__all__ = ["EdgeEmbedder", "EmbedderError", "edge_embedder"]


class EdgeEmbedder:
    """A cached embedder the request handlers await."""

    def __init__(self, embedder: Embedder) -> None:
        self.inner = embedder
        self.cached = CachedEmbedder(embedder)
        self._lock = asyncio.Lock()
        self._inline = isinstance(embedder, HashingEmbedder)

    @property
    def model_id(self) -> str:
        """The model's id."""
        return self.inner.model_id

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One float32 vector per text (to store); EmbedderError when the embedder fails."""
        return await self._run(self.cached.embed, texts)

    async def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One float32 vector per search query (asymmetric models embed queries apart)."""
        return await self._run(self.cached.embed_queries, texts)

    async def _run(
        self, embed: Callable[[Sequence[str]], npt.NDArray[np.float32]], texts: Sequence[str]
    ) -> npt.NDArray[np.float32]:
        if self._inline:
            return embed(texts)
        async with self._lock:
            return await asyncio.to_thread(embed, texts)


def edge_embedder(spec: str) -> EdgeEmbedder | None:
    """The edge embedder of a setting (None for `none`); ValueError on an unknown spec."""
    embedder = embedder_from_spec(spec)
    return EdgeEmbedder(embedder) if embedder is not None else None
