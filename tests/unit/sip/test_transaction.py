"""RFC 3261 section 17 client and server transaction timers, on a fake clock."""

from __future__ import annotations

from sipmessage import CSeq

from bridge.sip.addressing import udp
from bridge.sip.message import parse_message
from bridge.sip.timers import TimerSettings
from bridge.sip.transaction import ClientTransaction, ServerTransaction, TransactionState
from tests.support.sipfakes import make_request, respond

DEST = udp("192.0.2.1", 5060)
TIMERS = TimerSettings()


def run_until(transaction: ClientTransaction, end: float) -> list[float]:
    """Fire timers up to ``end``; return the times at which datagrams went out."""
    sent = []
    while (deadline := transaction.get_timer()) is not None and deadline <= end:
        transaction.handle_timer(deadline)
        if transaction.outbox:
            sent.append(deadline)
            transaction.outbox.clear()
    return sent


def test_invite_retransmits_with_timer_a_doubling_until_timer_b() -> None:
    transaction = ClientTransaction(make_request("INVITE"), DEST, 0.0, TIMERS)
    assert len(transaction.outbox) == 1
    transaction.outbox.clear()
    sent = run_until(transaction, 100.0)
    assert sent == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert transaction.terminated and transaction.timed_out  # Timer B = 64*T1 = 32 s


def test_provisional_stops_invite_retransmission_and_timer_b() -> None:
    invite = make_request("INVITE")
    transaction = ClientTransaction(invite, DEST, 0.0, TIMERS)
    ringing = parse_message(respond(invite, 180, "Ringing"))
    assert transaction.receive_response(ringing, 0.2) is not None  # type: ignore[arg-type]
    assert transaction.state is TransactionState.PROCEEDING
    assert transaction.get_timer() is None


def test_non_2xx_final_is_acked_in_transaction_and_absorbed_on_retransmission() -> None:
    invite = make_request("INVITE")
    transaction = ClientTransaction(invite, DEST, 0.0, TIMERS)
    transaction.outbox.clear()
    final = parse_message(respond(invite, 486, "Busy Here"))
    assert transaction.receive_response(final, 1.0) is not None  # type: ignore[arg-type]
    ack = parse_message(transaction.outbox.pop()[0])
    assert ack.method == "ACK" and ack.cseq == CSeq(1, "ACK")  # type: ignore[union-attr]
    assert ack.via[0].parameters["branch"] == "z9hG4bKtestINVITE"  # same transaction, section 17.1.1.3
    assert ack.to_address.parameters["tag"] == "far1"
    assert transaction.receive_response(final, 2.0) is None  # type: ignore[arg-type]
    assert len(transaction.outbox) == 1  # the ACK again
    transaction.handle_timer(1.0 + 32.0)  # Timer D
    assert transaction.terminated and not transaction.timed_out


def test_2xx_enters_accepted_and_is_passed_up_until_timer_m() -> None:
    invite = make_request("INVITE")
    transaction = ClientTransaction(invite, DEST, 0.0, TIMERS)
    ok = parse_message(respond(invite, 200, "OK"))
    assert transaction.receive_response(ok, 1.0) is not None  # type: ignore[arg-type]
    assert transaction.state is TransactionState.ACCEPTED
    assert transaction.receive_response(ok, 2.0) is not None  # type: ignore[arg-type]
    transaction.handle_timer(1.0 + 32.0)
    assert transaction.terminated


def test_non_invite_timer_e_caps_at_t2_and_timer_f_times_out() -> None:
    transaction = ClientTransaction(make_request("BYE"), DEST, 0.0, TIMERS)
    transaction.outbox.clear()
    sent = run_until(transaction, 100.0)
    assert sent[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]  # 0.5, 1, 2, 4, 4 (T2)
    assert transaction.terminated and transaction.timed_out


def test_non_invite_final_then_timer_k() -> None:
    bye = make_request("BYE")
    transaction = ClientTransaction(bye, DEST, 0.0, TIMERS)
    assert transaction.receive_response(parse_message(respond(bye, 200, "OK")), 0.1) is not None  # type: ignore[arg-type]
    assert transaction.get_timer() == 0.1 + TIMERS.t4
    transaction.handle_timer(0.1 + TIMERS.t4)
    assert transaction.terminated and not transaction.timed_out


def test_server_transaction_resends_final_response_and_ends_after_timer_j() -> None:
    bye = make_request("BYE")
    server = ServerTransaction(bye, udp("192.0.2.1", 5060), 0.0, TIMERS)
    server.receive_retransmission()
    assert server.outbox == []  # nothing to resend yet
    response = parse_message(respond(bye, 200, "OK"))
    server.respond(response, 1.0)  # type: ignore[arg-type]
    server.receive_retransmission()
    assert len(server.outbox) == 2 and server.outbox[0] == server.outbox[1]
    server.handle_timer(1.0 + 32.0)
    assert server.terminated
