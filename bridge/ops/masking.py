"""The one masked form of a secret shown to users: ``••••`` and, for long secrets, the last 4 characters.

The tail lets an operator tell two stream keys apart (``••••3f9a`` vs ``••••77c1``)
without revealing them; it is shown only when it is at most a quarter of the secret,
so a short secret is masked completely.
"""

from __future__ import annotations

DOTS = "••••"
TAIL = 4
MIN_LENGTH_FOR_TAIL = 16


def mask(secret: str) -> str:
    """``••••`` + the last 4 characters of a secret of 16 or more characters, else ``••••``."""
    if len(secret) >= MIN_LENGTH_FOR_TAIL:
        return DOTS + secret[-TAIL:]
    return DOTS
