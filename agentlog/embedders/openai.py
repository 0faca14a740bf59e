"""A client of any OpenAI-compatible `POST {base_url}/embeddings` endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from agentlog.embedders.base import EmbedderError, check_output

__all__ = ["OpenAIEmbedder"]

#: Most texts sent in one request.
BATCH_TEXTS_MAX = 256


class OpenAIEmbedder:
    """Embeds by HTTP; `dim` is given or learnt from the first answer. model_id = `openai:<model>`."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        dim: int | None = None,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self._dim = dim
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout_s, headers=headers, transport=transport
        )

    @property
    def model_id(self) -> str:
        """`openai:<model>`."""
        return f"openai:{self.model}"

    @property
    def dim(self) -> int:
        """The dimension (asks the service once when not given)."""
        if self._dim is None:
            self._dim = int(self._request(["dimension probe"]).shape[1])
        return self._dim

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def _request(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        try:
            response = self._client.post("/embeddings", json={"model": self.model, "input": list(texts)})
        except httpx.HTTPError as error:
            raise EmbedderError(f"embedding service unreachable: {error}") from error
        if response.status_code != 200:
            raise EmbedderError(f"embedding service answered {response.status_code}: {response.text[:200]}")
        try:
            body: Any = response.json()
            items = sorted(body["data"], key=lambda item: int(item["index"]))
            rows = [item["embedding"] for item in items]
        except (ValueError, KeyError, TypeError) as error:
            raise EmbedderError(f"embedding service answered an unexpected body: {error}") from error
        if len(rows) != len(texts) or not rows:
            raise EmbedderError(f"embedding service returned {len(rows)} vectors for {len(texts)} texts")
        try:
            array = np.asarray(rows, dtype=np.float32)
        except (ValueError, TypeError) as error:
            raise EmbedderError(f"embedding service returned ragged or non-numeric vectors: {error}") from error
        if array.ndim != 2:
            raise EmbedderError("embedding service returned ragged vectors")
        return array

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One vector per text, requested in batches of at most `BATCH_TEXTS_MAX`."""
        parts = [self._request(texts[i : i + BATCH_TEXTS_MAX]) for i in range(0, len(texts), BATCH_TEXTS_MAX)]
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return check_output(np.concatenate(parts), len(texts), self.dim, self.model_id)
