"""The outbound call core: auth retry, ACK, dialog routing, BYE, CANCEL, far-end requests."""

from __future__ import annotations

from bridge.sip.addressing import udp
from bridge.sip.call import CallPhase
from bridge.sip.events import CallAnswered, CallEnded, CallProgress, EndCause
from tests.support.sipfakes import (
    CHALLENGE,
    DOMAIN,
    ROUTES,
    SDP_ANSWER,
    establish,
    in_dialog_request,
    new_call,
    parse_request,
    respond,
    take_datagrams,
    take_events,
)


def test_invite_is_retried_with_credentials_new_branch_and_next_cseq() -> None:
    agent, call = new_call()
    first = parse_request(agent.outbox[0][0])
    invite_bytes, _ = establish(agent)
    second = parse_request(invite_bytes)
    assert second.cseq.sequence == first.cseq.sequence + 1
    assert second.via[0].parameters["branch"] != first.via[0].parameters["branch"]
    assert second.call_id == first.call_id and second.from_address == first.from_address
    auth = second.headers.get("Proxy-Authorization") or ""
    assert 'username="bridge"' in auth and 'realm="example.com"' in auth and "nc=00000001" in auth
    assert [type(e) for e in take_events(agent)] == [CallProgress, CallAnswered]
    assert call.phase is CallPhase.CONFIRMED


def test_ack_for_2xx_goes_through_the_route_set_to_the_remote_target() -> None:
    agent, _call = new_call()
    establish(agent)
    ((ack_bytes, destination),) = take_datagrams(agent)
    ack = parse_request(ack_bytes)
    assert ack.method == "ACK" and str(ack.uri) == "sip:uas@192.0.2.9:5080"
    assert [str(r.uri) for r in ack.route] == ["sip:192.0.2.1;lr", "sip:192.0.2.50:5070;lr"]
    assert destination.address == ("192.0.2.1", 5060)
    assert ack.cseq.sequence == 2 and ack.to_address.parameters["tag"] == "far1"


def test_retransmitted_2xx_gets_the_same_ack_again() -> None:
    agent, _ = new_call()
    _, ok = establish(agent)
    first_ack = take_datagrams(agent)
    agent.receive_datagram(ok, DOMAIN, 0.8)
    assert take_datagrams(agent) == first_ack


def test_second_challenge_after_our_credentials_fails_without_retry() -> None:
    agent, call = new_call()
    invite = parse_request(take_datagrams(agent)[0][0])
    agent.receive_datagram(respond(invite, 407, "Proxy Authentication Required", headers=CHALLENGE), DOMAIN, 0.1)
    second = parse_request(take_datagrams(agent)[1][0])
    agent.receive_datagram(respond(second, 407, "Proxy Authentication Required", headers=CHALLENGE), DOMAIN, 0.2)
    assert [parse_request(d).method for d, _ in take_datagrams(agent)] == ["ACK"]
    (ended,) = take_events(agent)
    assert ended == CallEnded(EndCause.AUTH_FAILED, 407, "Proxy Authentication Required")
    assert call.phase is CallPhase.TERMINATED


def test_stale_nonce_is_answered_again_without_counting_as_failure() -> None:
    agent, _ = new_call()
    invite = parse_request(take_datagrams(agent)[0][0])
    agent.receive_datagram(respond(invite, 407, "Proxy Authentication Required", headers=CHALLENGE), DOMAIN, 0.1)
    second = parse_request(take_datagrams(agent)[1][0])
    stale = {"Proxy-Authenticate": 'Digest realm="example.com", nonce="n2", qop="auth", stale=true'}
    agent.receive_datagram(respond(second, 407, "Proxy Authentication Required", headers=stale), DOMAIN, 0.2)
    third = parse_request(take_datagrams(agent)[1][0])
    assert 'nonce="n2"' in (third.headers.get("Proxy-Authorization") or "")


def test_rejection_maps_to_cause_with_code_and_phrase() -> None:
    agent, _ = new_call()
    invite = parse_request(take_datagrams(agent)[0][0])
    agent.receive_datagram(respond(invite, 486, "Busy Here"), DOMAIN, 0.1)
    assert take_events(agent) == [CallEnded(EndCause.BUSY, 486, "Busy Here")]


