"""RTMP publishing: AMF0, a sans-IO client core and its asyncio driver."""
