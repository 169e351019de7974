"""Parser torture vectors after RFC 4475 section 3.1: valid ones parse, invalid ones are refused
(as SipParseError, never another exception) and the agent answers nothing for them."""

from __future__ import annotations

import pytest
from sipmessage import Request, Response

from bridge.sip.addressing import udp
from bridge.sip.agent import SipAgent
from bridge.sip.inbound import InboundPolicy, parse_networks
from bridge.sip.message import SipParseError, parse_message

SDP = (
    b"v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.4\r\nt=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n"
)

# 3.1.1.1 A Short Tortuous INVITE: folding, LWS around colons/separators, odd case, leading zeros.
WSINV = (
    b"INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n"
    b"TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n"
    b'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n'
    b"MaX-fOrWaRdS: 0068\r\nCall-ID: wsinv.ndaksdj@192.0.2.1\r\nContent-Length   : 150\r\n"
    b"cseq: 0009\r\n  INVITE\r\nVia  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;rport;branch=390skdjuw\r\n"
    b"s :\r\nNewFangledHeader:   newfangled value\r\n continued newfangled value\r\n"
    b"UnknownHeaderWithUnusualValue: ;;,,;;,;\r\nContent-Type: application/sdp\r\n"
    b"Route:\r\n <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\r\n"
    b"v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n"
    b" SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239\r\n"
    b'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n'
    b"  secondparam ; q = 0.33\r\n\r\n" + SDP
)


def request(start: bytes, *headers: bytes, body: bytes = b"") -> bytes:
    base = [
        b"To: sip:user@example.com",
        b"From: <sip:caller@example.net>;tag=3234233",
        b"Call-ID: torture.0ha0isndaksdj",
        b"Max-Forwards: 70",
        b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw",
    ]
    names = {h.split(b":")[0].lower() for h in headers}
    kept = [h for h in base if h.split(b":")[0].lower() not in names]
    length = [] if any(n in (b"content-length", b"l") for n in names) else [b"Content-Length: %d" % len(body)]
    return start + b"\r\n" + b"\r\n".join(kept + list(headers) + length) + b"\r\n\r\n" + body


UNREASON = "SIP/2.0 200 = 2**3 * 5**2 но сто\r\n".encode()

VALID = {
    "3.1.1.1 wsinv": WSINV,
    "3.1.1.3 esc01 escaped URIs": request(
        b"INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0",
        b"To: sip:%75se%72@example.com",
        b"From: <sip:I%20have%20spaces@example.net>;tag=938",
        b"CSeq: 234234 INVITE",
        b"Contact: <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>",
    ),
    "3.1.1.5 esc02 percent that is not an escape": request(
        b"RE%47IST%45R sip:registrar.example.com SIP/2.0",
        b"CSeq: 29344 RE%47IST%45R",
        b"Contact: <sip:alias1@host1.example.com>",
        b"C%6Fntact: <sip:alias2@host2.example.com>",
    ),
    "3.1.1.6 lwsdisp no LWS before <": request(
        b"OPTIONS sip:user@example.com SIP/2.0",
        b"From: caller<sip:caller@example.com>;tag=323",
        b"CSeq: 1 OPTIONS",
    ),
    "3.1.1.8 dblreq trailing octets past Content-Length": request(
        b"REGISTER sip:example.com SIP/2.0",
        b"CSeq: 1 REGISTER",
        b"l: 0",
    )
    + b"INVITE sip:joe@example.com SIP/2.0\r\n",
    "3.1.1.9 semiuri semicolon in userinfo": request(
        b"OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0",
        b"CSeq: 1 OPTIONS",
    ),
    "3.1.1.10 transports several and unknown": request(
        b"OPTIONS sip:user@example.com SIP/2.0",
        b"CSeq: 1 OPTIONS",
        b"Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdju43234, SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf,"
        b" SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj, SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en",
    ),
    "3.1.1.12 unreason unusual reason phrase": UNREASON + request(b"", b"CSeq: 1 INVITE")[2:],
    "3.1.1.13 noreason empty reason phrase": b"SIP/2.0 100 \r\n" + request(b"", b"CSeq: 1 INVITE")[2:],
}

