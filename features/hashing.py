"""The project's stable hash: keyed BLAKE2b-64, defined by the project, not by a dataframe
library, so a draw or a bucket holds the same customers on every machine and after every
upgrade (control draws, customer buckets, the training sample)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def stable_hash64(texts: Sequence[str], key: bytes) -> list[int]:
    """Keyed BLAKE2b-64 of each text's UTF-8 bytes, big-endian: the project's stable hash
    (the same on every machine and library version; control draws and customer buckets)."""
    return [
        int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8, key=key).digest(), "big")
        for t in texts
    ]
