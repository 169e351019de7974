"""RTMP publish targets: ``rtmpUrl`` + ``rtmpStream`` split into what RTMP needs.

What in a target is secret (never logged, never shown): the userinfo
(``rtmp://user:password@host/app``, publish authentication), every query string
(tokens), and the stream name itself, which for YouTube, Facebook and Twitch *is*
the account's stream key. :meth:`RtmpTarget.display` is the one masked form the
API, events, webhooks, history and logs show.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from bridge.ops.masking import mask

DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443}


class RtmpUrlError(ValueError):
    """An rtmpUrl/rtmpStream pair that cannot be published to."""


@dataclass(frozen=True, slots=True)
class RtmpTarget:
    """Where and under which name to publish.

    ``app`` is the URL path without the leading slash (it may hold an instance,
    e.g. ``live/_definst_``, and a query string with a token); ``tc_url`` is the
    URL as given without its userinfo, which servers echo in their logs and use
    for vhost selection. ``username``/``password`` come from the URL's userinfo
    and are used only for publish authentication (``authmod=adobe``/``llnw``).
    """

    scheme: str
    host: str
    port: int
    app: str
    stream: str
    tc_url: str
    username: str = ""
    password: str = ""

    @property
    def tls(self) -> bool:
        return self.scheme == "rtmps"

    @property
    def stream_name(self) -> str:
        """The stream name without its query string."""
        return self.stream.partition("?")[0]

    @property
    def app_name(self) -> str:
        """The application path without its query string."""
        return self.app.partition("?")[0]

    def query_secrets(self) -> tuple[str, ...]:
        """The query strings of the app and stream name: they may carry tokens, never logged."""
        queries = (urlsplit(self.tc_url).query, self.stream.partition("?")[2])
        return tuple(query for query in queries if query)

    def secrets(self, reveal_stream: bool = False) -> tuple[str, ...]:
        """Everything in this target that must never reach a log, an event or an API answer."""
        found = [*self.query_secrets(), self.username, self.password]
        if not reveal_stream:
            found.append(self.stream_name)
        return tuple(value for value in found if value)

    def display(self, reveal_stream: bool = False) -> str:
        """The masked form: no userinfo, no query values, the stream name as ``••••`` + its tail.

        ``rtmp://a.rtmp.youtube.com/live2/••••qrst``; with ``reveal_stream`` (an operator's
        private server) the name is shown in full. The port is shown only if not the default.
        """
        userinfo = f"{mask(self.username)}@" if self.username else ""
        port = "" if self.port == DEFAULT_PORTS[self.scheme] else f":{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        app = self.app_name + (f"?{mask(self.app.partition('?')[2])}" if "?" in self.app else "")
        name = self.stream_name if reveal_stream else mask(self.stream_name)
        query = self.stream.partition("?")[2]
        stream = name + (f"?{mask(query)}" if query else "")
        return f"{self.scheme}://{userinfo}{host}{port}/{app}/{stream}"

    def dedupe_key(self) -> str:
        """What makes two calls publish the same stream (the 409 check): server, app and name.

        It holds the stream name in full: a key for comparisons, never shown or logged.
        """
        return f"{self.scheme}://{self.host}:{self.port}/{self.app_name}/{self.stream_name}".lower()


def parse_target(rtmp_url: str, stream: str) -> RtmpTarget:
    """Validate and split ``rtmp[s]://[user:password@]host[:port]/app[/instance][?query]`` plus a stream name."""
    parts = urlsplit(rtmp_url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise RtmpUrlError("rtmpUrl must start with rtmp:// or rtmps://")
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
    username, password = unquote(parts.username or ""), unquote(parts.password or "")
    if username and not password:
        raise RtmpUrlError("rtmpUrl has a user name but no password: use rtmp://user:password@host/app")
    netloc = parts.netloc.rpartition("@")[2]
    tc_url = f"{parts.scheme}://{netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    return RtmpTarget(scheme, parts.hostname, port, app, stream, tc_url, username, password)