INVALID = {
    "3.1.2.1 badinv01 extraneous separators": request(
        b"INVITE sip:user@example.com SIP/2.0",
        b"CSeq: 1 INVITE",
        b"Via: SIP/2.0/UDP 192.0.2.15;;,;,,",
    ),
    "3.1.2.2 clerr Content-Length larger than the body": request(
        b"INVITE sip:user@example.com SIP/2.0",
        b"CSeq: 1 INVITE",
        b"Content-Length: 9999",
        body=SDP,
    ),
    "3.1.2.3 scalar02 negative Content-Length": request(
        b"REGISTER sip:example.com SIP/2.0",
        b"CSeq: 1 REGISTER",
        b"Content-Length: -999",
    ),
    "3.1.2.4 scalarlg huge CSeq": request(b"REGISTER sip:example.com SIP/2.0", b"CSeq: 36893488147419103232 REGISTER"),
    "3.1.2.5 quotbal unterminated quoted display name": request(
        b"INVITE sip:user@example.com SIP/2.0",
        b"CSeq: 1 INVITE",
        b'From: "Bell, Alexander <sip:a.g.bell@example.com>;tag=43',
    ),
    "3.1.2.6 ltgtruri Request-URI in angle brackets": request(
        b"INVITE <sip:user@example.com> SIP/2.0", b"CSeq: 1 INVITE"
    ),
    "3.1.2.7 lwsruri LWS inside the Request-URI": request(
        b"INVITE sip:user@example.com; lr SIP/2.0", b"CSeq: 1 INVITE"
    ),
    "3.1.2.8 lwsstart multiple spaces in the request line": request(
        b"INVITE  sip:user@example.com  SIP/2.0", b"CSeq: 1 INVITE"
    ),
    "3.1.2.9 trws trailing whitespace on the request line": request(
        b"OPTIONS sip:remote-target@example.com SIP/2.0  ", b"CSeq: 1 OPTIONS"
    ),
    "3.1.2.10 escruri escaped headers in the Request-URI": request(
        b"INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0", b"CSeq: 1 INVITE"
    ),
    "3.1.2.16 badvers unknown protocol version": request(
        b"OPTIONS sip:t.watson@example.org SIP/7.0", b"CSeq: 1 OPTIONS"
    ),
    "3.1.2.17 mismatch01 CSeq method mismatch": request(b"OPTIONS sip:user@example.com SIP/2.0", b"CSeq: 1 INVITE"),
    "3.1.2.19 bigcode status code out of range": b"SIP/2.0 4294967301 better not break the receiver\r\n"
    + request(b"", b"CSeq: 1 INVITE")[2:],
    "3.3.? insuf missing Call-ID and From": (
        b"INVITE sip:user@example.com SIP/2.0\r\nTo: sip:j.user@example.com\r\nMax-Forwards: 70\r\n"
        b"CSeq: 1 INVITE\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw\r\nl: 0\r\n\r\n"
    ),
    "no header terminator": b"OPTIONS sip:user@example.com SIP/2.0\r\nCSeq: 1 OPTIONS\r\n",
    "binary garbage": bytes(range(256)),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_torture_messages_parse(name: str) -> None:
    message = parse_message(VALID[name])
    assert isinstance(message, Request | Response)
    assert message.call_id and message.via


def test_wsinv_fields_come_out_right() -> None:
    message = parse_message(WSINV)
    assert isinstance(message, Request)
    assert message.cseq.sequence == 9 and message.cseq.method == "INVITE"
    assert message.max_forwards == 68
    assert [v.host for v in message.via] == ["192.0.2.2", "spindle.example.com", "192.168.255.111"]
    assert message.via[1].parameters["branch"] == "z9hG4bK9ikj8"
    assert message.to_address.parameters["tag"] == "1918181833n"
    assert message.from_address.parameters["tag"] == "98asjd8"
    assert message.body == SDP


def test_dblreq_ignores_octets_past_content_length() -> None:
    assert parse_message(VALID["3.1.1.8 dblreq trailing octets past Content-Length"]).body == b""


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_torture_messages_are_refused_cleanly(name: str) -> None:
    with pytest.raises(SipParseError):
        parse_message(INVALID[name])
    agent = SipAgent(policy=InboundPolicy(trusted=parse_networks(["192.0.2.0/24"])))
    agent.receive_datagram(INVALID[name], udp("192.0.2.9", 5060), 0.0)
    assert agent.outbox == [] and dict(agent.policy.drops) == {"unparsable": 1}


def test_bare_ipv6_received_parameter_is_accepted() -> None:
    response = (
        b"SIP/2.0 100 Trying\r\nVia: SIP/2.0/UDP [::1]:5060;branch=z9hG4bKa;rport=5060;received=::1\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: v6\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    assert parse_message(response).via[0].parameters["received"] == "[::1]"


@pytest.mark.parametrize("header", [b"Contact: garbage", b"Record-Route: <>, x", b"Route: ;;"])
def test_a_malformed_address_header_is_a_parse_error_not_a_crash_later(header: bytes) -> None:
    """Found by the fuzzer: a 200 OK whose Contact does not parse raised ValueError inside the dialog
    (sipmessage parses address headers when first read); now the parser refuses the message."""
    response = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.2:5062;branch=z9hG4bKabc\r\nTo: <sip:uas@x>;tag=9\r\n"
        b"From: <sip:b@x>;tag=a1\r\nCall-ID: c1@test\r\nCSeq: 1 INVITE\r\n" + header + b"\r\nContent-Length: 0\r\n\r\n"
    )
    with pytest.raises(SipParseError):
        parse_message(response)
