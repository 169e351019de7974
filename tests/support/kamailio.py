"""kamailio as the authenticating SIP domain (digest, UDP/TCP/TLS, a registrar) in front of the far end."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.baresip import Baresip
from tests.support.certificates import make_certificate
from tests.support.ports import free_udp_tcp_pair
from tests.support.process import PeerProcess
from tests.support.secrets import register_secret

KAMAILIO_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"


KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
dns=no
rev_dns=no
auto_aliases=no
listen=udp:{host}:{port}
listen=tcp:{host}:{port}
listen=tls:{host}:{tls_port}
enable_tls=yes
tcp_accept_aliases=yes
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "auth.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "tls.so"
modparam("tls", "config", "{tls_config}")
modparam("rr", "enable_full_lr", 1)
modparam("usrloc", "db_mode", 0)

request_route {{
    xlog("L_INFO", "REQ $rm $ru from $si:$sp proto=$pr callid=$ci\\n");
    if (is_present_hf("Proxy-Authorization")) {{ xlog("L_INFO", "CREDENTIALS $hdr(Proxy-Authorization)\\n"); }}
    if (is_present_hf("Authorization")) {{ xlog("L_INFO", "CREDENTIALS $hdr(Authorization)\\n"); }}
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{
            xlog("L_INFO", "IN-DIALOG $rm callid=$ci from $si:$sp proto=$pr\\n");
            t_relay();
            exit;
        }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not Here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("REGISTER")) {{ route(REGISTRAR); exit; }}
    if (!is_method("INVITE")) {{ sl_send_reply("405", "Method Not Allowed"); exit; }}
    if ($rU == "uas401") {{ route(WWW_INVITE); }}
    pv_proxy_authenticate("{realm}", "{password}", "0");
    $var(rc) = $rc;
    if ($var(rc) == -2 || $var(rc) == -3 || $var(rc) == -8) {{
        xlog("L_INFO", "AUTH-REJECTED $au rc=$var(rc) callid=$ci\\n");
        sl_send_reply("403", "Forbidden");
        exit;
    }}
    if ($var(rc) < 0) {{
        xlog("L_INFO", "AUTH-CHALLENGE rc=$var(rc) callid=$ci\\n");
        proxy_challenge("{realm}", "1");
        exit;
    }}
    if ($au != "{user}") {{ sl_send_reply("403", "Forbidden"); exit; }}
    xlog("L_INFO", "AUTH-OK $au callid=$ci\\n");
    consume_credentials();
    if ($rU == "busy") {{ sl_send_reply("486", "Busy Here"); exit; }}
    if ($rU == "decline") {{ sl_send_reply("603", "Decline"); exit; }}
    if ($rU == "nobody") {{ sl_send_reply("404", "Not Found"); exit; }}
    if ($rU == "away") {{ sl_send_reply("480", "Temporarily Unavailable"); exit; }}
    if ($rU == "moved") {{
        append_to_reply("Contact: <sip:uas@{far_end_host}:{far_end_port}>\\r\\n");
        sl_send_reply("302", "Moved Temporarily");
        exit;
    }}
    if (has_body("application/sdp")) {{ xlog("L_INFO", "OFFER-CONNECTION callid=$ci $(rb{{line.sw,c=}})\n"); }}
    record_route();
    $ru = "sip:" + $rU + "@{far_end_host}:{far_end_port}";
    t_relay();
}}

route[WWW_INVITE] {{
    # The 401 variant: challenge with WWW-Authenticate, then relay to the far end's "uas".
    pv_www_authenticate("{realm}", "{password}", "0");
    $var(rc) = $rc;
    if ($var(rc) == -2 || $var(rc) == -3 || $var(rc) == -8) {{ sl_send_reply("403", "Forbidden"); exit; }}
    if ($var(rc) < 0) {{ www_challenge("{realm}", "1"); exit; }}
    xlog("L_INFO", "AUTH-OK-401 $au callid=$ci\\n");
    consume_credentials();
    record_route();
    $ru = "sip:uas@{far_end_host}:{far_end_port}";
    t_relay();
    exit;
}}

route[REGISTRAR] {{
    pv_www_authenticate("{realm}", "{password}", "0");
    $var(rc) = $rc;
    if ($var(rc) == -2 || $var(rc) == -3 || $var(rc) == -8) {{ sl_send_reply("403", "Forbidden"); exit; }}
    if ($var(rc) < 0) {{ www_challenge("{realm}", "1"); exit; }}
    if ($au != "{user}") {{ sl_send_reply("403", "Forbidden"); exit; }}
    xlog("L_INFO", "REGISTER-OK $au expires=$hdr(Expires) contact=$ct callid=$ci\n");
    save("location");
}}
"""


@dataclass(frozen=True)
class SipAccount:
    user: str = "bridge"
    password: str = "s3cret-test-pw"
    realm: str = "bridge.test"

    def __post_init__(self) -> None:
        register_secret(self.password)


TLS_CONFIG = """
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = {key}
certificate = {cert}

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
"""


class Kamailio:
    """A SIP domain on 127.0.0.1 that answers INVITEs with 407 and relays to the far end."""

    def __init__(self, workdir: Path, far_end_port: int, account: SipAccount, host: str = "127.0.0.1") -> None:
        self.host = host
        self.dir = workdir / ("kamailio" if host == "127.0.0.1" else "kamailio6")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_tcp_pair()
        self.tls_port = self.port + 1
        self.account = account
        key, self.certificate = make_certificate(self.dir)
        tls_config = self.dir / "tls.cfg"
        tls_config.write_text(TLS_CONFIG.format(key=key, cert=self.certificate))
        cfg = self.dir / "kamailio.cfg"
        cfg.write_text(
            KAMAILIO_CFG.format(
                tls_port=self.tls_port,
                tls_config=tls_config,
                host=f"[{host}]" if ":" in host else host,
                far_end_host=f"[{host}]" if ":" in host else host,
                port=self.port,
                modules=KAMAILIO_MODULES,
                realm=account.realm,
                password=account.password,
                user=account.user,
                far_end_port=far_end_port,
            )
        )
        self.process = PeerProcess(
            "kamailio",
            [
                "kamailio",
                "-DD",
                "-E",
                "-f",
                str(cfg),
                "-m",
                "32",
                "-M",
                "4",
                "-P",
                str(self.dir / "kamailio.pid"),
                "-Y",
                str(self.dir),
            ],
            self.dir / "kamailio.log",
        )
        self.process.wait_for(self._answers_options, 10, "SIP listener")

    def _answers_options(self) -> bool:
        return "listening on" in self.process.log_text() or "INFO: <core>" in self.process.log_text()

    def log(self) -> str:
        return self.process.log_text()

    def digest_proofs(self) -> list[str]:
        """The digest response and cnonce values clients sent (RFC 7616 3.4): secrets for the scan."""
        return re.findall(r'(?:response|cnonce)="([^"]+)"', self.log())

    def stop(self) -> None:
        self.process.stop()
        register_secret(*self.digest_proofs())  # no bridge output may ever show one


@contextlib.contextmanager
def domain_in_front_of(workdir: Path, account: SipAccount, **far_end: Any) -> Iterator[Kamailio]:
    """A baresip far end (``far_end``: Baresip's options) behind its own kamailio SIP domain."""
    peer = Baresip(workdir / "far-end", **far_end)
    try:
        domain = Kamailio(workdir / "domain", peer.port, account)
        try:
            yield domain
        finally:
            domain.stop()
    finally:
        peer.stop()
