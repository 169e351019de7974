"""Audio codecs other than PCMU, against baresip far ends through kamailio (RFC 3551, RFC 7587).

Each far end account offers or answers only one codec. What nginx-rtmp recorded is decoded
with FFmpeg (through PyAV) and analysed here: the tone's frequency, the timeline's largest
gap, the recording's length against the call's. G.722 and Opus carry 16-48 kHz audio, so a
6 kHz tone (above the telephone band, lost in G.711) must come through them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.audio import PulledAudio, dominant_frequency, read_recording, rms_dbfs
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount, domain_in_front_of
from tests.support.nginx_rtmp import NginxRtmp

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def high_tone_domain(workdir: Path, account: SipAccount) -> Iterator[Kamailio]:
    with domain_in_front_of(workdir / "high-tone", account, source="ausine,6000") as domain:
        yield domain


def _codec_call(
    call_id: str, callee: str, codecs: list[str], nginx: NginxRtmp, domain: Kamailio, account: SipAccount, **fields: Any
) -> dict[str, Any]:
    body = call_body(call_id, call_id, nginx, domain, account, rtmp_url=f"rtmp://127.0.0.1:{nginx.rtmp_port}/rec")
    body["callee"] = callee
    body["connection"]["codecs"] = codecs
    body.update(fields)
    return body


def _record_call(
    daemon: BridgeDaemon, nginx: NginxRtmp, body: dict[str, Any], seconds: float
) -> tuple[PulledAudio, float, dict[str, Any]]:
    """Run the call for ``seconds`` after it is established; the recording and how long the call was up."""
    call_id = body["callId"]
    status, reply = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    daemon.wait_state(call_id, {"ESTABLISHED"})
    up = time.monotonic()
    time.sleep(seconds)
    call = daemon.call(call_id)
    daemon.request("POST", "/RESTCall/terminate", {"callId": call_id})
    lasted = time.monotonic() - up
    daemon.wait_gone(call_id)
    assert call is not None
    return read_recording(str(nginx.recording(call_id))), lasted, call


def _sound_start(audio: PulledAudio) -> float:
    return next(i / 50 for i in range(int(audio.seconds * 50)) if rms_dbfs(audio.segment(i / 50, i / 50 + 0.02)) > -35)


def _check(audio: PulledAudio, lasted: float, tone: float) -> None:
    start = _sound_start(audio)
    heard = dominant_frequency(audio.segment(start + 0.5, audio.seconds - 0.3), audio.sample_rate)
    print(
        f"\n{audio.codec} {audio.sample_rate} Hz: tone {heard:.1f} Hz, max gap {audio.max_timestamp_gap_ms:.1f} ms, "
        f"{audio.timeline_seconds:.2f} s recorded for a call up {lasted:.2f} s"
    )
    assert abs(heard - tone) <= 5.0, f"the far end's {tone:g} Hz tone came out at {heard:.1f} Hz"
    assert audio.max_timestamp_gap_ms <= 30.0
    assert lasted - 1.0 <= audio.timeline_seconds <= lasted + 0.5


def test_pcma_only_far_end(
    nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount, daemon: BridgeDaemon
) -> None:
    body = _codec_call("pcma-1", "pcma", ["pcmu", "pcma"], nginx, sip_domain, account)
    audio, lasted, call = _record_call(daemon, nginx, body, 5.0)
    _check(audio, lasted, 440.0)
    assert any(e.get("event") == "codec" and e.get("codec") == "pcma" for e in call["timeline"])


def test_pcmu_offer_to_a_pcma_only_far_end_fails_with_488(
    nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount, daemon: BridgeDaemon
) -> None:
    body = _codec_call("pcma-2", "pcma", ["pcmu"], nginx, sip_domain, account)
    status, reply = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    final = daemon.wait_state("pcma-2", {"FAILED", "FINISH"})
    assert final["state"] == "FAILED" and "488" in final["reason"], final


@pytest.mark.parametrize(("callee", "has_audio"), [("g722", "false"), ("opus", "true")])
def test_wideband_far_ends_keep_a_6_khz_tone(
    callee: str,
    has_audio: str,
    nginx: NginxRtmp,
    high_tone_domain: Kamailio,
    account: SipAccount,
    daemon: BridgeDaemon,
) -> None:
    output = {"codec": "aac", "sampleRate": 48000, "bitrate": 96000}
    body = _codec_call(
        f"{callee}-1", callee, [callee, "pcmu"], nginx, high_tone_domain, account, hasAudio=has_audio, output=output
    )
    audio, lasted, call = _record_call(daemon, nginx, body, 5.0)
    _check(audio, lasted, 6000.0)
    spectrum = np.abs(np.fft.rfft(audio.segment(1.0, audio.seconds - 0.5)))
    band = np.fft.rfftfreq(len(audio.segment(1.0, audio.seconds - 0.5)), 1 / audio.sample_rate)
    assert spectrum[band > 4000].sum() > 10 * spectrum[band <= 4000].sum(), "the energy is not above 4 kHz"
    assert any(e.get("event") == "codec" and e.get("codec") == callee for e in call["timeline"])