def test_local_hangup_sends_bye_in_dialog_and_ends_on_200() -> None:
    agent, _call = new_call()
    establish(agent)
    take_datagrams(agent)
    take_events(agent)
    agent.hangup("c1@test", 1.0)
    ((bye_bytes, destination),) = take_datagrams(agent)
    bye = parse_request(bye_bytes)
    assert bye.method == "BYE" and bye.cseq.sequence == 3 and destination.address == ("192.0.2.1", 5060)
    assert len(bye.route) == 2 and bye.to_address.parameters["tag"] == "far1"
    agent.receive_datagram(respond(bye, 200, "OK"), DOMAIN, 1.1)
    assert take_events(agent) == [CallEnded(EndCause.LOCAL_HANGUP)]


def test_far_end_bye_is_answered_200_and_retransmission_absorbed() -> None:
    agent, _call = new_call()
    invite_bytes, ok = establish(agent)
    take_datagrams(agent)
    take_events(agent)
    bye = in_dialog_request("BYE", parse_request(invite_bytes), ok, cseq=7)
    agent.receive_datagram(bye, DOMAIN, 2.0)
    ((response, destination),) = take_datagrams(agent)
    assert response.startswith(b"SIP/2.0 200 OK") and destination.address == ("192.0.2.1", 5060)
    assert take_events(agent) == [CallEnded(EndCause.REMOTE_HANGUP)]
    agent.receive_datagram(bye, DOMAIN, 2.5)
    assert take_datagrams(agent) == [(response, destination)]


def test_far_end_options_in_dialog_gets_200() -> None:
    agent, _ = new_call()
    invite_bytes, ok = establish(agent)
    take_datagrams(agent)
    agent.receive_datagram(in_dialog_request("OPTIONS", parse_request(invite_bytes), ok), DOMAIN, 2.0)
    ((response, _),) = take_datagrams(agent)
    assert response.startswith(b"SIP/2.0 200 OK") and b"Allow: INVITE" in response


def test_hangup_while_ringing_sends_cancel_then_ends_on_487() -> None:
    agent, _ = new_call()
    invite = parse_request(take_datagrams(agent)[0][0])
    agent.receive_datagram(respond(invite, 180, "Ringing"), DOMAIN, 0.1)
    take_events(agent)
    agent.hangup("c1@test", 0.5)
    ((cancel_bytes, _),) = take_datagrams(agent)
    cancel = parse_request(cancel_bytes)
    assert cancel.method == "CANCEL" and cancel.cseq.sequence == invite.cseq.sequence
    assert cancel.via[0].parameters["branch"] == invite.via[0].parameters["branch"]
    agent.receive_datagram(respond(cancel, 200, "OK"), DOMAIN, 0.6)
    agent.receive_datagram(respond(invite, 487, "Request Terminated"), DOMAIN, 0.7)
    assert take_events(agent) == [CallEnded(EndCause.LOCAL_HANGUP, 487, "Request Terminated")]


def test_2xx_racing_our_cancel_is_acked_and_byed() -> None:
    agent, _ = new_call()
    invite = parse_request(take_datagrams(agent)[0][0])
    agent.receive_datagram(respond(invite, 180, "Ringing"), DOMAIN, 0.1)
    agent.hangup("c1@test", 0.5)
    take_datagrams(agent)
    agent.receive_datagram(respond(invite, 200, "OK", headers=ROUTES, body=SDP_ANSWER), DOMAIN, 0.6)
    assert [parse_request(d).method for d, _ in take_datagrams(agent)] == ["ACK", "BYE"]


def test_no_answer_timeout_cancels() -> None:
    agent, _ = new_call(answer_timeout=5.0)
    invite = parse_request(take_datagrams(agent)[0][0])
    agent.receive_datagram(respond(invite, 180, "Ringing"), DOMAIN, 0.1)
    agent.handle_timer(5.0)
    assert [parse_request(d).method for d, _ in take_datagrams(agent)] == ["CANCEL"]
    agent.receive_datagram(respond(invite, 487, "Request Terminated"), DOMAIN, 5.1)
    assert take_events(agent)[-1] == CallEnded(EndCause.NO_ANSWER, 487, "Request Terminated")


def test_timer_b_without_any_response_ends_with_timeout() -> None:
    agent, _ = new_call()
    while (deadline := agent.get_timer()) is not None and deadline < 40:
        agent.handle_timer(deadline)
    assert take_events(agent) == [CallEnded(EndCause.TIMEOUT, 408, "Request Timeout")]
    assert len(take_datagrams(agent)) == 7  # the INVITE and six retransmissions (Timer A)


