"""Twilio Media Streams, as the server receiving them (sans-IO).

Messages (Twilio's "Media Streams - WebSocket Messages"): ``connected``, ``start``
(``start.streamSid``, ``callSid``, ``tracks``, ``customParameters``, ``mediaFormat``),
``media`` (``media.track``, ``chunk``, ``timestamp`` in ms since the stream started,
``payload`` base64 µ-law 8 kHz), ``dtmf``, ``mark`` and ``stop``. Numbers arrive as strings.
"""

from __future__ import annotations

import re
from typing import Any

from bridge.wsmedia.core import BadMessage, StreamCore, base64_audio, member, number, optional_text, string_parameters
from bridge.wsmedia.events import (
    POLICY_VIOLATION,
    UNSUPPORTED_DATA,
    DigitReceived,
    IngestEvent,
    MarkReceived,
    StreamStarted,
    StreamStopped,
)

RATE = 8000
ENCODING = "audio/x-mulaw"
DIGITS = frozenset("0123456789*#ABCD")
_DIGITS = re.compile(r"[0-9]{1,18}").fullmatch  # what core.number takes as a string


class TwilioStream(StreamCore):
    protocol = "twilio"

    def handle(self, message: dict[str, Any]) -> list[IngestEvent]:
        media = message.get("media")
        if type(media) is dict and message.get("event") == "media":  # fifty a second a track: checked first
            return self._media(media)
        event = member(message, "event", str, "message")
        if event == "media":
            return self._media(member(message, "media", dict, "media message"))
        if event == "connected":
            return []
        if event == "start":
            return self.start(self._started(member(message, "start", dict, "start message"), message))
        if event == "dtmf":
            self.require_started("dtmf")
            return self._dtmf(member(message, "dtmf", dict, "dtmf message"))
        if event == "mark":
            self.require_started("mark")
            return [MarkReceived(optional_text(member(message, "mark", dict, "mark message"), "name", "mark"))]
        if event == "stop":
            self.stopped = True
            return [StreamStopped("the stream was stopped (Twilio stop message)")]
        raise BadMessage(POLICY_VIOLATION, f"unknown event {event[:40]!r}")

    def _started(self, start: dict[str, Any], message: dict[str, Any]) -> StreamStarted:
        media_format = member(start, "mediaFormat", dict, "start")
        encoding = optional_text(media_format, "encoding", "start.mediaFormat")
        rate = number(media_format, "sampleRate", "start.mediaFormat")
        channels = number(media_format, "channels", "start.mediaFormat") if "channels" in media_format else 1
        if encoding != ENCODING or rate != RATE or channels != 1:
            raise BadMessage(UNSUPPORTED_DATA, f"media format {encoding} {rate} Hz x{channels} is not {ENCODING} 8000")
        call_sid = member(start, "callSid", str, "start")
        tracks = member(start, "tracks", list, "start") if "tracks" in start else ["inbound"]
        if not tracks or not all(isinstance(track, str) for track in tracks):
            raise BadMessage(POLICY_VIOLATION, "start.tracks must name at least one track")
        parameters = {
            **self.query,
            **string_parameters(start.get("customParameters"), "start.customParameters"),
            "callSid": call_sid,
            "streamSid": optional_text(start, "streamSid", "start") or optional_text(message, "streamSid", "message"),
            "accountSid": optional_text(start, "accountSid", "start"),
        }
        return StreamStarted(call_sid, parameters, tuple(tracks), "pcmu", RATE, parameters.get("callId") or call_sid)

    def _media(self, media: dict[str, Any]) -> list[IngestEvent]:
        self.require_started("media")
        track, chunk, timestamp = media.get("track"), media.get("chunk"), media.get("timestamp")
        if (
            type(track) is str
            and type(chunk) is str
            and type(timestamp) is str
            and _DIGITS(chunk)
            and _DIGITS(timestamp)
        ):
            sequence, at = int(chunk), int(timestamp)  # Twilio's own form, checked in one step
        else:  # any other form the field helpers take, or say what is wrong with
            track = optional_text(media, "track", "media")
            sequence, at = number(media, "chunk", "media"), number(media, "timestamp", "media")
        payload = base64_audio(media, "payload", "media", 1, RATE)
        return self.audio(track or "inbound", sequence, at * (RATE // 1000), payload)

    def _dtmf(self, dtmf: dict[str, Any]) -> list[IngestEvent]:
        digit = member(dtmf, "digit", str, "dtmf")
        if digit not in DIGITS:
            raise BadMessage(POLICY_VIOLATION, "dtmf.digit is not a DTMF digit")
        return [DigitReceived(digit, optional_text(dtmf, "track", "dtmf"))]
