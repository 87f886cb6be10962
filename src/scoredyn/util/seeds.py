"""Seeds of independent streams derived from one run seed: ``block_seed(seed, b)`` for block ``b``.

Work cut into blocks (particles to sample, rows to score) draws each block's randomness from its own
generator seeded here, so a block's numbers depend on the run's seed and the block's index alone, not
on which process or in which order it is computed.
"""

from __future__ import annotations

import hashlib

__all__ = ["block_seed"]


def block_seed(seed: int, block: int) -> int:
    """A 63-bit seed for block ``block`` of a run seeded ``seed`` (SHA-256 of both: unrelated streams)."""
    digest = hashlib.sha256(f"scoredyn-block:{seed}:{block}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
