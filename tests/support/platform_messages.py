"""The platforms' media stream messages as their documentation shows them, for the unit tests."""

from __future__ import annotations

import base64
import json

ULAW_20MS = base64.b64encode(b"\xff" * 160).decode()
PCM_20MS_16K = base64.b64encode(b"\x00\x01" * 320).decode()

# Twilio "Media Streams - WebSocket Messages" examples (payload shortened to 20 ms of µ-law)
TWILIO_START = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "callSid": "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "tracks": ["inbound", "outbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"FirstName": "Jane", "callId": "webinar-42"},
    },
    "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
}


def twilio_media(chunk: int, timestamp: int, track: str = "inbound", payload: str = ULAW_20MS) -> str:
    media = {"track": track, "chunk": str(chunk), "timestamp": str(timestamp), "payload": payload}
    return json.dumps({"event": "media", "sequenceNumber": str(chunk + 1), "media": media, "streamSid": "MZ"})
