"""A small authoritative DNS server on 127.0.0.1 for the resolver tests (SRV, A, AAAA)."""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from tests.support.udp_peer import UdpPeer


class TestDnsServer(UdpPeer):
    """Answers from ``records``: {(name, type): [rdata text, ...]}; NXDOMAIN otherwise."""

    __test__ = False

    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = {(name.rstrip(".").lower() + ".", rdtype): values for (name, rdtype), values in records.items()}
        self.queries: list[str] = []
        super().__init__()

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        self.sock.sendto(self._answer(query).to_wire(), source)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append(f"{rdtype} {name}")
        values = self.records.get((name, rdtype))
        if values:
            response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", rdtype, values))
        elif not any(key[0] == name for key in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response
