"""SIP messages as text, for the scripted far ends: an independent reader and writer.

Written from RFC 3261 (§7 message format, §7.3.3 compact forms, §8.2.6 responses), not from the
bridge's code: what a fake far end answers is built here, so a bug in the bridge's SIP builder
or serializer cannot make its own tests agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
           "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding"}  # fmt: skip
# Copied from a request into its response, in this order (RFC 3261 §8.2.6.2; Record-Route: §12.1.1,
# which a dialog-creating response must carry back so in-dialog requests go through the proxy).
ECHOED = ("via", "record-route", "from", "to", "call-id", "cseq")


@dataclass
class SipText:
    start: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return not self.start.startswith("SIP/2.0 ")

    @property
    def method(self) -> str:
        return self.start.split(" ", 1)[0] if self.is_request else self.header("cseq").split()[1]

    @property
    def status(self) -> int:
        return int(self.start.split(" ")[1])

    def all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if COMPACT.get(key.lower(), key.lower()) == wanted]

    def header(self, name: str) -> str:
        values = self.all(name)
        if not values:
            raise KeyError(name)
        return values[0]


def parse(data: bytes) -> SipText:
    """Start line, headers (folded lines joined, compact names kept), and the body after the blank line."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    message = SipText(lines[0])
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and message.headers:
            name, value = message.headers[-1]
            message.headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, _, value = line.partition(":")
        for part in [value] if name.strip().lower() not in ("via", "v") else value.split(","):
            message.headers.append((name.strip(), part.strip()))
    message.body = body
    return message


def render(start: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [start, *(f"{name}: {value}" for name, value in headers), f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


def response(
    request: SipText,
    code: int,
    phrase: str,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> bytes:
    """A response to ``request``: its Via, From, To (with ``to_tag`` unless it has one), Call-ID, CSeq."""
    echoed = []
    for name in ECHOED:
        for value in request.all(name):
            if name == "to" and to_tag and ";tag=" not in value:
                value = f"{value};tag={to_tag}"
            echoed.append((name.title().replace("Id", "ID").replace("Cseq", "CSeq"), value))
    return render(f"SIP/2.0 {code} {phrase}", echoed + (headers or []), body)
