"""The publish policy on a fake clock: backoff, giving up, the progress and acknowledgement
watchdog, and video resuming on a key frame after every publish."""

from __future__ import annotations

from bridge.rtmp.policy import KeyframeGate, ProgressWatchdog, PublishSettings, ReconnectPolicy

SETTINGS = PublishSettings(initial_backoff=0.5, max_backoff=2.0, give_up_seconds=10.0, stall_seconds=3.0)


def test_backoff_doubles_to_its_cap_and_a_publish_resets_it() -> None:
    policy = ReconnectPolicy(SETTINGS)
    delays = [policy.failed(100.0 + n, had_published=False) for n in range(5)]
    assert delays == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert policy.failed(106.0, had_published=True) == 0.5  # it published in between: from the start again


def test_the_stream_is_given_up_after_failing_for_the_limit_counted_from_the_last_publish() -> None:
    policy = ReconnectPolicy(SETTINGS)
    assert policy.failed(0.0, had_published=True) == 0.5
    assert policy.failed(9.9, had_published=False) is not None
    assert policy.failed(10.1, had_published=False) is None
    forever = ReconnectPolicy(PublishSettings(give_up_seconds=0))
    assert all(forever.failed(t * 100.0, had_published=False) is not None for t in range(100))


def test_no_progress_while_media_waits_restarts_the_connection() -> None:
    watchdog = ProgressWatchdog(SETTINGS)
    watchdog.connected(0.0)
    assert watchdog.check(5.0, waiting=False, unacknowledged=None, sent=0) is None  # nothing to send: idle is fine
    assert watchdog.check(2.9, waiting=True, unacknowledged=None, sent=0) is None
    assert watchdog.check(3.1, waiting=True, unacknowledged=None, sent=0) == "no progress for 3 s"
    watchdog.wrote(3.1)
    assert watchdog.check(5.0, waiting=True, unacknowledged=None, sent=0) is None


def test_a_server_that_stops_acknowledging_is_restarted_after_two_windows_are_owed_for_the_stall_time() -> None:
    watchdog = ProgressWatchdog(SETTINGS)
    watchdog.connected(0.0)
    window = SETTINGS.ack_window_bytes
    assert watchdog.check(1.0, waiting=False, unacknowledged=window, sent=window) is None  # one window: not owed
    assert watchdog.check(2.0, waiting=False, unacknowledged=2 * window, sent=2 * window) is None  # owed from 2.0
    assert watchdog.check(4.9, waiting=False, unacknowledged=3 * window, sent=3 * window) is None
    reason = watchdog.check(5.1, waiting=False, unacknowledged=3 * window, sent=3 * window)
    assert reason is not None and "acknowledged nothing" in reason
    watchdog.connected(6.0)  # a new connection to the same server, which has shown it acknowledges:
    assert watchdog.check(6.5, waiting=False, unacknowledged=None, sent=2 * window) is None  # judged from its start
    assert watchdog.check(9.6, waiting=False, unacknowledged=None, sent=3 * window) is not None


def test_a_server_that_never_acknowledges_is_judged_by_its_socket_alone() -> None:
    watchdog = ProgressWatchdog(SETTINGS)
    watchdog.connected(0.0)
    assert watchdog.check(60.0, waiting=False, unacknowledged=None, sent=10**7) is None
    silent = ProgressWatchdog(PublishSettings(stall_seconds=3.0, ack_window_bytes=0))  # we did not ask
    silent.connected(0.0)
    assert silent.check(2.0, waiting=False, unacknowledged=10**6, sent=10**6) is None
    assert silent.check(60.0, waiting=False, unacknowledged=10**6, sent=10**6) is None


def test_video_resumes_on_a_key_frame_after_every_publish() -> None:
    gate = KeyframeGate()
    assert [gate.accept(k) for k in (False, False, True, False)] == [False, False, True, True]
    gate.published()
    assert [gate.accept(k) for k in (False, True, False)] == [False, True, True]
