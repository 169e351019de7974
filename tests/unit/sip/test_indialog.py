"""Far-end requests inside the dialog and RFC 4028 session timers (fake clock)."""

from __future__ import annotations

from sipmessage import URI, Request

from bridge.sip.addressing import udp
from bridge.sip.agent import SipAgent
from bridge.sip.call import OutboundCall
from bridge.sip.events import CallEnded, DtmfReceived, EndCause, MediaChanged
from bridge.sip.message import parse_message, serialize
from bridge.sip.sdp import Direction, build_offer
from bridge.sip.session_timer import parse_session_expires
from tests.support.sipfakes import (
    DOMAIN,
    SDP_ANSWER,
    call_settings,
    in_dialog_request,
    parse_request,
    respond,
    take_events,
    take_sent,
)

FAR = udp("192.0.2.9", 5080)
HEADERS = {"Contact": "<sip:uas@192.0.2.9:5080>"}


def _changes(events: list[object]) -> list[tuple[tuple[str, int], str]]:
    """The far end's address and direction of each MediaChanged event (anything else shows as itself)."""
    return [(e.peer.address, e.peer.direction) if isinstance(e, MediaChanged) else (("", 0), repr(e)) for e in events]


def sdp(direction: str = "sendrecv", address: str = "192.0.2.9", port: int = 40000, codec: str = "0 PCMU") -> bytes:
    pt, name = codec.split()
    return (
        f"v=0\r\no=- 1 2 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/8000\r\na={direction}\r\n"
    ).encode()


def refresher_timer(agent: SipAgent) -> float | None:
    return next(iter(agent.calls.values())).refresher.get_timer()


def established(extra: dict[str, str] | None = None, session_expires: int = 1800) -> tuple[SipAgent, Request, bytes]:
    offer = build_offer("192.0.2.2", 20000, Direction.RECVONLY, 7)
    settings = call_settings(call_id="c2@test", offer=offer, session_expires=session_expires)
    agent = SipAgent()
    agent.add_call(OutboundCall(settings), 0.0)
    invite = parse_request(agent.outbox[0][0])
    ok = respond(invite, 200, "OK", headers={**HEADERS, **(extra or {})}, body=SDP_ANSWER)
    agent.receive_datagram(ok, DOMAIN, 0.1)
    agent.outbox.clear()
    agent.events.clear()
    return agent, invite, ok


