"""Calls that arrive as WebSocket media streams (Twilio Media Streams, ACS, RingCentral).

The routes, their authentication and the call a stream becomes live here; the WebSocket and the
platforms' message formats are in :mod:`bridge.wsmedia`, which the media worker reads too.
"""
