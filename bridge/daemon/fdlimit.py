"""File-descriptor headroom, checked at start-up (getrlimit(2)/setrlimit(2)).

A call holds up to four descriptors: the RTP and RTCP sockets (RFC 3550 section 11), the
RTMP connection and, over SIP TCP/TLS, a signalling connection. The daemon itself needs
a fixed base (SIP listeners, REST, history, event-loop internals).
"""

from __future__ import annotations

import logging
import resource
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.config import BridgeConfig

log = logging.getLogger("bridge.fdlimit")

DESCRIPTORS_PER_CALL = 4
BASE_DESCRIPTORS = 256


def connection_budget(config: BridgeConfig) -> int:
    """Descriptors that connections from anyone may hold at most: the caps of the REST listener, the
    SIP TCP listener and the long-lived streams. Kept apart from the calls' reserve, so idle
    connections can never take the descriptors a call needs."""
    return config.rest.max_connections + config.sip.tcp_max_connections + config.limits.max_streams


def descriptors_needed(calls: int, connections: int = 0) -> int:
    return BASE_DESCRIPTORS + connections + DESCRIPTORS_PER_CALL * calls


def calls_within(limit: int, connections: int = 0) -> int:
    """How many concurrent calls a descriptor limit allows beside ``connections``."""
    return max(0, (limit - BASE_DESCRIPTORS - connections) // DESCRIPTORS_PER_CALL)


def ensure_headroom(wanted_calls: int, connections: int = 0) -> int:
    """Raise the soft RLIMIT_NOFILE toward the hard one if needed; return the calls it allows.

    When even the hard limit is too low the shortfall is logged with the fix (LimitNOFILE=
    in the unit, ``ulimit -n`` elsewhere) and calls beyond it are refused with 503.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = descriptors_needed(wanted_calls, connections)
    if soft < needed and (hard == resource.RLIM_INFINITY or soft < hard):
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, raised, exc)
    allowed = calls_within(soft, connections)
    if allowed < wanted_calls:
        log.warning(
            "open-file limit %d allows %d concurrent calls, fewer than the %d configured "
            "(limits.max_calls / rtp.port_range); raise LimitNOFILE= (systemd) or ulimit -n to %d",
            soft,
            allowed,
            wanted_calls,
            needed,
        )
    return allowed
