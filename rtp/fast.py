"""Which path runs a call's audio: the compiled one (``rtp._fast``) or the Python reference.

The extension is built by ``pip install`` from ``rtp/_fast.c``. Without it (no compiler where the
package was installed), or with ``BRIDGE_FAST_PATH=0`` in the environment (the test suite runs the
media tests so as well), every packet and pull takes the Python path, which handles everything
and is the reference the compiled path is tested against.
"""

from __future__ import annotations

import os
from types import ModuleType

ENV = "BRIDGE_FAST_PATH"


def _load() -> ModuleType | None:
    if os.environ.get(ENV) == "0":
        return None
    try:
        from rtp import _fast
    except ImportError:
        return None
    return _fast


FAST = _load()


def describe() -> str:
    """One line for the log: which path runs, and why."""
    if FAST is not None:
        return "compiled (rtp._fast)"
    if os.environ.get(ENV) == "0":
        return f"Python reference ({ENV}=0)"
    return "Python reference (rtp._fast was not built: install a C compiler and Python headers, then reinstall)"
