"""A stand-in for Wowza's default ``live`` application: RTMP publish authentication, server side.

Run as ``python -m tests.support.rtmp_auth_server --port P --dir D --user U --password W
--authmod adobe|llnw``. The RTMP transport is pyrtmp (an RTMP server we did not write);
the authentication is written here from the flow FFmpeg's client implements
(libavformat/rtmpproto.c), independently of the bridge's client code:

- connect without parameters: ``_error`` NetConnection.Connect.Rejected,
  ``[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : ``
- ``app?authmod=adobe&user=U``: rejected with ``?reason=needauth&user=U&salt=..&challenge=..&opaque=..``
  (llnw: ``&nonce=..``); an unknown user gets ``?reason=nosuchuser``
- ``app?authmod=adobe&user=U&challenge=C2&response=R&opaque=O``: accepted when
  R == b64(md5(b64(md5(U + salt + password)) + opaque + C2)), else ``?reason=authfailed``
  (llnw: R == md5hex(md5hex(U:live:W):nonce:nc:cnonce:auth:md5hex(publish:/app/_definst_)))

Every connect and its outcome is appended to ``D/events.jsonl``; what a publisher sends is
recorded to ``D/<stream>.flv`` (FLV file format, FLV spec v10 annex E) for analysis.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote

from bitstring import BitStream
from pyrtmp.amf.serializers import AMF0Serializer
from pyrtmp.messages import Chunk
from pyrtmp.messages.audio import AudioMessage
from pyrtmp.messages.command import NCConnect, NSPublish
from pyrtmp.messages.data import MetaDataMessage
from pyrtmp.messages.video import VideoMessage
from pyrtmp.rtmp import RTMPProtocol, SimpleRTMPController
from pyrtmp.session_manager import SessionManager

REJECT = "[ AccessManager.Reject ] : [ {detail} ] : {query}"


def query_params(query: str) -> dict[str, str]:
    """Wowza reads the query as sent: base64 values keep their '+' (no form decoding)."""
    pairs = (item.partition("=") for item in query.split("&") if item)
    return {unquote(key): unquote(value) for key, _, value in pairs}


def b64md5(text: str) -> str:
    return base64.b64encode(hashlib.md5(text.encode()).digest()).decode()


def md5hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class AuthServer(SimpleRTMPController):
    def __init__(self, directory: Path, user: str, password: str, authmod: str) -> None:
        super().__init__()
        self.dir, self.user, self.password, self.authmod = directory, user, password, authmod
        self.issued: dict[str, dict[str, str]] = {}  # opaque/nonce -> what we challenged with

    def event(self, **fields: Any) -> None:
        with (self.dir / "events.jsonl").open("a") as log:
            log.write(json.dumps(fields) + "\n")

    async def on_nc_connect(self, session: SessionManager, message: NCConnect) -> None:
        app_field = str(message.command_object.get("app", ""))
        app, _, query = app_field.partition("?")
        params = query_params(query)
        verdict, description = self.check(app, params)
        self.event(kind="connect", app=app, params=sorted(params), verdict=verdict)
        if verdict == "accepted":
            session.state["app"] = app
            await super().on_nc_connect(session, message)
            return
        session.write_chunk_to_stream(self.error(message.transaction_id, description))
        await session.drain()
        session.writer.close()

    def check(self, app: str, params: dict[str, str]) -> tuple[str, str]:
        mod = self.authmod
        if params.get("authmod") != mod or "user" not in params:
            return "need-auth", REJECT.format(detail=f"code=403 need auth; authmod={mod}", query="")
        if params["user"] != self.user:
            return "no-such-user", REJECT.format(detail=f"authmod={mod}", query="?reason=nosuchuser")
        if "response" not in params:
            return "challenged", REJECT.format(detail=f"authmod={mod}", query=self.challenge())
        if self.response_is_valid(app, params):
            return "accepted", ""
        return "auth-failed", REJECT.format(detail=f"authmod={mod}", query="?reason=authfailed")

    def challenge(self) -> str:
        token = os.urandom(4).hex()
        if self.authmod == "llnw":
            self.issued[token] = {"nonce": token}
            return f"?reason=needauth&user={self.user}&nonce={token}"
        salt, challenge = os.urandom(4).hex(), os.urandom(4).hex()
        self.issued[token] = {"salt": salt, "challenge": challenge}
        return f"?reason=needauth&user={self.user}&salt={salt}&challenge={challenge}&opaque={token}"

    def response_is_valid(self, app: str, params: dict[str, str]) -> bool:
        if self.authmod == "llnw":
            issued = self.issued.pop(params.get("nonce", ""), None)
            if issued is None:
                return False
            path = app if "/" in app else app + "/_definst_"
            ha1, ha2 = md5hex(f"{self.user}:live:{self.password}"), md5hex(f"publish:/{path}")
            nc, cnonce = params.get("nc", ""), params.get("cnonce", "")
            return params["response"] == md5hex(f"{ha1}:{issued['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        issued = self.issued.pop(params.get("opaque", ""), None)
        if issued is None:
            return False
        first = b64md5(self.user + issued["salt"] + self.password)
        return params["response"] == b64md5(first + params.get("opaque", "") + params.get("challenge", ""))

    @staticmethod
    def error(transaction: int, description: str) -> Chunk:
        data = BitStream()
        AMF0Serializer.create_object(data, "_error")
        AMF0Serializer.create_object(data, transaction)
        AMF0Serializer.create_object(data, None)
        info = {"level": "error", "code": "NetConnection.Connect.Rejected", "description": description}
        AMF0Serializer.create_object(data, info)
        payload = data.bytes
        return Chunk(
            chunk_type=0,
            chunk_id=3,
            timestamp=0,
            msg_length=len(payload),
            msg_type_id=0x14,
            msg_stream_id=0,
            payload=payload,
        )

    async def on_ns_publish(self, session: SessionManager, message: NSPublish) -> None:
        name = str(message.publishing_name)
        self.event(kind="publish", app=session.state.get("app"), stream=name)
        session.state["flv"] = FlvRecorder(self.dir / f"{Path(name).name}.flv")
        await super().on_ns_publish(session, message)

    async def on_metadata(self, session: SessionManager, message: MetaDataMessage) -> None:
        meta = message.meta
        pairs = meta.items() if isinstance(meta, dict) else [kv for item in meta for kv in item.items()]
        self.event(kind="metadata", meta={k: v for k, v in pairs if isinstance(v, int | float | str)})

    async def on_audio_message(self, session: SessionManager, message: AudioMessage) -> None:
        self.record(session, 8, message)

    async def on_video_message(self, session: SessionManager, message: VideoMessage) -> None:
        self.record(session, 9, message)

    @staticmethod
    def record(session: SessionManager, kind: int, message: Chunk) -> None:
        recorder = session.state.get("flv")
        if recorder is not None:
            recorder.write(kind, message.timestamp, message.payload)

    async def cleanup(self, session: SessionManager) -> None:
        recorder = session.state.pop("flv", None)
        if recorder is not None:
            recorder.close()
            self.event(kind="unpublished", tags=recorder.tags)


class FlvRecorder:
    """FLV file format (annex E.2/E.3): header, then tags each followed by its size."""

    def __init__(self, path: Path) -> None:
        self.file: BinaryIO = path.open("wb")
        self.file.write(b"FLV\x01\x05" + struct.pack("!I", 9) + struct.pack("!I", 0))
        self.tags = 0

    def write(self, kind: int, timestamp: int, payload: bytes) -> None:
        header = bytes([kind]) + len(payload).to_bytes(3, "big") + (timestamp & 0xFFFFFF).to_bytes(3, "big")
        header += bytes([(timestamp >> 24) & 0xFF]) + b"\x00\x00\x00"
        self.file.write(header + payload + struct.pack("!I", 11 + len(payload)))
        self.file.flush()
        self.tags += 1

    def close(self) -> None:
        self.file.close()


async def serve(port: int, controller: AuthServer) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: RTMPProtocol(controller=controller), host="127.0.0.1", port=port)
    controller.event(kind="listening", port=port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--authmod", choices=("adobe", "llnw"), default="adobe")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)  # pyrtmp configures DEBUG logging at import
    for name in ("pyrtmp", "pyrtmp.rtmp", "pyrtmp.messages", "pyrtmp.messages.command", "pyrtmp.messages.data"):
        logging.getLogger(name).setLevel(logging.WARNING)
    args.dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(args.port, AuthServer(args.dir, args.user, args.password, args.authmod)))


if __name__ == "__main__":
    main()
