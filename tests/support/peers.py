"""The real peers: nginx-rtmp, kamailio (SIP domain with digest auth) and baresip (far end)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.ports import free_even_range, free_port, free_udp_tcp_pair
from tests.support.process import PeerProcess
from tests.support.secrets import register_secret

NGINX_RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
KAMAILIO_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
BARESIP_MODULES = "/usr/lib/baresip/modules"

NGINX_CONF = """
load_module {module};
load_module {stream_module};
daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port};
        chunk_size 4096;
        application live {{
            live on;
            record off;
            notify_method get;
            on_publish_done http://127.0.0.1:{http_port}/publish_done;
        }}
        application rec {{
            live on;
            record all;
            record_path {dir}/rec;
            record_unique off;
        }}
        application guarded {{
            live on;
            on_publish http://127.0.0.1:{http_port}/deny;
        }}
    }}
}}
stream {{
    server {{
        listen 127.0.0.1:{rtmps_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        proxy_pass 127.0.0.1:{rtmp_port};
    }}
}}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    server {{
        listen 127.0.0.1:{http_port};
        location /stat {{ rtmp_stat all; }}
        location /deny {{ return 403; }}
        location /publish_done {{ access_log {dir}/publish_done.log; return 200; }}
    }}
}}
"""


class NginxRtmp:
    """nginx with libnginx-mod-rtmp, application ``live``, and rtmp_stat over HTTP."""

    def __init__(self, workdir: Path, name: str = "nginx", host: str = "127.0.0.1", netns: str = "") -> None:
        """``host``/``netns``: listen on ``host`` inside the network namespace ``netns`` (tests/support/netns.py)."""
        self.host, self.netns = host, netns
        self.dir = workdir / name
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        self.rtmp_port = free_port()
        self.http_port = free_port()
        self.rtmps_port = free_port()
        key, self.certificate = make_certificate(self.dir)
        conf = self.dir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                module=NGINX_RTMP_MODULE,
                stream_module=NGINX_STREAM_MODULE,
                dir=self.dir,
                rtmp_port=self.rtmp_port,
                http_port=self.http_port,
                rtmps_port=self.rtmps_port,
                cert=self.certificate,
                key=key,
            )
        )
        if host != "127.0.0.1":
            conf.write_text(conf.read_text().replace("listen 127.0.0.1:", f"listen {host}:"))
        (self.dir / "rec").mkdir(exist_ok=True)
        self._conf = conf
        self.start()

    def start(self) -> None:
        argv = ["nginx", "-p", str(self.dir), "-c", str(self._conf), "-e", str(self.dir / "error.log")]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.process = PeerProcess("nginx", argv, self.dir / "stdout.log")
        self.process.wait_for(lambda: _tcp_open(self.rtmp_port, self.host), 10, "RTMP listener")

    def recording(self, stream: str) -> Path:
        """The FLV nginx recorded for ``stream`` in application ``rec``."""
        return self.dir / "rec" / f"{stream}.flv"

    @property
    def url(self) -> str:
        return f"rtmp://{self.host}:{self.rtmp_port}/live"

    def stat(self) -> str:
        with urllib.request.urlopen(f"http://{self.host}:{self.http_port}/stat", timeout=2) as reply:
            return str(reply.read().decode())

    def stream_stat(self, name: str) -> str | None:
        """The <stream> element of ``name`` in rtmp_stat, or None if not published."""
        for block in re.findall(r"<stream>.*?</stream>", self.stat(), re.S):
            if f"<name>{name}</name>" in block:
                return str(block)
        return None

    def bytes_in(self, name: str) -> int:
        """What nginx-rtmp received of ``name`` so far (its <bytes_in>), 0 if not published."""
        stat = self.stream_stat(name)
        found = re.search(r"<bytes_in>(\d+)</bytes_in>", stat or "")
        return int(found.group(1)) if found else 0

    def unpublished(self) -> list[str]:
        """Stream names nginx reported as unpublished (on_publish_done), oldest first."""
        log = self.dir / "publish_done.log"
        text = log.read_text() if log.exists() else ""
        return re.findall(r"[?&]name=([^&\s]+)", text)

    def stop(self) -> None:
        self.process.stop()


def _tcp_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


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


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost (it is its own CA)."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=sip.test",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


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


BARESIP_CONFIG = """
poll_method epoll
sip_listen {sip_host}:{port}
call_max_calls {max_calls}
net_interface {host}
rtp_ports {rtp_first}-{rtp_last}
audio_player aubridge,nil
audio_source {source}
ausrc_srate 48000
ausrc_channels 2
module_path {modules}
module g711.so
module g722.so
module opus.so
module ausine.so
module aufile.so
module aubridge.so
module srtp.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{ctrl_port}
"""
BARESIP_VIDEO_CONFIG = """
module avcodec.so
module fakevideo.so
video_source fakevideo,nil
video_size {width}x{height}
video_bitrate 800000
video_fps {fps}
"""


class Baresip:
    """The far end: auto-answers ``sip:uas@...`` with PCMU and plays a tone (or a WAV file)."""

    def __init__(
        self,
        workdir: Path,
        source: str = "ausine,440",
        user: str = "uas",
        host: str = "127.0.0.1",
        video: tuple[int, int, int] | None = None,
        max_calls: int = 16,
    ) -> None:
        """``video`` = (width, height, fps): also send H.264 from baresip's fake camera (avcodec, libx264);
        ``max_calls``: calls at once (each has RTP ports of its own)."""
        self.host = host
        uri_host = f"[{host}]" if ":" in host else host
        self.dir = workdir / ("baresip" if host == "127.0.0.1" else "baresip6")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_tcp_pair()
        self.ctrl_port = free_port()
        self.user = user
        first, last = free_even_range(20 if max_calls <= 16 else 4 * max_calls)  # RTP and RTCP, to spare
        (self.dir / "config").write_text(
            BARESIP_CONFIG.format(
                max_calls=max_calls,
                port=self.port,
                rtp_first=first,
                rtp_last=last,
                source=source,
                modules=BARESIP_MODULES,
                ctrl_port=self.ctrl_port,
                host=host,
                sip_host=uri_host,
            )
            + (BARESIP_VIDEO_CONFIG.format(width=video[0], height=video[1], fps=video[2]) if video else "")
        )
        (self.dir / "accounts").write_text(
            f"<sip:{user}@{uri_host}:{self.port};transport=udp>;regint=0;answermode=auto;audio_codecs=PCMU\n"
            f"<sip:ringer@{uri_host}:{self.port};transport=udp>;regint=0;answermode=manual;audio_codecs=PCMU\n"
            f"<sip:secure@{uri_host}:{self.port};transport=udp>;regint=0;answermode=auto;audio_codecs=PCMU;"
            "mediaenc=srtp-mand\n"
            + "".join(
                f"<sip:{name}@{uri_host}:{self.port};transport=udp>;regint=0;answermode=auto;audio_codecs={codec}\n"
                for name, codec in (("pcma", "PCMA"), ("g722", "G722"), ("opus", "opus"))
            )
        )
        (self.dir / "contacts").write_text("")
        self.process = PeerProcess("baresip", ["baresip", "-f", str(self.dir)], self.dir / "baresip.log")
        self.process.wait_for(lambda: _tcp_open(self.ctrl_port), 10, "ctrl_tcp listener")

    def command(self, command: str, params: str = "") -> None:
        """Send a ctrl_tcp command (netstring-framed JSON)."""
        body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        with socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=2) as sock:
            sock.sendall(str(len(body)).encode() + b":" + body + b",")
            time.sleep(0.1)

    def hangup(self) -> None:
        self.command("hangup")

    def log(self) -> str:
        return self.process.log_text()

    def stop(self) -> None:
        self.process.stop()


def call_body(
    call_id: str,
    stream: str,
    nginx: NginxRtmp | None,
    domain: Kamailio,
    account: SipAccount,
    password: str | None = None,
    rtmp_url: str = "",
) -> dict[str, Any]:
    """The REST contract as clients send it (booleans and ports as strings), calling baresip via kamailio.

    The stream goes to ``nginx``'s ``live`` application, or to ``rtmp_url`` when given.
    """
    register_secret(password or account.password)
    return {
        "callId": call_id,
        "callee": "uas",
        "rtmpUrl": rtmp_url or (nginx.url if nginx is not None else ""),
        "rtmpStream": stream,
        "hasAudio": "false",
        "hasVideo": "false",
        "connection": {
            "sipLogin": account.user,
            "sipPassword": password or account.password,
            "sipAuthenticationName": account.user,
            "sipDomain": "127.0.0.1",
            "sipPort": str(domain.port),
            "sipRegisterRequired": "false",
            "appKey": "local",
        },
    }


def direct_call_body(
    call_id: str, stream: str, rtmp_url: str, far_end_port: int, callee: str, **fields: Any
) -> dict[str, Any]:
    """A call straight to a scripted far end on 127.0.0.1: no SIP domain, so no digest challenge.

    ``connection`` in ``fields`` adds to the connection object; other fields replace top-level ones.
    """
    connection = {"sipLogin": "bridge", "sipPassword": "x", "sipDomain": "127.0.0.1", "sipPort": far_end_port}
    connection.update(fields.pop("connection", {}))
    return {
        "callId": call_id,
        "callee": callee,
        "rtmpUrl": rtmp_url,
        "rtmpStream": stream,
        **fields,
        "connection": connection,
    }


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