def request_from_far_end(
    method: str, invite: Request, ok: bytes, cseq: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    request = parse_request(in_dialog_request(method, invite, ok, cseq))
    for name, value in (headers or {}).items():
        request.headers.set(name, value)
    if body:
        request.headers.set("Content-Type", "application/sdp")
        request.body = body
    return serialize(request)


def test_reinvite_to_hold_is_answered_and_2xx_retransmitted_until_ack() -> None:
    agent, invite, ok = established()
    reinvite = request_from_far_end("INVITE", invite, ok, 2, sdp("sendonly", "192.0.2.77", 41000))
    agent.receive_datagram(reinvite, FAR, 5.0)
    (answer,) = take_sent(agent)
    response = parse_message(answer)
    assert answer.startswith(b"SIP/2.0 200 OK") and b"a=recvonly" in response.body
    # Version 8: our description now lists only what was negotiated (PCMU, no telephone-event:
    # the answer had none; RFC 3264 8.3.2), so it changed once, by one (section 8).
    assert b"o=- 7 8 " in response.body and b"m=audio 20000 RTP/AVP 0\r\n" in response.body
    assert _changes(take_events(agent)) == [(("192.0.2.77", 41000), "sendonly")]
    agent.handle_timer(5.5)
    agent.handle_timer(6.5)
    assert take_sent(agent) == [answer, answer]  # T1, then 2*T1
    ack = parse_request(in_dialog_request("ACK", invite, ok, 2))
    agent.receive_datagram(serialize(ack), FAR, 6.6)
    agent.handle_timer(10.0)
    assert take_sent(agent) == []


def test_inactive_offer_gets_inactive_and_new_version() -> None:
    agent, invite, ok = established()
    agent.receive_datagram(request_from_far_end("INVITE", invite, ok, 2, sdp("inactive")), FAR, 1.0)
    body = parse_message(take_sent(agent)[0]).body
    assert b"a=inactive" in body and b"o=- 7 8 " in body


def test_unacked_reinvite_2xx_ends_the_call_after_64_t1() -> None:
    agent, invite, ok = established()
    agent.receive_datagram(request_from_far_end("INVITE", invite, ok, 2, sdp()), FAR, 1.0)
    while (deadline := agent.get_timer()) is not None and deadline < 40:
        agent.handle_timer(deadline)
    byes = [parse_request(d) for d in take_sent(agent) if d.startswith(b"BYE")]
    assert byes and {b.via[0].parameters["branch"] for b in byes} == {byes[0].via[0].parameters["branch"]}


def test_reinvite_without_sdp_gets_our_offer_and_ack_carries_the_answer() -> None:
    agent, invite, ok = established()
    agent.receive_datagram(request_from_far_end("INVITE", invite, ok, 2), FAR, 1.0)
    assert b"m=audio 20000" in parse_message(take_sent(agent)[0]).body
    ack = parse_request(in_dialog_request("ACK", invite, ok, 2))
    ack.headers.set("Content-Type", "application/sdp")
    ack.body = sdp("sendrecv", "192.0.2.88", 42000)
    agent.receive_datagram(serialize(ack), FAR, 1.1)
    assert _changes(take_events(agent)) == [(("192.0.2.88", 42000), "sendrecv")]


def test_offer_without_pcmu_is_488_and_changes_nothing() -> None:
    agent, invite, ok = established()
    agent.receive_datagram(request_from_far_end("INVITE", invite, ok, 2, sdp(codec="8 PCMA")), FAR, 1.0)
    assert take_sent(agent)[0].startswith(b"SIP/2.0 488")
    assert take_events(agent) == []


def test_update_refresh_is_answered_with_session_expires() -> None:
    agent, invite, ok = established()
    update = request_from_far_end("UPDATE", invite, ok, 2, headers={"Session-Expires": "600"})
    agent.receive_datagram(update, FAR, 1.0)
    response = parse_message(take_sent(agent)[0])
    assert response.code == 200  # type: ignore[union-attr]
    assert response.headers.get("Session-Expires") == "600;refresher=uac"
    assert response.headers.get("Require") == "timer"


def test_info_dtmf_relay_is_reported_and_other_bodies_refused() -> None:
    agent, invite, ok = established()
    info = parse_request(in_dialog_request("INFO", invite, ok, 2))
    info.headers.set("Content-Type", "application/dtmf-relay")
    info.body = b"Signal=11\r\nDuration=160\r\n"
    agent.receive_datagram(serialize(info), FAR, 1.0)
    assert take_sent(agent)[0].startswith(b"SIP/2.0 200")
    assert take_events(agent) == [DtmfReceived("#", 160)]
    info = parse_request(in_dialog_request("INFO", invite, ok, 3))
    info.headers.set("Content-Type", "application/json")
    info.body = b"{}"
    agent.receive_datagram(serialize(info), FAR, 1.1)
    assert take_sent(agent)[0].startswith(b"SIP/2.0 415")


def test_notify_refer_unknown_and_out_of_order_requests() -> None:
    agent, invite, ok = established()
    agent.receive_datagram(request_from_far_end("NOTIFY", invite, ok, 5), FAR, 1.0)
    agent.receive_datagram(request_from_far_end("REFER", invite, ok, 6), FAR, 1.0)
    agent.receive_datagram(request_from_far_end("MESSAGE", invite, ok, 7), FAR, 1.0)
    agent.receive_datagram(request_from_far_end("OPTIONS", invite, ok, 3), FAR, 1.0)
    codes = [d.split(b" ")[1] for d in take_sent(agent)]
    assert codes == [b"481", b"603", b"501", b"500"]


def test_we_refresh_with_update_at_half_interval_when_we_are_refresher() -> None:
    agent, _, _ = established({"Session-Expires": "120;refresher=uac", "Allow": "INVITE, ACK, BYE, UPDATE"})
    assert refresher_timer(agent) == 0.1 + 60
    agent.handle_timer(60.1)
    (update,) = [parse_request(d) for d in take_sent(agent)]
    assert update.method == "UPDATE" and update.body == b""
    assert update.headers.get("Session-Expires") == "120;refresher=uac"
    agent.receive_datagram(respond(update, 200, "OK", headers={"Session-Expires": "120;refresher=uac"}), DOMAIN, 60.2)
    assert refresher_timer(agent) == 60.2 + 60  # re-armed


def test_refresh_by_reinvite_when_update_not_allowed_and_481_ends_the_call() -> None:
    agent, _, _ = established({"Session-Expires": "90;refresher=uac", "Allow": "INVITE, ACK, BYE"})
    agent.handle_timer(45.1)
    (reinvite,) = [parse_request(d) for d in take_sent(agent)]
    assert reinvite.method == "INVITE" and b"m=audio 20000" in reinvite.body
    agent.receive_datagram(respond(reinvite, 481, "Call/Transaction Does Not Exist"), DOMAIN, 45.2)
    bye = [parse_request(d) for d in take_sent(agent) if d.startswith(b"BYE")]
    assert len(bye) == 1
    agent.receive_datagram(respond(bye[0], 200, "OK"), DOMAIN, 45.3)
    assert take_events(agent)[-1] == CallEnded(EndCause.SESSION_EXPIRED)


def test_far_end_refresher_that_never_refreshes_ends_the_call() -> None:
    agent, _, _ = established({"Session-Expires": "90;refresher=uas"})
    assert refresher_timer(agent) == 0.1 + 90 - 30  # interval - min(32, interval/3)
    agent.handle_timer(60.1)
    assert [d for d in take_sent(agent) if d.startswith(b"BYE")]


def test_no_session_expires_in_2xx_means_no_timer() -> None:
    agent, _, _ = established()
    assert refresher_timer(agent) is None


def test_our_invite_asks_for_session_timer_and_retries_after_422() -> None:
    settings = call_settings(
        call_id="c3@test",
        from_uri=URI.parse("sip:b@example.com"),
        offer=build_offer("192.0.2.2", 20000, Direction.RECVONLY, 7),
        credentials=None,
        session_expires=300,
    )
    agent = SipAgent()
    agent.add_call(OutboundCall(settings), 0.0)
    invite = parse_request(take_sent(agent)[0])
    assert invite.headers.get("Session-Expires") == "300;refresher=uac" and invite.headers.get("Supported") == "timer"
    agent.receive_datagram(respond(invite, 422, "Session Interval Too Small", headers={"Min-SE": "600"}), DOMAIN, 0.1)
    retried = [parse_request(d) for d in take_sent(agent) if d.startswith(b"INVITE")]
    assert retried[0].headers.get("Session-Expires") == "600;refresher=uac"


def test_glare_their_reinvite_during_our_refresh_gets_491() -> None:
    agent, invite, ok = established({"Session-Expires": "90;refresher=uac"})
    agent.handle_timer(45.1)
    take_sent(agent)
    agent.receive_datagram(request_from_far_end("INVITE", invite, ok, 2, sdp()), FAR, 45.2)
    assert take_sent(agent)[0].startswith(b"SIP/2.0 491")


def test_ladder_records_the_exchange_without_credentials() -> None:
    agent, _, _ = established()
    call = next(iter(agent.calls.values()))
    labels = [(e.direction, e.message.split(" ")[0]) for e in call.dialog.ladder.entries]
    assert labels == [("out", "INVITE"), ("in", "200"), ("out", "ACK")]


def test_session_expires_parsing() -> None:
    assert parse_session_expires("1800;refresher=uas") == parse_session_expires(" 1800 ; refresher = UAS")
    assert parse_session_expires("90").refresher is None  # type: ignore[union-attr]
    assert parse_session_expires("soon") is None and parse_session_expires(None) is None


def test_thirty_minute_call_we_refresh_every_half_interval_and_stay_up() -> None:
    agent, _, _ = established({"Session-Expires": "90;refresher=uac", "Allow": "INVITE, ACK, BYE, UPDATE"})
    refreshes = 0
    while (deadline := agent.get_timer()) is not None and deadline <= 1800:
        agent.handle_timer(deadline)
        for data in take_sent(agent):
            request = parse_request(data)
            assert request.method == "UPDATE", request.method  # never a BYE
            refreshes += 1
            ok = respond(request, 200, "OK", headers={"Session-Expires": "90;refresher=uac"})
            agent.receive_datagram(ok, DOMAIN, deadline + 0.05)
    assert 38 <= refreshes <= 40  # one every 45 s for 30 minutes
    assert take_events(agent) == [] and agent.calls


def test_thirty_minute_call_far_end_refreshes_and_we_never_hang_up() -> None:
    agent, invite, ok = established({"Session-Expires": "90;refresher=uas"})
    cseq = 2
    now = 0.1
    while now < 1800:
        now += 45
        assert refresher_timer(agent) > now  # type: ignore[operator]
        agent.handle_timer(now)
        # In their UPDATE they are the UAC: refresher=uac says they keep refreshing.
        update = request_from_far_end("UPDATE", invite, ok, cseq, headers={"Session-Expires": "90;refresher=uac"})
        agent.receive_datagram(update, FAR, now)
        assert take_sent(agent)[0].startswith(b"SIP/2.0 200 OK")
        cseq += 1
    assert take_events(agent) == [] and agent.calls


def test_info_for_a_key_frame_goes_one_at_a_time_answers_a_challenge_and_stops_after_501() -> None:
    """RFC 6086 4.2.1 (one INFO at a time), RFC 5168 body; a far end that does not do INFO is left alone."""
    agent, _, _ = established()
    body = b'<?xml version="1.0"?><media_control><vc_primitive><to_encoder><picture_fast_update/>'
    body += b"</to_encoder></vc_primitive></media_control>"
    assert agent.send_info("c2@test", "application/media_control+xml", body, 1.0)
    first = parse_request(take_sent(agent)[0])
    assert first.method == "INFO" and first.headers.get("Content-Type") == "application/media_control+xml"
    assert first.body == body and first.to_address.parameters.get("tag") == "far1"
    assert not agent.send_info("c2@test", "application/media_control+xml", body, 1.1)  # one pending
    challenge = 'Digest realm="example.com", nonce="abc", qop="auth"'
    agent.receive_datagram(respond(first, 401, "Unauthorized", headers={"WWW-Authenticate": challenge}), FAR, 1.2)
    retried = parse_request(take_sent(agent)[0])
    assert retried.method == "INFO" and (retried.headers.get("Authorization") or "").startswith("Digest ")
    assert retried.cseq.sequence == first.cseq.sequence + 1 and retried.body == body
    agent.receive_datagram(respond(retried, 501, "Not Implemented"), FAR, 1.3)
    assert not agent.send_info("c2@test", "application/media_control+xml", body, 2.0)  # refused for good
    assert take_sent(agent) == [] and not any(isinstance(e, CallEnded) for e in take_events(agent))
