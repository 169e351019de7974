"""WebSocket media streams, whichever process terminates them (sans-IO, a leaf of both sides).

:mod:`websocket` is the server side of RFC 6455 (frames, the close handshake); :mod:`twilio`,
:mod:`acs` and :mod:`ringcentral` turn each platform's JSON messages into the typed events of
:mod:`events`. The daemon uses them until a stream's call is admitted, its media worker from
then on (the connection is handed over, see :mod:`bridge.media.stream_socket`).
"""
