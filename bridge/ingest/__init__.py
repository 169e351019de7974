"""Calls that arrive as WebSocket media streams (Twilio Media Streams, ACS, RingCentral).

Sans-IO cores turn each platform's JSON messages into typed events (:mod:`events`);
:mod:`feed` turns their audio into RTP for the call's media worker, so an ingest call and
a SIP call share one media path from the jitter buffer on.
"""
