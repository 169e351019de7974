"""Lip sync, key frame recovery and resolution changes of a SIP video call, measured in the pulled stream.

The far end (tests/support/av_far_end.py) makes a white flash and a 1 kHz beep at the same
instants; what nginx-rtmp serves is decoded by FFmpeg here (tests/support/av_check.py) and
the offset between them is what a viewer would see. Key frame requests are counted by the
far end from the RTCP it received.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator

import pytest

from tests.support.av_check import PulledAv, decode_rtp_h264, pull_av
from tests.support.av_far_end import AvFarEnd, AvScript
from tests.support.call_bodies import direct_call_body
from tests.support.daemon import BridgeDaemon
from tests.support.nginx_rtmp import NginxRtmp

pytestmark = pytest.mark.e2e


def _call(daemon: BridgeDaemon, nginx: NginxRtmp, far_end: AvFarEnd, name: str, seconds: float) -> PulledAv:
    body = direct_call_body(
        name, name, nginx.url, far_end.port, callee="av", connection={"codecs": "pcmu,h264", "appKey": "e2e"}
    )
    status, reply = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    daemon.wait_state(name, {"ESTABLISHED"})
    pulled = pull_av(f"{nginx.url}/{name}", seconds)
    audio = ("packets", "latePackets", "concealedMs", "silenceInsertedSeconds")
    counters = daemon.call(name)["counters"]  # type: ignore[index]
    print(f"\n{name} audio: { ({k: v for k, v in counters.items() if k in audio}) }")
    LAST_COUNTERS.clear()
    LAST_COUNTERS.update(counters)
    daemon.request("POST", "/RESTCall/terminate", {"callId": name})
    daemon.wait_gone(name)
    return pulled


@pytest.fixture
def far_end(request: pytest.FixtureRequest) -> Iterator[AvFarEnd]:
    peer = AvFarEnd(request.param)
    yield peer
    peer.stop()


LAST_COUNTERS: dict[str, object] = {}  # the API's counters of the last call, just before it ended
LATE_VIDEO = AvScript(video_delay=2.0, video_latency=0.15, sr_after=3.5)


@pytest.mark.parametrize("far_end", [LATE_VIDEO], indirect=True)
def test_flash_and_beep_stay_together_and_the_h264_is_passed_through(
    nginx: NginxRtmp, daemon: BridgeDaemon, far_end: AvFarEnd
) -> None:
    """Video 2 s after audio, 150 ms encoder latency, unrelated timestamps, first SRs at 3.5 s."""
    pulled = _call(daemon, nginx, far_end, "sync1", seconds=12.0)
    offsets = pulled.offsets()
    settled = [offset for flash, offset in offsets if flash >= offsets[-1][0] - 5.0]
    print(f"\nA/V offsets (flash pts, sound minus picture ms): {[(round(f, 2), round(o * 1000)) for f, o in offsets]}")
    assert len(settled) >= 4, offsets
    assert all(abs(offset) <= 0.040 for offset in settled), settled

    sent = {tuple(n for n in unit.nals if n[0] & 0x1F not in (7, 8)) for unit in far_end.log.sent_units}
    matched = sum(frame.nals in sent for frame in pulled.frames)
    print(f"pulled frames {len(pulled.frames)}, byte-identical to a sent access unit: {matched}")
    assert pulled.frames and matched == len(pulled.frames) and pulled.decode_errors == 0
    # the API's view, against what the far end is scripted to do: 320x240, 25 fps, video 150 ms late
    shown = {k: LAST_COUNTERS[k] for k in ("videoWidth", "videoHeight", "videoFrameRate", "videoArrivalOffsetMs")}
    print(f"API counters: {shown}")
    assert (shown["videoWidth"], shown["videoHeight"]) == (320, 240)
    assert abs(float(shown["videoFrameRate"]) - 25) <= 1  # type: ignore[arg-type]
    assert abs(float(shown["videoArrivalOffsetMs"]) - 150) <= 25  # type: ignore[arg-type]


WITHHELD_AND_LOSSY = AvScript(withhold_idr=True, loss=(4.0, 6.0, 0.05), resize=(8.0, 480, 272))


@pytest.mark.parametrize("far_end", [WITHHELD_AND_LOSSY], indirect=True)
def test_key_frames_are_asked_for_at_start_and_after_loss_and_a_new_size_goes_on(
    nginx: NginxRtmp, daemon: BridgeDaemon, far_end: AvFarEnd
) -> None:
    """No IDR until asked; 5 % of video packets lost from 4 to 6 s; 320x240 → 480x272 at 8 s."""
    pulled = _call(daemon, nginx, far_end, "recover1", seconds=12.0)
    log = far_end.log
    first_request = log.keyframe_requests[0][0] if log.keyframe_requests else None
    flashes = pulled.flashes()
    origin = flashes[0] - 1.0  # the pulled time of the far end's media time 0 (first flash at 1 s)
    after_loss = [f.pts - origin for f in pulled.frames if f.pts - origin >= 6.0]
    gaps = [b.pts - a.pts for a, b in zip(pulled.frames, pulled.frames[1:], strict=False)]
    keyframes = [round(f.pts - origin, 2) for f in pulled.frames if f.keyframe]
    print(
        f"\nrequests {[(round(at, 2), kind) for at, kind in log.keyframe_requests]}, key frames pulled at {keyframes}"
        f", lost {log.lost_packets} packets; first frame at media "
        f"{pulled.frames[0].pts - origin:.2f} s, first after loss at {after_loss[0]:.2f} s; longest gap "
        f"{max(gaps) * 1000:.0f} ms; sizes {sorted({(f.width, f.height) for f in pulled.frames})}"
    )
    assert first_request is not None and first_request < 1.0
    assert pulled.frames[0].pts - origin < 1.0 and pulled.decode_errors == 0
    assert log.lost_packets > 0 and any(4.0 <= at <= 7.0 for at, _ in log.keyframe_requests)
    assert after_loss[0] < 7.0
    assert (pulled.frames[-1].width, pulled.frames[-1].height) == (480, 272)
    assert pulled.frames[-1].pts - origin > 10.0


@pytest.mark.parametrize("far_end", [AvScript()], indirect=True)
def test_has_video_sends_our_picture_that_the_far_end_decodes_and_a_pli_gets_an_idr(
    nginx: NginxRtmp, daemon: BridgeDaemon, far_end: AvFarEnd
) -> None:
    """hasVideo true: m=video sendrecv, our slate as RTP H.264 at [video] send_fps, IDR on PLI."""
    body = direct_call_body(
        "sends1", "sends1", nginx.url, far_end.port, callee="av", hasVideo="true",
        connection={"codecs": "pcmu,h264", "appKey": "e2e"},
    )  # fmt: skip
    status, reply = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    daemon.wait_state("sends1", {"ESTABLISHED"})
    time.sleep(4.5)  # past the first GOP (2 s), so the next IDR can only come from the PLI
    asked = time.monotonic() - far_end.media_start
    far_end.send_pli()
    time.sleep(1.5)
    daemon.request("POST", "/RESTCall/terminate", {"callId": "sends1"})
    daemon.wait_gone("sends1")
    video_line = re.search(r"^m=video .*?(?=^m=|\Z)", far_end.log.offer, re.M | re.S)
    pictures = decode_rtp_h264(far_end.log.video_in)
    keys = [round(p.arrived, 2) for p in pictures if p.keyframe]
    after = [p.arrived - asked for p in pictures if p.keyframe and p.arrived > asked]
    span = pictures[-1].arrived - pictures[0].arrived
    print(
        f"\nfar end decoded {len(pictures)} pictures {sorted({(p.width, p.height) for p in pictures})} over "
        f"{span:.1f} s, key frames at {keys}, PLI at {asked:.2f} s → IDR after {after[0] * 1000:.0f} ms; "
        f"payload types {sorted({pt for _, pt, *_ in far_end.log.video_in})}"
    )
    assert video_line is not None and "a=sendrecv" in video_line.group(0)
    assert {pt for _, pt, *_ in far_end.log.video_in} == {96}  # the answer's payload type
    assert {(p.width, p.height) for p in pictures} == {(640, 360)}
    assert abs((len(pictures) - 1) / span - 5) <= 0.5
    assert after and after[0] <= 0.25  # the next frame (5 fps) after the PLI is the IDR


@pytest.mark.parametrize("far_end", [AvScript(pause=(3.0, 8.0))], indirect=True)
def test_camera_off_shows_the_slate_after_stall_seconds_and_the_far_end_again_when_it_is_back(
    nginx: NginxRtmp, daemon: BridgeDaemon, far_end: AvFarEnd
) -> None:
    """No video from 3 to 8 s; [video] stall_seconds = 3 (default), slate 1280x720 (default)."""
    pulled = _call(daemon, nginx, far_end, "stall1", seconds=12.0)
    origin = pulled.flashes()[0] - 1.0
    runs: list[list[float]] = []  # [first media time, last media time, width, height] per picture size
    for frame in pulled.frames:
        at = frame.pts - origin
        if not runs or runs[-1][2:] != [frame.width, frame.height]:
            runs.append([at, at, frame.width, frame.height])
        runs[-1][1] = at
    beeps = [round(float(b - origin), 2) for b in pulled.beeps()]
    print(f"\npicture runs (from s, to s, w, h): {[[round(v, 2) for v in r] for r in runs]}; beeps at {beeps}")
    assert [r[2:] for r in runs] == [[320, 240], [1280, 720], [320, 240]] and pulled.decode_errors == 0
    assert 5.8 <= runs[1][0] <= 6.5 and runs[2][0] - 8.0 < 1.0  # the slate 3 s after the last frame
    assert all(0.95 <= b - a <= 1.05 for a, b in itertools.pairwise(beeps)) and len(beeps) >= 9


@pytest.mark.parametrize("far_end", [AvScript(withhold_idr=True, rtcp_fb=False)], indirect=True)
def test_without_rtcp_feedback_key_frames_are_asked_for_by_sip_info(
    nginx: NginxRtmp, daemon: BridgeDaemon, far_end: AvFarEnd
) -> None:
    """No a=rtcp-fb in the answer: RFC 5168 picture_fast_update in a SIP INFO, and video within 1 s."""
    pulled = _call(daemon, nginx, far_end, "info1", seconds=6.0)
    origin = pulled.flashes()[0] - 1.0
    print(f"\nrequests {[(round(at, 2), kind) for at, kind in far_end.log.keyframe_requests]}; first frame "
          f"at media {pulled.frames[0].pts - origin:.2f} s; SIP {far_end.log.requests}")  # fmt: skip
    kinds = {kind for _, kind in far_end.log.keyframe_requests}
    assert kinds == {"info"} and far_end.log.keyframe_requests[0][0] < 1.0
    assert pulled.frames[0].pts - origin < 1.0 and pulled.decode_errors == 0


@pytest.mark.parametrize("far_end", [AvScript(new_source_at=4.0)], indirect=True)
def test_a_new_video_ssrc_mid_call_is_followed(nginx: NginxRtmp, daemon: BridgeDaemon, far_end: AvFarEnd) -> None:
    """At 4 s the video comes from a new SSRC with unrelated sequence numbers and timestamps."""
    pulled = _call(daemon, nginx, far_end, "ssrc1", seconds=9.0)
    origin = pulled.flashes()[0] - 1.0
    after = [round(f.pts - origin, 2) for f in pulled.frames if f.pts - origin >= 4.0]
    offsets = [(round(f - origin, 2), round(o * 1000)) for f, o in pulled.offsets()]
    print(f"\nframes after the switch from {after[:1]} to {after[-1:]}, {len(after)} in all; A/V offsets {offsets}")
    assert after and after[0] < 5.0 and after[-1] > 8.0 and pulled.decode_errors == 0
    assert all(abs(offset) <= 40 for flash, offset in offsets if flash >= 6.0)


@pytest.mark.parametrize("far_end", [AvScript(srtp=True, withhold_idr=True)], indirect=True)
def test_srtp_keys_of_its_own_on_the_video_line_both_ways(
    nginx: NginxRtmp, daemon: BridgeDaemon, far_end: AvFarEnd
) -> None:
    """SDES (RFC 4568) per media line; the far end protects and checks with libsrtp: its H.264 on the
    stream, its key frame request (SRTCP FIR) answered, our picture (hasVideo) decoded there."""
    body = direct_call_body(
        "srtp-v1", "srtpv1", nginx.url, far_end.port, callee="av", hasVideo="true",
        connection={"codecs": "pcmu,h264", "appKey": "e2e", "srtp": "optional"},
    )  # fmt: skip
    status, reply = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    daemon.wait_state("srtp-v1", {"ESTABLISHED"})
    pulled = pull_av(f"{nginx.url}/srtpv1", 5.0)
    daemon.request("POST", "/RESTCall/terminate", {"callId": "srtp-v1"})
    daemon.wait_gone("srtp-v1")
    sections = re.split(r"^(?=m=)", far_end.log.offer, flags=re.M)[1:]
    keys = [re.findall(r"inline:(\S+)", section) for section in sections]
    pictures = decode_rtp_h264(far_end.log.video_in)
    print(f"\npulled {len(pulled.frames)} frames, far end decoded {len(pictures)} of ours, requests "
          f"{far_end.log.keyframe_requests[:3]}, libsrtp refused {far_end.log.srtp_failures}")  # fmt: skip
    assert len(keys) == 2 and keys[0] and keys[1] and not set(keys[0]) & set(keys[1])  # a key per line
    assert pulled.frames and pulled.decode_errors == 0 and far_end.log.keyframe_requests
    assert len(pictures) >= 15 and far_end.log.srtp_failures == 0
