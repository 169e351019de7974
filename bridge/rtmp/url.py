"""RTMP publish targets: ``rtmpUrl`` + ``rtmpStream`` split into what RTMP needs."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443}


class RtmpUrlError(ValueError):
    """An rtmpUrl/rtmpStream pair that cannot be published to."""


@dataclass(frozen=True, slots=True)
class RtmpTarget:
    """Where and under which name to publish.

    ``app`` is the URL path without the leading slash (it may hold an instance,
    e.g. ``live/_definst_``, and a query string with a token); ``tc_url`` is the
    URL as given, which servers echo in their logs and use for vhost selection.
    """

    scheme: str
    host: str
    port: int
    app: str
    stream: str
    tc_url: str

    @property
    def tls(self) -> bool:
        return self.scheme == "rtmps"

    def query_secrets(self) -> tuple[str, ...]:
        """The query strings of the app and stream name: they may carry tokens, never logged."""
        queries = (urlsplit(self.tc_url).query, urlsplit(self.stream).query)
        return tuple(query for query in queries if query)

    def public_url(self) -> str:
        """The target without query strings (which may carry tokens)."""
        app = self.app.split("?", 1)[0]
        stream = self.stream.split("?", 1)[0]
        return f"{self.scheme}://{self.host}:{self.port}/{app}/{stream}"


def parse_target(rtmp_url: str, stream: str) -> RtmpTarget:
    """Validate and split ``rtmp://host[:port]/app[/instance][?query]`` plus a stream name."""
    parts = urlsplit(rtmp_url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise RtmpUrlError(f"rtmpUrl must start with rtmp:// or rtmps://, got {rtmp_url!r}")
    if not parts.hostname:
        raise RtmpUrlError("rtmpUrl has no host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise RtmpUrlError("rtmpUrl has an invalid port") from None
    app = parts.path.strip("/")
    if not app:
        raise RtmpUrlError("rtmpUrl has no application path, e.g. rtmp://host:1935/live")
    if parts.query:
        app = f"{app}?{parts.query}"
    if not stream or stream.startswith("/"):
        raise RtmpUrlError("rtmpStream must be a non-empty name, e.g. 'call-42'")
    return RtmpTarget(scheme, parts.hostname, port, app, stream, rtmp_url)
