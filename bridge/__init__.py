"""sip-rtmp-bridge: places SIP calls and publishes their audio as RTMP streams."""

__version__ = "0.1.0"