def test_302_is_followed_to_the_contact_and_challenges_are_answered_there() -> None:
    agent, _ = new_call()
    invite = parse_request(take_datagrams(agent)[0][0])
    moved = {"Contact": "<sip:uas@192.0.2.60:5090>"}
    agent.receive_datagram(respond(invite, 302, "Moved Temporarily", headers=moved), DOMAIN, 0.1)
    (ack, _), (second_bytes, destination) = take_datagrams(agent)
    second = parse_request(second_bytes)
    assert parse_request(ack).method == "ACK"
    assert str(second.uri) == "sip:uas@192.0.2.60:5090" and destination.address == ("192.0.2.60", 5090)
    assert second.cseq.sequence == invite.cseq.sequence + 1 and second.call_id == invite.call_id
    assert str(second.to_address.uri) == "sip:uas@example.com"
    assert isinstance(take_events(agent)[0], CallProgress)
    agent.receive_datagram(respond(second, 407, "Proxy Authentication Required", headers=CHALLENGE), DOMAIN, 0.2)
    third = parse_request(take_datagrams(agent)[1][0])
    assert 'uri="sip:uas@192.0.2.60:5090"' in (third.headers.get("Proxy-Authorization") or "")


def test_redirects_stop_after_three_hops() -> None:
    agent, _ = new_call()
    request = parse_request(take_datagrams(agent)[0][0])
    for hop in range(4):
        moved = {"Contact": f"<sip:uas@192.0.2.{61 + hop}>"}
        agent.receive_datagram(respond(request, 302, "Moved Temporarily", headers=moved), DOMAIN, 0.1 * hop)
        invites = [parse_request(d) for d, _ in take_datagrams(agent) if d.startswith(b"INVITE")]
        if hop < 3:
            request = invites[0]
        else:
            assert invites == []
    assert take_events(agent)[-1] == CallEnded(EndCause.REJECTED, 302, "Moved Temporarily")


def test_silence_until_timer_b_is_a_timeout_even_after_the_answer_timeout() -> None:
    agent, _ = new_call(answer_timeout=2.0)
    while (deadline := agent.get_timer()) is not None and deadline < 40:
        agent.handle_timer(deadline)
    assert take_events(agent) == [CallEnded(EndCause.TIMEOUT, 408, "Request Timeout")]


def test_503_then_timeout_fail_over_to_the_next_servers() -> None:
    from bridge.sip.events import ServerFailover

    second, third = udp("192.0.2.21", 5060), udp("192.0.2.22", 5060)
    agent, _ = new_call(alternates=[second, third])
    invite = parse_request(take_datagrams(agent)[0][0])
    agent.receive_datagram(respond(invite, 503, "Service Unavailable"), DOMAIN, 0.1)
    sent = take_datagrams(agent)
    assert [parse_request(d).method for d, _ in sent] == ["ACK", "INVITE"] and sent[1][1] == second
    assert take_events(agent) == [ServerFailover(str(second), "503 Service Unavailable")]
    while (deadline := agent.get_timer()) is not None and deadline < 40:
        agent.handle_timer(deadline)
        if any(dest == third for _, dest in agent.outbox):
            break
    assert any(dest == third for _, dest in take_datagrams(agent))
    assert take_events(agent) == [ServerFailover(str(third), "timeout")]


def test_2xx_from_a_second_fork_is_acked_and_byed_without_touching_the_call() -> None:
    agent, call = new_call()
    invite_bytes, _ = establish(agent)
    take_datagrams(agent)
    take_events(agent)
    invite = parse_request(invite_bytes)
    fork = respond(
        invite, 200, "OK", to_tag="fork2", headers={"Contact": "<sip:other@192.0.2.77:5090>"}, body=SDP_ANSWER
    )
    agent.receive_datagram(fork, DOMAIN, 0.5)
    ack, bye = [(parse_request(d), dest) for d, dest in take_datagrams(agent)]
    assert ack[0].method == "ACK" and ack[0].to_address.parameters["tag"] == "fork2"
    assert bye[0].method == "BYE" and str(bye[0].uri) == "sip:other@192.0.2.77:5090"
    assert bye[1].address == ("192.0.2.77", 5090)
    agent.receive_datagram(respond(bye[0], 200, "OK", to_tag="fork2"), DOMAIN, 0.6)
    assert take_events(agent) == [] and call.phase is CallPhase.CONFIRMED and call.dialog.remote_tag == "far1"
    agent.receive_datagram(fork, DOMAIN, 0.7)  # a retransmission of the fork's 2xx: ACK again, no new BYE
    assert [parse_request(d).method for d, _ in take_datagrams(agent)] == ["ACK"]
