"""A call's media counters: one typed model, shared by the daemon and the media workers.

The worker builds it once a second for every call (:class:`~bridge.channel.protocol.WorkerStats`),
with a destination's state change and when the call's media stops; the daemon keeps the last one
and shows :meth:`MediaCounters.view` (the API's, webhooks' and history's ``counters``). Kept apart
from :mod:`bridge.media` so the daemon shows counters without importing the media stack (PyAV
runs only in media workers). A counter a part reports but the model does not declare is refused
(``extra="forbid"``): new counters are added here, with their type.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

# camelCase field names: they are the API's names (GET /api/v1/calls/{id} "counters").


class _Counters(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DestinationCounters(_Counters):
    """One RTMP destination's publishing (``destinations[i]`` in the call view)."""

    bytesPublished: int = 0
    messagesPublished: int = 0
    messagesDropped: int = 0
    videoFramesSent: int = 0
    reconnects: int = 0
    reconnectAttempts: int = 0
    connections: int = 0


class VideoCounters(_Counters):
    """A call with video: the far end's H.264 in, key-frame requests, what went out."""

    videoPackets: int = 0
    videoForeignPackets: int = 0
    videoOtherPayloadPackets: int = 0
    videoFramesReceived: int = 0
    videoKeyframesReceived: int = 0
    videoLostPackets: int = 0
    keyframeRequests: int = 0
    keyframesAnswered: int = 0
    keyframeRequestsUnanswered: int = 0
    videoFramesPublished: int = 0
    videoStalls: int = 0
    videoSsrcChanges: int = 0
    videoSrtpFailures: int = 0
    videoWidth: int = 0
    videoHeight: int = 0
    videoFrameRate: float = 0.0
    videoArrivalOffsetMs: float | None = None  # video against audio, once both have arrived
    videoRtpFramesSent: int = 0
    keyframeRequestsReceived: int = 0


class MediaCounters(_Counters):
    """Every counter of a call's media (zero where its source has no such thing)."""

    packets: int = 0
    lost: int = 0
    latePackets: int = 0
    duplicatePackets: int = 0
    concealedMs: int = 0
    silenceInsertedSeconds: float = 0.0
    comfortNoiseMs: int = 0
    jitterMs: float = 0.0
    levelDbfs: float = -120.0
    framesEncoded: int = 0
    encodeSeconds: float = 0.0
    bytesPublished: int = 0
    messagesPublished: int = 0
    audioMessagesDropped: int = 0
    videoFramesSent: int = 0
    reconnects: int = 0
    reconnectAttempts: int = 0
    delayEstimateMs: int = 0
    foreignPackets: int = 0
    ssrcChanges: int = 0
    dtmfPackets: int = 0
    rtcpPackets: int = 0
    rtcpReportsSent: int = 0
    silencePacketsSent: int = 0
    dtmfSent: int = 0
    srtpFailures: int = 0
    encoderRestarts: int = 0
    ingestTracks: int | None = None  # a WebSocket stream's tracks (absent on SIP calls)
    video: VideoCounters | None = None
    destinations: list[DestinationCounters] = []

    def view(self) -> dict[str, Any]:
        """As the API shows them: the video's counters beside the audio's, ``destinations`` a list."""
        shown = self.model_dump(exclude={"ingestTracks", "video", "destinations"})
        if self.ingestTracks is not None:
            shown["ingestTracks"] = self.ingestTracks
        if self.video is not None:
            shown.update(self.video.model_dump())
        shown["destinations"] = [destination.model_dump() for destination in self.destinations]
        return shown


def zero_counters(destinations: int = 1) -> dict[str, Any]:
    """The view of a call whose media has not reported yet."""
    return MediaCounters(destinations=[DestinationCounters() for _ in range(destinations)]).view()
