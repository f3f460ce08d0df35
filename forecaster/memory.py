"""How much memory a run needs, estimated before it starts (``forecaster data``).

Filled in below; :data:`DEFAULT_CHUNK_CUSTOMERS` is the chunk of ``forecaster batch``
(:mod:`forecaster.batch_stream`), kept here so that the command line reads it without
importing the heavy modules."""

from __future__ import annotations

DEFAULT_CHUNK_CUSTOMERS = 200_000
