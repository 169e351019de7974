"""The names of a call's media counters, shared by the daemon and the media workers.

Kept apart from :mod:`bridge.media.call_media` so the daemon can show counters of a
call whose media has not reported yet without importing the media stack (PyAV runs
only in media workers).
"""

from __future__ import annotations

from typing import Any

COUNTER_NAMES = (
    "packets",
    "lost",
    "latePackets",
    "duplicatePackets",
    "concealedMs",
    "silenceInsertedSeconds",
    "comfortNoiseMs",
    "jitterMs",
    "levelDbfs",
    "framesEncoded",
    "encodeSeconds",
    "bytesPublished",
    "messagesPublished",
    "audioMessagesDropped",
    "videoFramesSent",
    "reconnects",
    "reconnectAttempts",
    "delayEstimateMs",
    "foreignPackets",
    "ssrcChanges",
    "dtmfPackets",
    "rtcpPackets",
    "rtcpReportsSent",
    "silencePacketsSent",
    "dtmfSent",
    "srtpFailures",
    "encoderRestarts",
)


DESTINATION_COUNTER_NAMES = (
    "bytesPublished",
    "messagesPublished",
    "messagesDropped",
    "videoFramesSent",
    "reconnects",
    "reconnectAttempts",
    "connections",
)


def zero_counters(destinations: int = 1) -> dict[str, Any]:
    """The counters of a call whose media has not reported yet (same keys as :meth:`CallMedia.counters`)."""
    counters: dict[str, Any] = dict.fromkeys(COUNTER_NAMES, 0)
    counters["levelDbfs"] = -120.0
    counters["destinations"] = [dict.fromkeys(DESTINATION_COUNTER_NAMES, 0) for _ in range(destinations)]
    return counters
