"""``make demo``: a call bridged end to end on local peers, no accounts anywhere.

Starts nginx-rtmp, kamailio (the SIP domain, with digest auth), baresip (the far
end, playing a 440 Hz tone) and the daemon; places a call through the REST API;
checks what a player hears; prints the URL to open in ffplay or VLC.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from pathlib import Path

from tests.support.audio import dominant_frequency, pull_audio, silent_fraction
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bridge-demo-"))
    account = SipAccount()
    nginx = NginxRtmp(workdir)
    far_end = Baresip(workdir)
    domain = Kamailio(workdir, far_end.port, account)
    daemon = BridgeDaemon(workdir, level="info")
    peers = [daemon, domain, far_end, nginx]
    try:
        body = call_body("demo-1", "demo", nginx, domain, account)
        print(f"POST {daemon.base_url}/RESTCall/call  (callee 'uas' via kamailio on 127.0.0.1:{domain.port})")
        status, session = daemon.request("POST", "/RESTCall/call", body)
        print(f"-> {status} {session['state']}")
        state = daemon.wait_state("demo-1", {"ESTABLISHED", "FAILED", "FINISH"})
        print(f"call state: {state['state']} ({state['reason']})")
        url = f"{nginx.url}/demo"
        pulled = pull_audio(url, seconds=3.0)
        print(
            f"a player pulled {pulled.seconds:.1f} s of {pulled.codec.upper()} at {pulled.sample_rate} Hz: "
            f"dominant {dominant_frequency(pulled.samples, pulled.sample_rate):.0f} Hz, "
            f"{silent_fraction(pulled.samples, pulled.sample_rate):.0%} silent"
        )
        print(f"\nListen now:  ffplay -nodisp {url}\n        or:  vlc {url}")
        seconds = float(os.environ.get("DEMO_SECONDS", "120"))
        print(f"The call stays up for {seconds:.0f} s (Ctrl-C ends it earlier).")
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(seconds)
        daemon.request("POST", "/RESTCall/terminate", {"callId": "demo-1"})
        daemon.wait_gone("demo-1")
        final = daemon.call("demo-1") or {}
        print(f"call ended: {final.get('state')} ({final.get('reason')}), counters {final.get('counters')}")
    finally:
        for peer in peers:
            peer.stop()


if __name__ == "__main__":
    main()
